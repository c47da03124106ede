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
import math
import os
import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

__all__ = [
    "DEFAULT_BASE_URL",
    "Outcome",
    "RetryPolicy",
    "ask_about_image",
    "data_uri",
    "default_api_key",
    "local_error",
    "open_client",
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

    @property
    def ok(self) -> bool:
        return self.error is None

    @property
    def unreachable(self) -> bool:
        """The server could not be reached at all: no point in sending the next image."""
        return self.status is None and (self.error or {}).get("error", {}).get("code") == "connection_error"

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
) -> Outcome:
    """Ask ``prompt`` about the image at ``uri``; never raises for HTTP or connection failures."""
    import openai

    messages = [
        {
            "role": "user",
            "content": [{"type": "image_url", "image_url": {"url": uri}}, {"type": "text", "text": prompt}],
        }
    ]
    options: dict = {}
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
