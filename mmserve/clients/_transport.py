"""One image question to an OpenAI-compatible server, with the retry rules of a batch job.

Overload (429, 503), other 5xx, 408, 409 and lost connections are retried with
exponential backoff, waiting at least what ``Retry-After`` asks. Any other 4xx is
the server's verdict on this input and is returned at once as a permanent failure.
The SDK's own retries are off (``max_retries=0``) so that this is the only policy.
"""

from __future__ import annotations

import asyncio
import base64
import email.utils
import json
import math
import os
import random
import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

__all__ = [
    "DEFAULT_BASE_URL",
    "Outcome",
    "RetryPolicy",
    "ServerInfo",
    "ServerUnreachableError",
    "Structured",
    "Throttle",
    "ask_about_image",
    "ask_structured",
    "data_uri",
    "default_api_key",
    "default_base_url",
    "fit_bytes",
    "local_error",
    "open_client",
    "read_image",
    "server_info",
]

DEFAULT_BASE_URL = "http://127.0.0.1:8000/v1"

# A Retry-After beyond this is treated as this: a batch job keeps trying rather than sleeping for hours.
MAX_RETRY_AFTER_S = 600.0

_MAGIC = (
    (b"\x89PNG\r\n\x1a\n", "png"),
    (b"\xff\xd8\xff", "jpeg"),
    (b"GIF87a", "gif"),
    (b"GIF89a", "gif"),
    (b"BM", "bmp"),
    (b"II*\x00", "tiff"),
    (b"MM\x00*", "tiff"),
)
_SUFFIX_TYPES = {
    ".png": "png",
    ".jpg": "jpeg",
    ".jpeg": "jpeg",
    ".webp": "webp",
    ".gif": "gif",
    ".bmp": "bmp",
    ".tif": "tiff",
    ".tiff": "tiff",
}


HEIF_SUFFIXES = frozenset({".heic", ".heif"})

# How long the first contact may take before a run gives up with one line (connection refused is instant).
PREFLIGHT_TIMEOUT_S = 5.0
PREFLIGHT_ATTEMPTS = 3


def default_base_url() -> str:
    """OPENAI_BASE_URL, or mmserve's default address."""
    return os.environ.get("OPENAI_BASE_URL") or DEFAULT_BASE_URL


def default_api_key() -> str:
    """OPENAI_API_KEY, or a placeholder: a server without --api-key accepts anything."""
    return os.environ.get("OPENAI_API_KEY") or "none"


def image_type(data: bytes, name: str = "") -> str:
    """The image subtype for a data URI, from the file's magic bytes, else its suffix, else png."""
    for magic, kind in _MAGIC:
        if data.startswith(magic):
            return kind
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "webp"
    return _SUFFIX_TYPES.get(os.path.splitext(name)[1].lower(), "png")


def data_uri(data: bytes, name: str = "") -> str:
    """``data:image/<type>;base64,...`` for the image bytes ``data``."""
    return f"data:image/{image_type(data, name)};base64,{base64.b64encode(data).decode('ascii')}"


class ServerUnreachableError(ConnectionError):
    """No server answered at the base URL: one line says where and what to check."""


@dataclass(frozen=True)
class ServerInfo:
    """What the server advertises for image work (``/v1/models``: the vision model's ``mmserve``).

    Every field is None for a server that is not mmserve; the clients then fall back to
    their own defaults.
    """

    image_side: int | None = None  # where the guard starts an image by default
    max_image_side: int | None = None  # the most a request may ask for (--max-image-side bounds it)
    max_image_bytes: int | None = None
    max_body_bytes: int | None = None
    max_batch_size: int | None = None
    replicas: int | None = None
    tier: str | None = None

    @property
    def is_mmserve(self) -> bool:
        return self.max_image_side is not None

    def concurrency(self, fallback: int, cap: int = 16) -> int:
        """Requests to keep in flight so that every worker's batch has work, within ``cap``."""
        if not self.max_batch_size:
            return fallback
        return max(1, min(cap, (self.replicas or 1) * self.max_batch_size))

    def byte_limit(self) -> int | None:
        """The largest image this server takes, in bytes of the file (base64 inflates 4/3 in the body)."""
        limits = [self.max_image_bytes, (self.max_body_bytes * 3 // 4 - 65536) if self.max_body_bytes else None]
        known = [limit for limit in limits if limit]
        return min(known) if known else None


async def server_info(client) -> ServerInfo:
    """Ask the server for its image limits; ``ServerUnreachableError`` within about 15 s when none answers."""
    import openai

    last: Exception | None = None
    for attempt in range(PREFLIGHT_ATTEMPTS):
        try:
            page = await client.with_options(timeout=PREFLIGHT_TIMEOUT_S).models.list()
        except (openai.APIConnectionError, openai.APITimeoutError) as exc:
            last = exc.__cause__ or exc
            await asyncio.sleep(1.0 * (attempt + 1))
            continue
        except openai.APIStatusError as exc:
            if exc.status_code in (401, 403):
                raise ServerUnreachableError(
                    f"{client.base_url} refused the API key (HTTP {exc.status_code}); set --api-key or OPENAI_API_KEY"
                ) from None
            return ServerInfo()  # not an mmserve (or no /models): defaults apply
        for model in page.data:
            limits = (model.model_extra or {}).get("mmserve")
            if isinstance(limits, dict):
                fields = ServerInfo.__dataclass_fields__
                return ServerInfo(**{key: value for key, value in limits.items() if key in fields})
        return ServerInfo()
    detail = str(last) or type(last).__name__
    raise ServerUnreachableError(
        f"cannot reach {client.base_url} ({detail}); is the server running? (set --base-url or OPENAI_BASE_URL)"
    )


def read_image(path, limit: int | None = None) -> bytes:
    """An image file's bytes ready to send: HEIC/HEIF converted (pillow-heif), and re-encoded
    smaller when over ``limit`` bytes, so that the server does not refuse it for its size."""
    path = os.fspath(path)
    data = open(path, "rb").read()
    if os.path.splitext(path)[1].lower() in HEIF_SUFFIXES:
        data = _heif_to_jpeg(data)
    if limit is not None and len(data) > limit:
        data = fit_bytes(data, limit)
    return data


def _heif_to_jpeg(data: bytes) -> bytes:
    try:
        import pillow_heif
    except ImportError:
        raise OSError("HEIC/HEIF images need pillow-heif: pip install pillow-heif") from None
    import io

    from PIL import Image, ImageOps

    pillow_heif.register_heif_opener()
    with Image.open(io.BytesIO(data)) as image:
        picture = ImageOps.exif_transpose(image).convert("RGB")
    buffer = io.BytesIO()
    picture.save(buffer, format="JPEG", quality=92)
    return buffer.getvalue()


def fit_bytes(data: bytes, limit: int) -> bytes:
    """The image re-encoded under ``limit`` bytes: as JPEG (quality 90), then smaller by 0.8 a step.

    Pixels the server would not use anyway go first: a page above the byte limit is far
    larger than any side the guard plans.
    """
    import io

    from PIL import Image, ImageOps

    with Image.open(io.BytesIO(data)) as image:
        picture = ImageOps.exif_transpose(image)
        picture = picture.convert("L" if picture.mode in ("1", "L", "I;16") else "RGB")
    while True:
        buffer = io.BytesIO()
        picture.save(buffer, format="JPEG", quality=90)
        if buffer.tell() <= limit or max(picture.size) <= 64:
            return buffer.getvalue()
        width, height = picture.size
        picture = picture.resize((max(1, int(width * 0.8)), max(1, int(height * 0.8))), Image.Resampling.LANCZOS)


class Throttle:
    """How many requests may be in flight: ``limit`` at first, halved when the server answers
    overload (429/503), grown back by one after ``limit`` successes in a row.

    The server's memory guard queues what does not fit and answers 503 when the wait runs
    out; backing off keeps the pages that wait at the client, not in a queue that times out.
    """

    def __init__(self, limit: int) -> None:
        self.ceiling = max(1, limit)
        self.limit = self.ceiling
        self.active = 0
        self._streak = 0
        self._changed = asyncio.Condition()

    async def __aenter__(self) -> Throttle:
        async with self._changed:
            await self._changed.wait_for(lambda: self.active < self.limit)
            self.active += 1
        return self

    async def __aexit__(self, *exc_info) -> None:
        async with self._changed:
            self.active -= 1
            self._changed.notify_all()

    def overloaded(self) -> None:
        self.limit = max(1, min(self.limit, self.active) // 2 or 1)
        self._streak = 0

    def succeeded(self) -> None:
        self._streak += 1
        if self._streak >= self.limit and self.limit < self.ceiling:
            self.limit += 1
            self._streak = 0


@dataclass(frozen=True)
class RetryPolicy:
    """How often and how long to retry a transient failure."""

    retries: int = 8
    backoff_s: float = 1.0
    max_backoff_s: float = 60.0

    def delay(self, attempt: int, retry_after: float | None) -> float:
        """Seconds to wait before retry number ``attempt`` (1-based)."""
        backoff = min(self.max_backoff_s, self.backoff_s * 2 ** (attempt - 1))
        backoff *= random.uniform(0.5, 1.0)  # jitter: concurrent workers should not retry in lockstep
        if retry_after is None:
            return backoff
        advised = min(retry_after, MAX_RETRY_AFTER_S)
        return advised + random.uniform(0, min(1.0, 0.1 * advised + 0.1))


class Structured:
    """JSON output against a JSON schema: ``response_format`` where the server takes it, else
    the schema in the prompt (said once through ``on_fallback``) and the JSON parsed from the text."""

    def __init__(self, schema: dict, name: str = "result") -> None:
        if not isinstance(schema, dict):
            raise ValueError("a JSON schema must be a JSON object")
        self.schema = schema
        self.name = re.sub(r"[^A-Za-z0-9_-]", "_", name)[:64] or "result"
        self.supported: bool | None = None  # None: not yet known

    def response_format(self) -> dict:
        return {"type": "json_schema", "json_schema": {"name": self.name, "schema": self.schema}}

    def prompt(self, prompt: str) -> str:
        schema = json.dumps(self.schema, ensure_ascii=False)
        return f"{prompt}\n\nAnswer with only a JSON object, no other text, that matches this JSON schema:\n{schema}"

    @staticmethod
    def parse(text: str) -> tuple[object, str | None]:
        """The JSON value in ``text`` (code fences and text around one object allowed), or an error."""
        candidate = text.strip()
        fenced = re.search(r"```(?:json)?\s*(.*?)```", candidate, re.DOTALL)
        if fenced:
            candidate = fenced.group(1).strip()
        try:
            return json.loads(candidate), None
        except ValueError:
            pass
        start, end = candidate.find("{"), candidate.rfind("}")
        if 0 <= start < end:
            try:
                return json.loads(candidate[start : end + 1]), None
            except ValueError:
                pass
        return None, "the answer is not JSON"

    @staticmethod
    def refused(outcome) -> bool:
        """The server answered that it does not take ``response_format``."""
        error = (outcome.error or {}).get("error") or {}
        return outcome.status == 400 and str(error.get("param") or "").startswith("response_format")


async def ask_structured(client, *, structured: Structured | None, prompt: str, on_fallback=None, **options):
    """``ask_about_image``, with ``structured`` JSON output when given (see ``Structured``).

    The outcome's ``data`` holds the parsed JSON, ``data_error`` why there is none, and
    ``data_via`` how it was asked for ("response_format" or "prompt").
    """
    if structured is None:
        return await ask_about_image(client, prompt=prompt, **options)
    outcome = None
    if structured.supported is not False:
        outcome = await ask_about_image(client, prompt=prompt, response_format=structured.response_format(), **options)
        if Structured.refused(outcome):
            if structured.supported is None and on_fallback is not None:
                message = ((outcome.error or {}).get("error") or {}).get("message")
                on_fallback(f"the server does not take response_format ({message}); asking for JSON in the prompt")
            structured.supported = False
            outcome = None
        elif outcome.ok:
            structured.supported = True
            outcome.data_via = "response_format"
    if outcome is None:
        outcome = await ask_about_image(client, prompt=structured.prompt(prompt), **options)
        outcome.data_via = "prompt"
    if outcome.ok:
        outcome.data, outcome.data_error = Structured.parse(outcome.text or "")
    return outcome


@dataclass
class Outcome:
    """What came of one question: an answer, or an error envelope."""

    text: str | None = None
    finish_reason: str | None = None
    usage: dict | None = None
    model: str | None = None
    mmserve: dict | None = None  # the server's report; None from servers that are not mmserve
    error: dict | None = None  # {"error": {"message", "type", "param", "code"}}
    status: int | None = None  # HTTP status of the last attempt; None when no answer came
    permanent: bool = False  # True: retrying cannot help (the server refused this input)
    attempts: int = 0
    elapsed_s: float = 0.0
    data: object = None  # structured output: the JSON parsed from the answer
    data_error: str | None = None
    data_via: str | None = None  # "response_format" | "prompt"

    @property
    def ok(self) -> bool:
        return self.error is None

    @property
    def unreachable(self) -> bool:
        """The server could not be reached at all: no point in sending the next image."""
        return self.status is None and (self.error or {}).get("error", {}).get("code") == "connection_error"

    def structured_fields(self) -> dict:
        """The journal line's fields for structured output (``--schema``)."""
        return {"json": self.data, "json_error": self.data_error, "json_via": self.data_via}

    def record_fields(self) -> dict:
        """The journal line's fields every client writes the same way."""
        return {
            "finish_reason": self.finish_reason,
            "usage": self.usage,
            "model": self.model,
            "mmserve": self.mmserve,
            "error": self.error,
            "status": self.status,
            "permanent": self.permanent,
            "attempts": self.attempts,
            "elapsed_s": self.elapsed_s,
            "finished_at": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        }


def open_client(base_url: str, api_key: str | None, timeout: float):
    """An ``openai.AsyncOpenAI`` with the SDK's retries off (ours apply)."""
    try:
        import openai
    except ImportError:
        raise ImportError("the batch clients need the openai package: pip install openai") from None
    return openai.AsyncOpenAI(base_url=base_url, api_key=api_key or default_api_key(), max_retries=0, timeout=timeout)


RetryNotice = Callable[[int | None, float, int], None]  # (status or None, delay_s, attempt)


async def ask_about_image(
    client,
    *,
    uri: str,
    prompt: str,
    model: str,
    max_tokens: int | None,
    temperature: float | None,
    policy: RetryPolicy,
    on_retry: RetryNotice | None = None,
    detail: str | None = None,
    image_side: int | None = None,
    response_format: dict | None = None,
) -> Outcome:
    """Ask ``prompt`` about the image at ``uri``; never raises for HTTP or connection failures.

    ``detail`` is OpenAI's hint; ``image_side`` asks mmserve to start the image at that
    longer side (``mmserve.max_image_side``, bounded by the server's ceiling).
    """
    import openai

    image_url = {"url": uri}
    if detail is not None:
        image_url["detail"] = detail
    messages = [
        {
            "role": "user",
            "content": [{"type": "image_url", "image_url": image_url}, {"type": "text", "text": prompt}],
        }
    ]
    options: dict = {}
    if image_side is not None:
        options["extra_body"] = {"mmserve": {"max_image_side": image_side}}
    if response_format is not None:
        options["response_format"] = response_format
    if max_tokens is not None:
        options["max_tokens"] = max_tokens
    if temperature is not None:
        options["temperature"] = temperature
    started = time.monotonic()
    attempt = 0
    while True:
        attempt += 1
        retry_after = None
        try:
            completion = await client.chat.completions.create(model=model, messages=messages, **options)
        except openai.APIStatusError as exc:
            outcome = Outcome(error=_envelope(exc), status=exc.status_code, permanent=not _retryable(exc.status_code))
            retry_after = _retry_after(exc.response.headers)
        except openai.APITimeoutError:
            outcome = Outcome(error=local_error(f"no answer within the timeout from {client.base_url}", "timeout"))
        except openai.APIConnectionError as exc:
            detail = exc.__cause__ or exc  # the SDK's own message is just "Connection error."
            outcome = Outcome(error=local_error(f"cannot reach {client.base_url}: {detail}", "connection_error"))
        except openai.APIError as exc:  # a 2xx the SDK could not read: not a verdict on the image
            outcome = Outcome(error=local_error(f"unreadable response: {exc}", "bad_response"))
        else:
            outcome = _answer(completion)
        outcome.attempts = attempt
        if outcome.ok or outcome.permanent or attempt > policy.retries or outcome.status == 200:
            outcome.elapsed_s = round(time.monotonic() - started, 3)
            return outcome
        delay = policy.delay(attempt, retry_after)
        if on_retry is not None:
            on_retry(outcome.status, delay, attempt)
        await asyncio.sleep(delay)


def _answer(completion) -> Outcome:
    if not completion.choices:
        return Outcome(error=local_error("the response has no choices", "bad_response"), status=200)
    choice = completion.choices[0]
    extra = completion.model_extra or {}
    return Outcome(
        text=choice.message.content or "",
        finish_reason=choice.finish_reason,
        usage=completion.usage.model_dump(exclude_none=True) if completion.usage else None,
        model=completion.model,
        mmserve=extra.get("mmserve"),
        status=200,
    )


def _retryable(status: int) -> bool:
    return status in (408, 409, 429) or status >= 500


def _envelope(exc) -> dict:
    """The server's own error envelope, or one built from what the SDK saw."""
    try:
        body = exc.response.json()
    except ValueError:  # not JSON: a proxy's HTML page, say
        body = None
    if isinstance(body, dict) and isinstance(body.get("error"), dict):
        return {"error": body["error"]}
    return {"error": {"message": f"HTTP {exc.status_code}: {exc.message}", "type": None, "param": None, "code": None}}


def local_error(message: str, code: str) -> dict:
    """An error envelope for a failure on this side (unreadable input, no answer), as the server would send."""
    return {"error": {"message": message, "type": "client_error", "param": None, "code": code}}


def _retry_after(headers) -> float | None:
    """Seconds from ``retry-after-ms`` or ``Retry-After`` (seconds or an HTTP date)."""
    for name, divisor in (("retry-after-ms", 1000.0), ("retry-after", 1.0)):
        value = headers.get(name)
        if value is None:
            continue
        try:
            seconds = float(value) / divisor
        except ValueError:
            parsed = email.utils.parsedate_tz(value)
            if parsed is None:
                continue
            seconds = email.utils.mktime_tz(parsed) - time.time()
        if not math.isnan(seconds):
            return max(0.0, seconds)
    return None
