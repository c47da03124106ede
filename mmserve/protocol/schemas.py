"""Wire shapes of what mmserve adds to OpenAI's, and of its operator routes.

These Structs describe bodies the handlers build as plain dicts (the ``mmserve`` report,
``/v1/models``, ``/health``, ``/ready``, ``/admin/status``) and the error envelope every
non-2xx answer carries; the OpenAPI document (``mmserve/openapi.py``) is made from them.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from msgspec import Meta, Struct

__all__ = [
    "AdminStatus",
    "EngineState",
    "ErrorDetail",
    "ErrorEnvelope",
    "Health",
    "ImageReport",
    "MMServeReport",
    "MemoryReport",
    "ModelCard",
    "ModelList",
    "Readiness",
]

Size = Annotated[list[int], Meta(min_length=2, max_length=2, description="[width, height] in pixels")]


class ErrorDetail(Struct):
    message: Annotated[str, Meta(description="what went wrong, never with the request's payload")]
    type: Annotated[str, Meta(examples=["invalid_request_error", "server_overloaded", "server_error"])]
    param: Annotated[str | None, Meta(description="the field it is about, e.g. messages[0].content[1].image_url")]
    code: Annotated[str | None, Meta(examples=["invalid_value", "invalid_image", "insufficient_memory"])]


class ErrorEnvelope(Struct):
    """Every non-2xx answer (and, once streaming, an SSE `error` event's data)."""

    error: ErrorDetail


class ImageReport(Struct, omit_defaults=True):
    """What the guard did to one image."""

    original: Size
    resized: Annotated[Size, Meta(description="the size it was sent to the model at")]
    tokens: Annotated[int, Meta(description="image tokens in the prompt")]
    prompt_tokens: Annotated[int | None, Meta(description="everything the image adds to the prompt")] = None
    model_input: Annotated[Size | None, Meta(description="what the processor turned it into, where different")] = None
    shrunk: Annotated[bool, Meta(description="made smaller for the side limit or for memory")] = False
    snapped: Annotated[bool, Meta(description="only rounded to the model's grid (a few pixels)")] = False
    fixed_resolution: Annotated[bool, Meta(description="the model sees every image at one size")] = False


class MemoryReport(Struct):
    budget_bytes: int
    planned_peak_bytes: int


class MMServeReport(Struct, omit_defaults=True):
    """The `mmserve` object of a response (in the final chunk when streaming)."""

    route: Literal["text", "vision"]
    model: str
    images: list[ImageReport]
    resized_count: Annotated[int, Meta(description="images shrunk for the side limit or memory")]
    snapped_count: Annotated[int, Meta(description="images only rounded to the model's grid")]
    prompt_tokens_planned: int
    memory: MemoryReport
    max_tokens_clamped_from: Annotated[int | None, Meta(description="the max_tokens asked, where clamped")] = None


class ModelCard(Struct, omit_defaults=True):
    id: str
    created: int
    object: Literal["model"] = "model"
    owned_by: str = "mmserve"
    engine: Literal["text", "vision"] | None = None
    context_length: int | None = None
    ready: bool | None = None
    description: str | None = None


class ModelList(Struct):
    data: list[ModelCard]
    object: Literal["list"] = "list"


class Health(Struct):
    status: Literal["ok"]


class EngineState(Struct, omit_defaults=True):
    engine: Literal["text", "vision"]
    state: Annotated[str, Meta(examples=["finding", "starting", "ready", "restarting", "failed"])]
    reason: str
    model: str | None = None
    replicas: int | None = None
    restarts: int | None = None
    inflight: int | None = None


class Readiness(Struct, omit_defaults=True):
    status: Literal["ready", "not_ready"]
    engines: dict[str, EngineState]
    reason: Annotated[str | None, Meta(description="why not ready: what is still loading")] = None


class AdminStatus(Struct):
    guard: Annotated[dict[str, Any], Meta(description="tier, backend, budget, held bytes, calibration, decisions")]
    workers: Annotated[list[dict[str, Any]], Meta(description="each worker's state and memory")]
