"""Soak: thousands of mixed requests against one mmserve, its memory sampled as they go.

    python bench/soak.py [--models DIR] [--requests 3000] [--clients 8] [--out FILE.json]

The requests cycle through what long-running users send: distinct text prompts
(streamed), distinct images (streamed: every one a new entry for the feature and
prefix caches), a few images asked again and again (not streamed: cache hits),
follow-up turns of a few conversations (shared prefixes), and streams of text and of
images that the client closes after two chunks. Every ``--every`` requests it records
the RSS of the server and of each worker, each worker's mlx active and cache memory,
and what the guard holds. A server whose memory stays flat once its caches are full is
what a batch job of thousands of images needs; the last lines say how much each grew
over the second half of the run. Without --models it synthesizes the tiny models.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import signal
import sys
import tempfile
import time
from pathlib import Path
from types import SimpleNamespace

import httpx

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import loadgen
from run import ROOT, _interrupt, find_models, log
from servers import SERVERS, Server

KINDS = ("text", "image", "image again", "follow-up", "text dropped", "image dropped")
IMAGE_SIDE = 256  # small, so that a CPU gets through thousands of distinct images


class Soak:
    def __init__(self, server: Server, model: str, args) -> None:
        self.url = server.base_url + "/v1/chat/completions"
        self.model = model
        self.max_tokens = args.max_tokens
        self.repeated = [loadgen.image_data_uri(f"soak-again-{i}", IMAGE_SIDE) for i in range(16)]
        self.status: dict[str, int] = {}
        self.errors: list[str] = []

    def body(self, i: int) -> tuple[str, dict]:
        kind = KINDS[i % len(KINDS)]
        question = loadgen.IMAGE_QUESTIONS[i % len(loadgen.IMAGE_QUESTIONS)]
        if kind in ("text", "text dropped"):
            content = loadgen.prompt_for(f"soak-{i}")
        elif kind in ("image", "image dropped"):
            image = loadgen.image_data_uri(f"soak-{i}", IMAGE_SIDE)
            content = [{"type": "image_url", "image_url": {"url": image}}, {"type": "text", "text": question}]
        elif kind == "image again":
            image = self.repeated[i % len(self.repeated)]
            content = [{"type": "image_url", "image_url": {"url": image}}, {"type": "text", "text": question}]
        else:  # a later turn of one of eight conversations
            thread = i % 8
            messages = [
                {"role": "user", "content": loadgen.prompt_for(f"soak-thread-{thread}")},
                {"role": "assistant", "content": f"Answer {thread}, written at length to be a shared prefix. " * 4},
                {"role": "user", "content": f"Go on about point {i}."},
            ]
            return kind, {"model": self.model, "messages": messages, "max_tokens": self.max_tokens, "temperature": 0}
        body = {"model": self.model, "messages": [{"role": "user", "content": content}], "max_tokens": self.max_tokens}
        return kind, {**body, "temperature": 0, "stream": kind != "image again"}

    async def send(self, client: httpx.AsyncClient, i: int) -> None:
        kind, body = self.body(i)
        try:
            if not body.get("stream"):
                response = await client.post(self.url, json=body)
                self.count(kind, response.status_code, response.text)
                return
            async with client.stream("POST", self.url, json=body) as response:
                if response.status_code != 200:
                    self.count(kind, response.status_code, (await response.aread()).decode(errors="replace"))
                    return
                chunks, in_band_error = 0, False
                async for line in response.aiter_lines():
                    chunks += line.startswith("data: ")
                    in_band_error |= line.startswith("event: error")  # an error after the 200 went out
                    if kind.endswith("dropped") and chunks >= 2:
                        break  # the client goes away mid-stream
                self.count(kind, "error event" if in_band_error else 200, "")
        except httpx.HTTPError as exc:
            self.count(kind, None, f"{type(exc).__name__}: {exc}")

    def count(self, kind: str, status: int | str | None, text: str) -> None:
        key = f"{kind} {status}"
        self.status[key] = self.status.get(key, 0) + 1
        if status != 200 and len(self.errors) < 5:
            self.errors.append(f"{key}: {text[:200]}")


def sample(server: Server, done: int, started: float) -> dict:
    """Memory of the server process and of each worker, with what the workers and the guard report."""
    rss = server.rss_by_pid()
    status = httpx.get(server.base_url + "/admin/status", timeout=30).json()
    workers = {}
    for w in status["workers"]:
        name = f"{w['engine']}:{w['pid']}"
        workers[name] = {**w["memory"], "rss": rss.get(w["pid"]), "restarts": w["restarts"]}
    return {
        "requests": done,
        "elapsed_s": round(time.perf_counter() - started, 1),
        "server_rss": rss[server.proc.pid],
        "workers": workers,
        "guard_held_bytes": status["guard"]["held_bytes"],
    }


async def run_client(soak: Soak, client: httpx.AsyncClient, todo) -> None:
    for i in todo:
        await soak.send(client, i)


async def drive(soak: Soak, server: Server, args) -> list[dict]:
    started = time.perf_counter()
    samples = [sample(server, 0, started)]
    limits = httpx.Limits(max_connections=args.clients + 2)
    async with httpx.AsyncClient(timeout=httpx.Timeout(args.request_timeout), limits=limits) as client:
        for first in range(0, args.requests, args.every):
            end = min(first + args.every, args.requests)
            todo = iter(range(first, end))  # shared: each client takes the next request
            await asyncio.gather(*(run_client(soak, client, todo) for _ in range(args.clients)))
            samples.append(await asyncio.to_thread(sample, server, end, started))
            last = samples[-1]
            rss = sum(w["rss"] or 0 for w in last["workers"].values())
            log(f"{end} requests, {last['elapsed_s']:.0f} s: workers' RSS {rss / 2**20:.0f} MiB, {soak.status}")
    return samples


def growth(samples: list[dict]) -> dict:
    """How much each process's memory grew over the second half of the run."""
    mid, end = samples[len(samples) // 2], samples[-1]
    out = {"server rss": end["server_rss"] - mid["server_rss"]}
    for name, w in end["workers"].items():
        before = mid["workers"].get(name)
        if before is None:  # restarted: a new pid
            continue
        out[f"{name} rss"] = (w["rss"] or 0) - (before["rss"] or 0)
        out[f"{name} mlx active"] = w["active_bytes"] - before["active_bytes"]
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--models", help="directory with text/ and vision/; default: synthesize tiny ones")
    parser.add_argument("--requests", type=int, default=3000)
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--every", type=int, default=250, help="requests between memory samples")
    parser.add_argument("--max-tokens", type=int, default=8)
    parser.add_argument("--request-timeout", type=float, default=300.0)
    parser.add_argument("--out", help="write the samples and the growth as JSON here")
    args = parser.parse_args()
    signal.signal(signal.SIGTERM, _interrupt)  # so that the server is stopped on the way out
    with tempfile.TemporaryDirectory(prefix="mmserve-soak-") as tmpname:
        tmp = Path(tmpname)
        models, _ = find_models(SimpleNamespace(models=args.models), tmp)
        server = Server(SERVERS["mmserve"], models, tmp, ROOT)
        server.start(600)
        try:
            soak = Soak(server, SERVERS["mmserve"].model_field(server.models), args)
            samples = asyncio.run(drive(soak, server, args))
        finally:
            server.stop()
    result = {"requests": args.requests, "clients": args.clients, "status": soak.status, "errors": soak.errors}
    result["growth_second_half_bytes"] = growth(samples)
    result["samples"] = samples
    if args.out:
        Path(args.out).write_text(json.dumps(result, indent=1))
    for name, grew in result["growth_second_half_bytes"].items():
        log(f"  {name}: {grew / 2**20:+.1f} MiB over requests {samples[len(samples) // 2]['requests']}-{args.requests}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
