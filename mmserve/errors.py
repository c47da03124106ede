"""The one exception hierarchy of mmserve.

Every error a client can see is an ``MMServeError``: it carries its HTTP status,
the OpenAI ``type`` and ``code``, and the ``param`` it is about, and renders as
``{"error": {"message", "type", "param", "code"}}``. Messages never carry request
payloads (base64, prompts) or internals.
"""

from __future__ import annotations

__all__ = [
    "AuthenticationError",
    "ClientDisconnectedError",
    "ContextLengthError",
    "EngineUnavailableError",
    "ImageError",
    "ImageFetchError",
    "ImageSourceForbiddenError",
    "InternalError",
    "InvalidRequestError",
    "MMServeError",
    "ModelNotFoundError",
    "NotFoundError",
    "OverloadedError",
    "PayloadTooLargeError",
]


class MMServeError(Exception):
    """Base class: an error with an HTTP status and an OpenAI error envelope."""

    status_code: int = 500
    type: str = "server_error"
    code: str | None = None

    def __init__(
        self,
        message: str,
        *,
        param: str | None = None,
        code: str | None = None,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.param = param
        if code is not None:
            self.code = code
        self.retry_after = retry_after

    def envelope(self) -> dict:
        return {"error": {"message": self.message, "type": self.type, "param": self.param, "code": self.code}}

    def headers(self) -> dict[str, str]:
        if self.retry_after is None:
            return {}
        return {"Retry-After": str(max(1, round(self.retry_after)))}


class InvalidRequestError(MMServeError):
    """The request is malformed or asks for something that cannot be done (400)."""

    status_code = 400
    type = "invalid_request_error"
    code = "invalid_request"


class ContextLengthError(InvalidRequestError):
    """The prompt (text plus image tokens) does not fit the model's context."""

    code = "context_length_exceeded"


class ImageError(InvalidRequestError):
    """An image part cannot be used: undecodable, too large, wrong type."""

    code = "invalid_image"


class ImageSourceForbiddenError(ImageError):
    """An image URL points somewhere this server may not go (scheme, address, path)."""

    code = "image_source_forbidden"


class ImageFetchError(ImageError):
    """A remote image could not be fetched (status, timeout, size, unreachable)."""

    code = "image_fetch_failed"


class AuthenticationError(MMServeError):
    status_code = 401
    type = "authentication_error"
    code = "invalid_api_key"


class NotFoundError(MMServeError):
    status_code = 404
    type = "not_found_error"
    code = "not_found"


class ModelNotFoundError(NotFoundError):
    type = "invalid_request_error"
    code = "model_not_found"


class PayloadTooLargeError(MMServeError):
    """The request, or the work it asks for, can never fit (413)."""

    status_code = 413
    type = "invalid_request_error"
    code = "request_too_large"


class OverloadedError(MMServeError):
    """Busy now, would fit later: retry after ``retry_after`` seconds (503)."""

    status_code = 503
    type = "server_overloaded"
    code = "overloaded"


class EngineUnavailableError(MMServeError):
    """The engine's worker is not running (starting, restarting, crashed)."""

    status_code = 503
    type = "server_error"
    code = "engine_unavailable"


class ClientDisconnectedError(MMServeError):
    """The client closed the connection before its answer was ready: nobody reads this
    response, which exists for the request's log line and metrics (nginx's 499)."""

    status_code = 499
    type = "invalid_request_error"
    code = "client_disconnected"


class InternalError(MMServeError):
    status_code = 500
    type = "server_error"
    code = "internal_error"
