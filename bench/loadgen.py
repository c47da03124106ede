"""Load generator: streaming OpenAI chat clients (asyncio + httpx) and their statistics.

A run is R prepared requests pulled from one shared list by N concurrent clients,
each sending its next request as soon as the previous one ends. A run stops by
itself: when the list is empty or when its time limit has passed (requests still
in flight finish; the rest are counted as ``not_sent``).
"""

from __future__ import annotations

import asyncio
import base64
import io
import json
import random
import time
from collections import deque
from dataclasses import asdict, dataclass, field

import httpx

__all__ = [
    "Outcome",
    "Run",
    "Work",
    "image_data_uri",
    "image_work",
    "percentile",
    "prompt_for",
    "run_load",
    "summarize",
    "text_work",
]

_TOPICS = (
    "a lighthouse keeper",
    "a lost umbrella",
    "the history of bread",
    "a robot gardener",
    "tidal pools",
    "a night train",
    "volcanic glass",
    "a chess club",
    "migrating geese",
    "an old radio",
    "paper lanterns",
    "a desert observatory",
    "the smell of rain",
    "a bicycle repair shop",
    "glaciers",
    "a jazz trio",
    "a city under snow",
    "honeybees",
    "a sailing ship",
    "a quiet library",
    "copper mines",
    "a kite festival",
)
_ASKS = (
    "Write a short story about {a} and {b}.",
    "Explain how {a} relates to {b}, in plain words.",
    "List five facts connecting {a} with {b}.",
    "Describe a day in the life of {a}, mentioning {b}.",
    "Compose a short poem about {a} meeting {b}.",
)
IMAGE_QUESTIONS = (
    "What is in this image?",
    "Describe the colours in this picture.",
    "Is there any text in this image?",
    "What could this image be used for?",
)


@dataclass
class Work:
    """One request to send: its id, kind ("text" or "image") and the encoded JSON body."""

    key: str
    kind: str
    body: bytes


@dataclass
class Outcome:
    """What one request did."""

    key: str
    kind: str
    status: int | None = None
    error: str | None = None
    started_s: float = 0.0  # since the run began
    ttft_s: float | None = None  # first chunk with non-empty content
    latency_s: float | None = None
    completion_tokens: int = 0
    prompt_tokens: int | None = None
    tokens_from: str = "chunks"  # "usage" when the server sent usage
    content_chunks: int = 0
    finish_reason: str | None = None
    retries: int = 0  # connection failures before any response, retried
    retry_errors: list[str] = field(default_factory=list)
    text: str = ""


@dataclass
class Run:
    """One (server, workload, clients) run: every outcome and the wall clock."""

    clients: int
    requested: int
    wall_s: float
    outcomes: list[Outcome] = field(default_factory=list)
    not_sent: int = 0
    rss_peak_bytes: int | None = None  # of the server's process tree, filled in by the caller
    cpu_s: dict[str, float] | None = None  # CPU seconds by process, filled in by the caller

    def to_json(self, keep_text: bool = False) -> dict:
        outcomes = [asdict(o) for o in self.outcomes]
        if not keep_text:
            for o in outcomes:
                o.pop("text", None)
        return {
            "clients": self.clients,
            "requested": self.requested,
            "wall_s": self.wall_s,
            "not_sent": self.not_sent,
            "summary": summarize(self),
            "rss_peak_bytes": self.rss_peak_bytes,
            "cpu_s": self.cpu_s,
            "outcomes": outcomes,
        }


# --- content ------------------------------------------------------------------


def prompt_for(seed: str) -> str:
    """The distinct prompt of a seed; the same on every server and in the direct baseline."""
    rng = random.Random(seed)
    a, b = rng.sample(_TOPICS, 2)
    return f"[{seed}] " + rng.choice(_ASKS).format(a=a, b=b)


def _body(model: str, content, max_tokens: int) -> bytes:
    return json.dumps(
        {
            "model": model,
            "messages": [{"role": "user", "content": content}],
            "max_tokens": max_tokens,
            "temperature": 0,
            "stream": True,
            "stream_options": {"include_usage": True},
        }
    ).encode()


def text_work(seed: str, model: str, max_tokens: int) -> Work:
    """A distinct text request; the same seed gives the same prompt on every server."""
    return Work(seed, "text", _body(model, prompt_for(seed), max_tokens))


def image_data_uri(seed: str, side: int = 448) -> str:
    """A random-noise PNG as a data URI; the same seed gives the same image."""
    import numpy as np
    from PIL import Image

    rng = np.random.default_rng(hash_seed(seed))
    pixels = rng.integers(0, 256, (side, side, 3), dtype=np.uint8)
    buf = io.BytesIO()
    Image.fromarray(pixels).save(buf, format="PNG")
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode()


def hash_seed(seed: str) -> int:
    # str hash is salted per process; this one is stable across processes and machines
    value = 0
    for ch in seed.encode():
        value = (value * 131 + ch) % (1 << 61)
    return value


def image_work(key: str, uri: str, question: str, model: str, max_tokens: int) -> Work:
    content = [{"type": "image_url", "image_url": {"url": uri}}, {"type": "text", "text": question}]
    return Work(key, "image", _body(model, content, max_tokens))


# --- clients ------------------------------------------------------------------


def _describe(exc: BaseException) -> str:
    cause = exc.__cause__ or exc.__context__
    return f"{type(exc).__name__}: {str(exc) or (repr(cause) if cause else '(no message)')}"


RETRIES = 2  # like the openai SDK: connection failures before any response are retried twice


async def _send(client: httpx.AsyncClient, url: str, work: Work, t0: float) -> Outcome:
    """One streamed request; times are from the first attempt, as the user waiting for it sees them."""
    out = Outcome(work.key, work.kind)
    start = time.perf_counter()
    out.started_s = start - t0
    parts: list[str] = []
    usage_tokens = None
    try:
        for attempt in range(RETRIES + 1):
            try:
                usage_tokens = await _stream(client, url, work, out, parts, start)
                break
            except httpx.TransportError as exc:
                if out.status is None and attempt < RETRIES:
                    out.retries += 1
                    out.retry_errors.append(_describe(exc)[:120])
                    await asyncio.sleep(0.5 * 2**attempt)
                    continue
                out.error = _describe(exc)[:300]
                break
            except httpx.HTTPError as exc:
                out.error = _describe(exc)[:300]
                break
    finally:
        out.latency_s = time.perf_counter() - start
        out.text = "".join(parts)
    if usage_tokens is not None:
        out.completion_tokens, out.tokens_from = int(usage_tokens), "usage"
    else:
        out.completion_tokens = out.content_chunks
    if out.error is None and out.status == 200 and out.finish_reason is None:
        out.error = "stream ended without a finish_reason"
    return out


async def _stream(
    client: httpx.AsyncClient, url: str, work: Work, out: Outcome, parts: list[str], start: float
) -> int | None:
    """Send once and read the SSE stream into ``out``; returns usage.completion_tokens if the server sent it."""
    usage_tokens = None
    async with client.stream("POST", url, content=work.body, headers={"content-type": "application/json"}) as resp:
        out.status = resp.status_code
        if resp.status_code != 200:
            body = (await resp.aread())[:300].decode(errors="replace")
            out.error = f"HTTP {resp.status_code}: {body}"
            return None
        event = None
        async for line in resp.aiter_lines():
            if not line:
                event = None
                continue
            if line.startswith(":"):  # SSE comment (mlx_lm.server keep-alives)
                continue
            if line.startswith("event:"):
                event = line[6:].strip()
                continue
            if not line.startswith("data:"):
                continue
            data = line[5:].strip()
            if data == "[DONE]":
                break
            try:
                obj = json.loads(data)
            except ValueError:
                out.error = f"bad SSE data: {data[:120]}"
                break
            if not isinstance(obj, dict):
                continue
            if event == "error" or obj.get("error"):
                err = obj.get("error", obj)
                out.error = (
                    "in-band error: " + (err.get("message", str(err)) if isinstance(err, dict) else str(err))[:300]
                )
                break
            for choice in obj.get("choices") or ():
                delta = choice.get("delta") or {}
                content = delta.get("content")
                if content:
                    if out.ttft_s is None:
                        out.ttft_s = time.perf_counter() - start
                    parts.append(content)
                    out.content_chunks += 1
                if choice.get("finish_reason"):
                    out.finish_reason = choice["finish_reason"]
            usage = obj.get("usage")
            if usage:
                usage_tokens = usage.get("completion_tokens")
                out.prompt_tokens = usage.get("prompt_tokens")
    return usage_tokens


async def run_load(
    base_url: str,
    works: list[Work],
    clients: int,
    *,
    time_limit_s: float,
    request_timeout_s: float = 300.0,
) -> Run:
    """Send ``works`` with ``clients`` concurrent streaming clients; stop when done or past the time limit."""
    url = base_url.rstrip("/") + "/v1/chat/completions"
    pending = deque(works)
    outcomes: list[Outcome] = []
    limits = httpx.Limits(max_connections=clients + 4, max_keepalive_connections=clients + 4)
    timeout = httpx.Timeout(request_timeout_s, connect=15.0)
    async with httpx.AsyncClient(limits=limits, timeout=timeout) as client:
        t0 = time.perf_counter()
        deadline = t0 + time_limit_s

        async def one_client() -> None:
            while pending and time.perf_counter() < deadline:
                outcomes.append(await _send(client, url, pending.popleft(), t0))

        await asyncio.gather(*(one_client() for _ in range(clients)))
        wall = time.perf_counter() - t0
    return Run(clients=clients, requested=len(works), wall_s=wall, outcomes=outcomes, not_sent=len(pending))


# --- statistics ---------------------------------------------------------------


def percentile(values: list[float], p: float) -> float | None:
    """Linear-interpolated percentile (numpy's default method); None for no values."""
    if not values:
        return None
    xs = sorted(values)
    k = (len(xs) - 1) * p / 100.0
    lo = int(k)
    hi = min(lo + 1, len(xs) - 1)
    return xs[lo] + (xs[hi] - xs[lo]) * (k - lo)


def _ms(x: float | None) -> float | None:
    return None if x is None else round(x * 1000.0, 1)


def summarize(run: Run, kind: str | None = None) -> dict:
    """Throughput (completion tok/s over the run's wall clock), TTFT/latency p50/p95 in ms, errors."""
    outs = [o for o in run.outcomes if kind is None or o.kind == kind]
    ok = [o for o in outs if o.error is None]
    tokens = sum(o.completion_tokens for o in ok)
    ttfts = [o.ttft_s for o in ok if o.ttft_s is not None]
    lats = [o.latency_s for o in ok if o.latency_s is not None]
    return {
        "requests": len(outs),
        "ok": len(ok),
        "errors": len(outs) - len(ok),
        "not_sent": run.not_sent if kind is None else None,
        "completion_tokens": tokens,
        "throughput_tok_s": round(tokens / run.wall_s, 2) if run.wall_s > 0 and ok else None,
        "ttft_p50_ms": _ms(percentile(ttfts, 50)),
        "ttft_p95_ms": _ms(percentile(ttfts, 95)),
        "latency_p50_ms": _ms(percentile(lats, 50)),
        "latency_p95_ms": _ms(percentile(lats, 95)),
        "tokens_from_usage": sum(o.tokens_from == "usage" for o in ok),
        "error_samples": sorted({o.error for o in outs if o.error})[:3],
        "retries": sum(o.retries for o in outs),
        "retry_samples": sorted({e for o in outs for e in o.retry_errors})[:3],
    }
