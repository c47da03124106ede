"""Wire request -> internal ``Job``: routing, template-ready messages, sampling. Pure, no I/O."""

from __future__ import annotations

import json
from dataclasses import dataclass, field, replace

import msgspec

from .engines.messages import Sampling
from .errors import ContextLengthError, InvalidRequestError, ModelNotFoundError
from .protocol.openai import (
    ChatCompletionRequest,
    CompletionRequest,
    Sampled,
    TextPart,
    TokenizeRequest,
    prompt_of,
)
from .structured import response_grammar, tool_call_grammar

__all__ = ["AUTO", "ImageRef", "Job", "Route", "normalize", "normalize_completion", "normalize_tokenize", "pick_route"]

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
    tool_format: dict | None = None  # how the model calls tools (messages.Ready.tool_format)


@dataclass(frozen=True)
class ImageRef:
    url: str
    detail: str
    param: str  # e.g. "messages[0].content[1].image_url"
    max_side: int | None = None  # mmserve.max_image_side: start the guard's ladder here (up to its ceiling)
    min_side: int | None = None  # mmserve.min_image_side: do not shrink below this; refuse instead


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
    grammar: str | None = None  # llguidance's: the reply is held to it (response_format, a forced tool call)
    tools: list[dict] | None = None  # offered to the model, as its chat template takes them
    parallel_tool_calls: bool = True
    template_kwargs: dict = field(default_factory=dict)  # chat_template_kwargs and reasoning_effort
    logprobs: int | None = None  # None: none; else how many alternatives per token
    n: int = 1  # choices, each its own sequence in the batch
    prompt: str | list[int] | None = None  # a text completion's raw prompt (no chat template); messages is empty
    extra: dict = field(default_factory=dict)


def pick_route(requested: str | None, routes: list[Route], images: list[ImageRef]) -> Route:
    """The served model a request names (``auto`` or none: by whether it has images)."""
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


def _message(index: int, message, images: list[ImageRef]) -> dict:
    """One message as chat templates take it: tool calls with their arguments as objects."""
    out: dict = {"role": "system" if message.role == "developer" else message.role}
    out["content"] = _parts(index, message, images)
    if message.role == "tool":
        out["content"] = _flatten(out["content"])
        if message.tool_call_id is not None:
            out["tool_call_id"] = message.tool_call_id
    if message.tool_calls:
        if message.role != "assistant":
            raise InvalidRequestError("only assistant messages carry tool calls", param=f"messages[{index}].tool_calls")
        out["tool_calls"] = [
            {
                "id": call.id,
                "type": "function",
                "function": {
                    "name": call.function.name,
                    "arguments": _arguments(call.function.arguments, f"messages[{index}].tool_calls[{n}]"),
                },
            }
            for n, call in enumerate(message.tool_calls)
        ]
    return out


def _arguments(text: str, param: str) -> dict:
    try:
        arguments = json.loads(text) if text.strip() else {}
    except ValueError:
        arguments = None
    if not isinstance(arguments, dict):
        raise InvalidRequestError("a tool call's arguments must be a JSON object", param=f"{param}.function.arguments")
    return arguments


def _tools(request: ChatCompletionRequest, route: Route) -> tuple[list[dict] | None, str | None]:
    """The tools offered to the model, and the grammar of the call it must make, if it must."""
    choice = request.tool_choice
    if not request.tools or choice == "none":
        if choice not in (None, "none", "auto"):
            raise InvalidRequestError("tool_choice asks for a tool call but no tools are given", param="tool_choice")
        return None, None
    names = [tool.function.name for tool in request.tools]
    if len(set(names)) != len(names):
        raise InvalidRequestError("tool names must be unique", param="tools")
    if route.context_length and route.tool_format is None:  # loaded, and its template declares no format
        raise InvalidRequestError(
            f"the model '{route.name}' has no tool-call format in its chat template", param="tools"
        )
    tools = [msgspec.to_builtins(tool) for tool in request.tools]
    if choice in (None, "auto"):
        return tools, None
    if choice == "required":
        forced = request.tools
    else:
        forced = [tool for tool in request.tools if tool.function.name == choice.function.name]
        if not forced:
            raise InvalidRequestError(
                f"tool_choice names '{choice.function.name}', which is not in tools", param="tool_choice.function.name"
            )
    if request.response_format is not None and response_grammar(request.response_format) is not None:
        raise InvalidRequestError(
            "a forced tool call and a JSON response_format cannot both hold the reply", param="tool_choice"
        )
    grammar = tool_call_grammar(
        forced, route.tool_format, parallel=request.parallel_tool_calls and choice == "required"
    )
    return tools, grammar


def _logit_bias(request: Sampled, route: Route) -> dict[int, float] | None:
    """logit_bias with its token ids as integers, each within the model's vocabulary."""
    if not request.logit_bias:
        return None
    bias = {}
    for key, value in request.logit_bias.items():
        token = int(key) if key.isdigit() else -1
        if token < 0 or (route.vocab_size and token >= route.vocab_size):
            raise InvalidRequestError(
                f"logit_bias names {key!r}, which is not a token id of this model", param=f"logit_bias.{key}"[:300]
            )
        bias[token] = value
    return bias


def _template_kwargs(request: ChatCompletionRequest | TokenizeRequest) -> dict:
    """What the chat template is given besides the messages and tools."""
    kwargs = dict(request.chat_template_kwargs or {})
    reserved = {"messages", "tools", "add_generation_prompt", "tokenize", "documents", "chat_template"} & set(kwargs)
    if reserved:
        raise InvalidRequestError(
            f"chat_template_kwargs may not set {', '.join(sorted(reserved))}", param="chat_template_kwargs"
        )
    if request.reasoning_effort is not None:
        kwargs.setdefault("reasoning_effort", request.reasoning_effort)
    return kwargs


def _flatten(content: str | list[dict]) -> str:
    if isinstance(content, str):
        return content
    return "\n".join(part["text"] for part in content if part["type"] == "text")


def _within_model_bounds(request: Sampled, route: Route, chat: list[dict]) -> None:
    """The bounds that depend on the model, checked in time linear in the request's size."""
    if route.vocab_size and request.top_k is not None and request.top_k > route.vocab_size:
        raise InvalidRequestError(
            f"top_k is {request.top_k}; the model '{route.name}' has {route.vocab_size} tokens to choose from",
            param="top_k",
            code="invalid_value",
        )
    _prompt_within_context(route, chat)


def _prompt_within_context(route: Route, chat: list[dict]) -> None:
    """A prompt is at least its characters divided by the longest token's, so one that cannot
    fit the context is refused before it is templated or tokenized (and a prompt of
    millions of characters costs nothing but reading it)."""
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


def _routed_chat(messages: list, model: str | None, routes: list[Route]) -> tuple[list[dict], list[ImageRef], Route]:
    """Wire messages as the routed model's template takes them (a text model's as plain
    text), the images they carry, and the route."""
    images: list[ImageRef] = []
    chat = [_message(index, message, images) for index, message in enumerate(messages)]
    route = pick_route(model, routes, images)
    if route.kind != "vision":
        chat = [{**message, "content": _flatten(message["content"])} for message in chat]
    return chat, images, route


def normalize(request: ChatCompletionRequest, routes: list[Route]) -> Job:
    """Route a validated request and turn it into the engine-facing ``Job``."""
    chat, images, route = _routed_chat(request.messages, request.model, routes)
    if request.mmserve is not None and images:
        sides = {"max_side": request.mmserve.max_image_side, "min_side": request.mmserve.min_image_side}
        images = [replace(image, **sides) for image in images]
    _within_model_bounds(request, route, chat)
    tools, forced_call = _tools(request, route)
    if chat[-1]["role"] == "assistant":
        raise InvalidRequestError(
            "the last message must not be from the assistant", param=f"messages[{len(chat) - 1}].role"
        )

    return Job(
        route=route,
        messages=chat,
        images=images,
        max_tokens=request.max_completion_tokens or request.max_tokens,
        sampling=_sampling(request, route),
        stop=_stops(request),
        stream=request.stream,
        include_usage=bool(request.stream_options and request.stream_options.include_usage),
        grammar=forced_call or response_grammar(request.response_format),
        tools=tools,
        parallel_tool_calls=request.parallel_tool_calls,
        template_kwargs=_template_kwargs(request),
        logprobs=(request.top_logprobs or 0) if request.logprobs else None,
        n=request.n,
    )


def normalize_completion(request: CompletionRequest, routes: list[Route]) -> Job:
    """A text completion (a raw prompt, no chat template) as the text engine's ``Job``."""
    route = pick_route(request.model, routes, [])
    if route.kind != "text":
        raise InvalidRequestError(
            f"completions are served by a text model; '{route.name}' is a vision model", param="model"
        )
    prompt = prompt_of(request)
    if isinstance(prompt, list) and route.vocab_size and max(prompt) >= route.vocab_size:
        raise InvalidRequestError(f"the prompt holds a token id past the model's {route.vocab_size}", param="prompt")
    _within_model_bounds(request, route, [{"role": "user", "content": prompt if isinstance(prompt, str) else ""}])
    return Job(
        route=route,
        messages=[],
        prompt=prompt,
        images=[],
        max_tokens=request.max_tokens,
        sampling=_sampling(request, route),
        stop=_stops(request),
        stream=request.stream,
        include_usage=bool(request.stream_options and request.stream_options.include_usage),
        logprobs=request.logprobs,
        n=request.n,
    )


def normalize_tokenize(request: TokenizeRequest, routes: list[Route]) -> Job:
    """What to tokenize: a text on the model named (the text model by default), or chat
    messages rendered as a chat request with them would be."""
    if (request.prompt is None) == (request.messages is None):
        raise InvalidRequestError("give either prompt or messages", param="prompt")
    if request.prompt is not None:
        chat, images, route = [], [], pick_route(request.model, routes, [])
    else:
        chat, images, route = _routed_chat(request.messages, request.model, routes)
    _prompt_within_context(route, chat or [{"role": "user", "content": request.prompt}])
    tools = [msgspec.to_builtins(tool) for tool in request.tools] if request.tools else None
    return Job(
        route=route,
        messages=chat,
        images=images,
        prompt=request.prompt,
        max_tokens=1,
        sampling=Sampling(),
        stop=[],
        stream=False,
        include_usage=False,
        tools=tools,
        template_kwargs=_template_kwargs(request),
    )


def _stops(request: Sampled) -> list[str]:
    return [request.stop] if isinstance(request.stop, str) else list(request.stop or [])


def _sampling(request: Sampled, route: Route) -> Sampling:
    return Sampling(
        temperature=1.0 if request.temperature is None else request.temperature,
        top_p=1.0 if request.top_p is None else request.top_p,
        top_k=max(request.top_k or 0, 0),  # -1 (vLLM's spelling) is off too
        min_p=request.min_p or 0.0,
        seed=request.seed,
        repetition_penalty=request.repetition_penalty,
        presence_penalty=request.presence_penalty,
        frequency_penalty=request.frequency_penalty,
        logit_bias=_logit_bias(request, route),
    )
