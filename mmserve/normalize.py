"""Wire request -> internal ``Job``: routing, template-ready messages, sampling. Pure, no I/O."""

from __future__ import annotations

from dataclasses import dataclass, field

from .engines.messages import Sampling
from .errors import ContextLengthError, InvalidRequestError, ModelNotFoundError
from .protocol.openai import ChatCompletionRequest, TextPart
from .structured import response_grammar

__all__ = ["AUTO", "ImageRef", "Job", "Route", "normalize"]

AUTO = "auto"


@dataclass(frozen=True)
class Route:
    """A served model as routing sees it."""

    kind: str  # "text" | "vision"
    name: str
    path: str
    # The model's own bounds, once a worker has loaded it (0: not known yet).
    vocab_size: int = 0
    context_length: int = 0
    longest_token_chars: int = 0


@dataclass(frozen=True)
class ImageRef:
    url: str
    detail: str
    param: str  # e.g. "messages[0].content[1].image_url"


@dataclass(frozen=True)
class Job:
    route: Route
    messages: list[dict]  # ready for the engine's chat template
    images: list[ImageRef]
    max_tokens: int | None
    sampling: Sampling
    stop: list[str]
    stream: bool
    include_usage: bool
    grammar: str | None = None  # llguidance's: the reply is held to it (response_format)
    extra: dict = field(default_factory=dict)


def _pick_route(requested: str | None, routes: list[Route], images: list[ImageRef]) -> Route:
    by_kind = {route.kind: route for route in routes}
    if requested in (None, "", AUTO):
        if images:
            if "vision" not in by_kind:
                raise InvalidRequestError(
                    "this server has no vision model, so it cannot take images", param=images[0].param
                )
            return by_kind["vision"]
        return by_kind.get("text") or by_kind["vision"]
    for route in routes:
        if requested in (route.name, route.path):
            if images and route.kind != "vision":
                raise InvalidRequestError(
                    f"model '{route.name}' is a text model and cannot take images", param=images[0].param
                )
            return route
    names = ", ".join([AUTO] + [route.name for route in routes])
    raise ModelNotFoundError(f"the model '{requested}' does not exist; served: {names}", param="model")


def _parts(index: int, message, images: list[ImageRef]) -> str | list[dict]:
    """Content as a string, or as text / image parts in order (images collected on the way)."""
    if message.content is None or isinstance(message.content, str):
        return message.content or ""
    parts: list[dict] = []
    for part_index, part in enumerate(message.content):
        if isinstance(part, TextPart):
            parts.append({"type": "text", "text": part.text})
            continue
        param = f"messages[{index}].content[{part_index}]"
        if message.role != "user":
            raise InvalidRequestError("images are only accepted in user messages", param=param)
        images.append(ImageRef(part.image_url.url, part.image_url.detail, f"{param}.image_url"))
        parts.append({"type": "image"})
    return parts


def _flatten(content: str | list[dict]) -> str:
    if isinstance(content, str):
        return content
    return "\n".join(part["text"] for part in content if part["type"] == "text")


def _within_model_bounds(request: ChatCompletionRequest, route: Route, chat: list[dict]) -> None:
    """The bounds that depend on the model, checked in time linear in the request's size.

    A prompt is at least its characters divided by the longest token's, so one that cannot
    fit the context is refused before it is templated or tokenized (and a prompt of
    millions of characters costs nothing but reading it)."""
    if route.vocab_size and request.top_k is not None and request.top_k > route.vocab_size:
        raise InvalidRequestError(
            f"top_k is {request.top_k}; the model '{route.name}' has {route.vocab_size} tokens to choose from",
            param="top_k",
            code="invalid_value",
        )
    if not (route.context_length and route.longest_token_chars):
        return
    chars = sum(
        len(message["content"])
        if isinstance(message["content"], str)
        else sum(len(part["text"]) for part in message["content"] if part["type"] == "text")
        for message in chat
    )
    least = -(-chars // route.longest_token_chars)
    if least > route.context_length:
        raise ContextLengthError(
            f"the messages hold {chars} characters, at least {least} tokens for this model (a token is at most "
            f"{route.longest_token_chars} characters), more than its context of {route.context_length} tokens",
            param="messages",
        )


def normalize(request: ChatCompletionRequest, routes: list[Route]) -> Job:
    """Route a validated request and turn it into the engine-facing ``Job``."""
    images: list[ImageRef] = []
    chat = [
        {"role": "system" if message.role == "developer" else message.role, "content": _parts(index, message, images)}
        for index, message in enumerate(request.messages)
    ]
    route = _pick_route(request.model, routes, images)
    if route.kind != "vision":
        chat = [{"role": message["role"], "content": _flatten(message["content"])} for message in chat]
    _within_model_bounds(request, route, chat)
    if chat[-1]["role"] == "assistant":
        raise InvalidRequestError(
            "the last message must not be from the assistant", param=f"messages[{len(chat) - 1}].role"
        )

    stop = [request.stop] if isinstance(request.stop, str) else list(request.stop or [])
    sampling = Sampling(
        temperature=1.0 if request.temperature is None else request.temperature,
        top_p=1.0 if request.top_p is None else request.top_p,
        top_k=max(request.top_k or 0, 0),  # -1 (vLLM's spelling) is off too
        min_p=request.min_p or 0.0,
        seed=request.seed,
        repetition_penalty=request.repetition_penalty,
        presence_penalty=request.presence_penalty,
        frequency_penalty=request.frequency_penalty,
    )
    return Job(
        route=route,
        messages=chat,
        images=images,
        max_tokens=request.max_completion_tokens or request.max_tokens,
        sampling=sampling,
        stop=stop,
        stream=request.stream,
        include_usage=bool(request.stream_options and request.stream_options.include_usage),
        grammar=response_grammar(request.response_format),
    )
