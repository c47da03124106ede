"""Why the guard refuses or defers a request.

Each class carries what the HTTP layer needs to answer: the numbers for a 400
``context_length_exceeded``, what would fit for a 413, or the ``Retry-After``
for a 503. Messages hold sizes and token counts only, never request payloads.
"""

from __future__ import annotations

__all__ = [
    "AspectRatioError",
    "BusyError",
    "ContextTooLongError",
    "NeverFitsError",
    "PlanError",
]


class PlanError(Exception):
    """Base class: the guard cannot plan or admit this request as asked."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class ContextTooLongError(PlanError):
    """Text plus image tokens leave no room for a completion (-> 400)."""

    def __init__(self, prompt_tokens: int, context_length: int, *, image_tokens: int = 0) -> None:
        detail = f" ({image_tokens} of them for images)" if image_tokens else ""
        super().__init__(
            f"This model's maximum context length is {context_length} tokens, but the "
            f"prompt has {prompt_tokens} tokens{detail}, which leaves no room for a "
            "completion. Shorten the prompt, or send fewer or smaller images."
        )
        self.prompt_tokens = prompt_tokens
        self.context_length = context_length
        self.image_tokens = image_tokens


class NeverFitsError(PlanError):
    """The request cannot fit the memory budget even on an idle server (-> 413).

    ``would_fit`` says, in words, the largest request of this shape that fits.
    """

    def __init__(self, message: str, would_fit: str) -> None:
        super().__init__(message)
        self.would_fit = would_fit


class BusyError(PlanError):
    """The request fits, but not while the others run: retry later (-> 503)."""

    def __init__(self, retry_after_s: float, message: str | None = None) -> None:
        super().__init__(message or f"The server is busy; retry after {retry_after_s:g} s.")
        self.retry_after_s = retry_after_s


class AspectRatioError(PlanError, ValueError):
    """An image is more than 200 times longer than wide; the processor refuses it (-> 400)."""

    def __init__(self, width: int, height: int, limit: int = 200) -> None:
        ratio = max(width, height) / min(width, height)
        super().__init__(
            f"Image of {width}x{height} px has an aspect ratio of {ratio:.0f}:1; "
            f"the vision model accepts at most {limit}:1. Crop or pad the image."
        )
        self.width = width
        self.height = height
        self.limit = limit
