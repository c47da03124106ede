"""OpenAI chat-completions wire types (msgspec Structs), requests and responses.

Decoding a request body goes through ``decode_chat_request``, which turns every
msgspec complaint into an ``InvalidRequestError`` whose ``param`` is the field path
in OpenAI's spelling (``messages[0].content[1].image_url``).
"""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal, TypeVar

import msgspec
from msgspec import Meta, Struct

from ..errors import InvalidRequestError

__all__ = [
    "ChatCompletion",
    "ChatCompletionChunk",
    "ChatCompletionRequest",
    "ChatMessage",
    "Choice",
    "ChoiceLogprobs",
    "ChunkChoice",
    "DetokenizeRequest",
    "DetokenizeResponse",
    "CompletionChoice",
    "CompletionLogprobs",
    "CompletionRequest",
    "PromptTokensDetails",
    "DeltaMessage",
    "FunctionDelta",
    "ImagePart",
    "ImageURL",
    "JSONObjectFormat",
    "JSONSchemaFormat",
    "MMServeOptions",
    "Message",
    "TextCompletion",
    "TextPart",
    "TokenizeRequest",
    "TokenizeResponse",
    "Tool",
    "ToolCall",
    "ToolCallDelta",
    "Usage",
    "decode_chat_request",
    "decode_completion_request",
    "decode_request",
    "prompt_of",
]

# Bounds of the request's fields that do not depend on the model (docs/usage.md lists them
# all). Those that do (prompt length against the context, top_k against the vocabulary,
# max_tokens against what fits) are checked once the route is known.
MAX_TOKENS_LIMIT = 1 << 31  # anything larger is a client bug, not a wish: larger values are clamped by the guard
MAX_MESSAGES = 10_000
MAX_CONTENT_PARTS = 1_000  # per message
MAX_STOP_SEQUENCES = 16
MAX_STOP_CHARS = 1_024  # per stop sequence
MAX_NAME_CHARS = 256  # model, message name, user
MAX_TOOLS = 128  # tools offered, tool calls in one assistant turn
MAX_LOGIT_BIAS = 300  # tokens biased, as OpenAI bounds it
MAX_CHOICES = 128  # n, as OpenAI bounds it
SEED_RANGE = (-(1 << 63), (1 << 63) - 1)  # a 64-bit signed integer, as vLLM takes it


class ImageURL(Struct, forbid_unknown_fields=False):
    url: Annotated[str, Meta(min_length=1)]
    detail: Literal["auto", "low", "high"] = "auto"


class TextPart(Struct, tag_field="type", tag="text"):
    text: str


class ImagePart(Struct, tag_field="type", tag="image_url"):
    image_url: ImageURL


ContentPart = TextPart | ImagePart


Name = Annotated[str, Meta(max_length=MAX_NAME_CHARS)]
StopSequence = Annotated[str, Meta(min_length=1, max_length=MAX_STOP_CHARS)]


FunctionName = Annotated[str, Meta(min_length=1, max_length=64, pattern="^[A-Za-z0-9_.-]+$")]


class FunctionCall(Struct, forbid_unknown_fields=False):
    name: FunctionName
    arguments: str  # JSON text, as OpenAI sends it


class ToolCall(Struct, forbid_unknown_fields=False):
    id: Annotated[str, Meta(max_length=MAX_NAME_CHARS)]
    function: FunctionCall
    type: Literal["function"] = "function"


class Message(Struct, forbid_unknown_fields=False):
    role: Literal["system", "developer", "user", "assistant", "tool"]
    content: str | Annotated[list[ContentPart], Meta(max_length=MAX_CONTENT_PARTS)] | None = None
    name: Name | None = None
    tool_calls: Annotated[list[ToolCall], Meta(max_length=MAX_TOOLS)] | None = None  # assistant turns
    tool_call_id: Annotated[str, Meta(max_length=MAX_NAME_CHARS)] | None = None  # tool turns


class Function(Struct, forbid_unknown_fields=False):
    name: FunctionName
    description: str | None = None
    parameters: dict[str, Any] | None = None  # a JSON schema; absent: no arguments
    strict: bool | None = None


class Tool(Struct, forbid_unknown_fields=False):
    function: Function
    type: Literal["function"] = "function"


class NamedFunction(Struct, forbid_unknown_fields=False):
    name: FunctionName


class NamedToolChoice(Struct, forbid_unknown_fields=False):
    function: NamedFunction
    type: Literal["function"] = "function"


ToolChoice = Literal["none", "auto", "required"] | NamedToolChoice


class JSONSchema(Struct, forbid_unknown_fields=False):
    name: Annotated[str, Meta(min_length=1, max_length=64, pattern="^[A-Za-z0-9_-]+$")]
    schema: dict[str, Any] | None = None  # absent: any JSON object
    strict: bool | None = None
    description: str | None = None


class TextFormat(Struct, tag_field="type", tag="text"):
    pass


class JSONObjectFormat(Struct, tag_field="type", tag="json_object"):
    pass


class JSONSchemaFormat(Struct, tag_field="type", tag="json_schema"):
    json_schema: JSONSchema


ResponseFormat = TextFormat | JSONObjectFormat | JSONSchemaFormat


class StreamOptions(Struct, forbid_unknown_fields=False):
    include_usage: bool = False


Probability = Annotated[float, Meta(ge=0.0, le=1.0)]
Penalty = Annotated[float, Meta(ge=-2.0, le=2.0)]
TokenCount = Annotated[int, Meta(ge=1, lt=MAX_TOKENS_LIMIT)]


ImageSide = Annotated[int, Meta(ge=28, le=65536)]


class MMServeOptions(Struct, forbid_unknown_fields=False):
    """The request's ``mmserve`` extension (``extra_body={"mmserve": {...}}`` with the openai SDK)."""

    max_image_side: ImageSide | None = None  # start images here, up to the server's ceiling
    min_image_side: ImageSide | None = None  # shrink no further for memory; refuse instead


class Sampled(Struct, kw_only=True, forbid_unknown_fields=False):
    """What chat and text completions share: the model, streaming, length and sampling."""

    model: Name | None = None
    stream: bool = False
    stream_options: StreamOptions | None = None
    max_tokens: TokenCount | None = None
    temperature: Annotated[float, Meta(ge=0.0, le=2.0)] | None = None
    top_p: Annotated[float, Meta(gt=0.0, le=1.0)] | None = None
    top_k: Annotated[int, Meta(ge=-1, lt=MAX_TOKENS_LIMIT)] | None = None  # 0 and -1: off
    min_p: Probability | None = None
    seed: Annotated[int, Meta(ge=SEED_RANGE[0], le=SEED_RANGE[1])] | None = None
    stop: StopSequence | Annotated[list[StopSequence], Meta(max_length=MAX_STOP_SEQUENCES)] | None = None
    presence_penalty: Penalty | None = None
    frequency_penalty: Penalty | None = None
    repetition_penalty: Annotated[float, Meta(gt=0.0, le=10.0)] | None = None
    n: Annotated[int, Meta(ge=1, le=MAX_CHOICES)] = 1  # the server's max_choices may bound it lower
    # Token id (as a string, OpenAI's spelling) -> a bias added to its logit.
    logit_bias: (
        Annotated[dict[str, Annotated[float, Meta(ge=-100, le=100)]], Meta(max_length=MAX_LOGIT_BIAS)] | None
    ) = None
    user: Name | None = None


class ChatCompletionRequest(Sampled, kw_only=True, forbid_unknown_fields=False):
    messages: Annotated[list[Message], Meta(min_length=1, max_length=MAX_MESSAGES)]
    max_completion_tokens: TokenCount | None = None
    logprobs: bool | None = None
    top_logprobs: Annotated[int, Meta(ge=0, le=20)] | None = None
    tools: Annotated[list[Tool], Meta(max_length=MAX_TOOLS)] | None = None
    tool_choice: ToolChoice | None = None
    parallel_tool_calls: bool = True
    # Passed to the model's chat template, e.g. {"enable_thinking": false}; reasoning_effort too.
    chat_template_kwargs: dict[str, Any] | None = None
    reasoning_effort: Literal["none", "minimal", "low", "medium", "high"] | None = None
    response_format: ResponseFormat | None = None
    functions: list[Any] | None = None  # the legacy form of tools: refused when asked for
    mmserve: MMServeOptions | None = None


class CompletionRequest(Sampled, kw_only=True, forbid_unknown_fields=False):
    """POST /v1/completions: a raw prompt, no chat template."""

    # A string or token ids, or a list holding one of them (OpenAI's lists of several prompts
    # are refused); checked by ``prompt_of``.
    prompt: str | Annotated[list[Any], Meta(min_length=1)]
    max_tokens: TokenCount | None = 16  # OpenAI's default for completions
    echo: bool = False
    logprobs: Annotated[int, Meta(ge=0, le=5)] | None = None  # the legacy API: alternatives per token
    suffix: str | None = None  # refused: no fill-in-the-middle
    best_of: Annotated[int, Meta(ge=1, le=1)] | None = None


Request = TypeVar("Request", bound=Struct)

_PATH = re.compile(r" - at `\$(?P<path>[^`]*)`$")
_MISSING = re.compile(r"missing required field `(\w+)`")


def decode_request(body: bytes, kind: type[Request]) -> Request:
    """Parse and validate a request body; errors are 400s naming the field."""
    try:
        raw = msgspec.json.decode(body)
    except msgspec.DecodeError:
        raise InvalidRequestError("the request body is not valid JSON", code="invalid_json") from None
    except RecursionError:  # nesting deeper than the decoder goes (about a thousand levels)
        raise InvalidRequestError("the request body is nested too deeply", code="invalid_json") from None
    if not isinstance(raw, dict):
        raise InvalidRequestError("the request body must be a JSON object", code="invalid_json")
    try:
        return msgspec.convert(raw, kind)
    except msgspec.ValidationError as exc:
        message = str(exc)
        match = _PATH.search(message)
        param = match.group("path").lstrip(".") if match else ""
        if match:
            message = message[: match.start()]
        if missing := _MISSING.search(message):  # the path names the object; the field is in the text
            param = f"{param}.{missing.group(1)}".lstrip(".")
        raise InvalidRequestError(message, param=param or None, code="invalid_value") from None


def decode_chat_request(body: bytes) -> ChatCompletionRequest:
    """Parse and validate a chat request body; errors are 400s naming the field."""
    request = decode_request(body, ChatCompletionRequest)
    # Refused rather than ignored: a client asking for these would otherwise get plain text or null.
    if request.functions:
        raise InvalidRequestError(
            "functions (the legacy form) are not supported: use tools", param="functions", code="unsupported_parameter"
        )
    if request.top_logprobs and not request.logprobs:
        raise InvalidRequestError("top_logprobs needs logprobs: true", param="top_logprobs", code="invalid_value")
    return request


def prompt_of(request: CompletionRequest) -> str | list[int]:
    """A completion request's one prompt: text, or token ids."""
    prompt = request.prompt
    if isinstance(prompt, list) and len(prompt) == 1 and isinstance(prompt[0], (str, list)):
        prompt = prompt[0]
    if isinstance(prompt, str):
        return prompt
    if prompt and all(type(token) is int and 0 <= token < MAX_TOKENS_LIMIT for token in prompt):
        return prompt
    raise InvalidRequestError(
        "prompt must be a string, a list of token ids, or a list holding one of those", param="prompt"
    )


def decode_completion_request(body: bytes) -> CompletionRequest:
    """Parse and validate a text completion request body; errors are 400s naming the field."""
    request = decode_request(body, CompletionRequest)
    if request.suffix:
        raise InvalidRequestError(
            "suffix (fill-in-the-middle) is not supported", param="suffix", code="unsupported_parameter"
        )
    if request.echo and request.logprobs is not None:
        raise InvalidRequestError(
            "echo with logprobs (the prompt's own logprobs) is not supported",
            param="echo",
            code="unsupported_parameter",
        )
    return request


# --- responses ----------------------------------------------------------------


class PromptTokensDetails(Struct, frozen=True):
    cached_tokens: int = 0


class Usage(Struct):
    prompt_tokens: int
    completion_tokens: int
    total_tokens: int
    prompt_tokens_details: PromptTokensDetails = PromptTokensDetails()


class ChatMessage(Struct, omit_defaults=True):
    role: str
    content: str | None
    tool_calls: list[ToolCall] | None = None
    reasoning_content: str | None = None


class TopLogprob(Struct):
    token: str
    logprob: float
    bytes: list[int]


class TokenLogprob(Struct):
    token: str
    logprob: float
    bytes: list[int]
    top_logprobs: list[TopLogprob]


class ChoiceLogprobs(Struct):
    content: list[TokenLogprob]


class Choice(Struct):
    index: int
    message: ChatMessage
    finish_reason: str | None
    logprobs: ChoiceLogprobs | None = None


# The OpenAI `object` field is the struct's tag, so it is always written while
# absent optional fields (usage, mmserve) are left out instead of sent as null.
class ChatCompletion(Struct, kw_only=True, omit_defaults=True, tag_field="object", tag="chat.completion"):
    id: str
    created: int
    model: str
    choices: list[Choice]
    usage: Usage
    mmserve: dict[str, Any] | None = None


class FunctionDelta(Struct, omit_defaults=True):
    name: str | None = None
    arguments: str | None = None


class ToolCallDelta(Struct, omit_defaults=True):
    index: int
    id: str | None = None
    type: str | None = None
    function: FunctionDelta | None = None


class DeltaMessage(Struct, omit_defaults=True):
    role: str | None = None
    content: str | None = None
    reasoning_content: str | None = None
    tool_calls: list[ToolCallDelta] | None = None


class ChunkChoice(Struct):
    index: int
    delta: DeltaMessage
    finish_reason: str | None = None
    logprobs: ChoiceLogprobs | None = None


class ChatCompletionChunk(Struct, kw_only=True, omit_defaults=True, tag_field="object", tag="chat.completion.chunk"):
    id: str
    created: int
    model: str
    choices: list[ChunkChoice]
    usage: Usage | None = None
    mmserve: dict[str, Any] | None = None


# --- text completions (POST /v1/completions) ------------------------------------


class CompletionLogprobs(Struct):
    """The legacy logprobs shape: per token its text, logprob, alternatives and offset in the text."""

    tokens: list[str]
    token_logprobs: list[float]
    top_logprobs: list[dict[str, float]]
    text_offset: list[int]

    @classmethod
    def of(cls, entries: list[dict], offset: int = 0) -> CompletionLogprobs:
        """From the engine's per-token entries (the chat API's shape), offsets counted from ``offset``."""
        offsets = []
        for entry in entries:
            offsets.append(offset)
            offset += len(entry["token"])
        return cls(
            tokens=[entry["token"] for entry in entries],
            token_logprobs=[entry["logprob"] for entry in entries],
            top_logprobs=[{top["token"]: top["logprob"] for top in entry["top_logprobs"]} for entry in entries],
            text_offset=offsets,
        )


class CompletionChoice(Struct):
    index: int
    text: str
    finish_reason: str | None = None
    logprobs: CompletionLogprobs | None = None


class TextCompletion(Struct, kw_only=True, omit_defaults=True, tag_field="object", tag="text_completion"):
    """A text completion, and (with ``stream``) each of its chunks."""

    id: str
    created: int
    model: str
    choices: list[CompletionChoice]
    usage: Usage | None = None
    mmserve: dict[str, Any] | None = None


# --- tokenize and detokenize (vLLM's POST /tokenize, /detokenize) -------------------


class TokenizeRequest(Struct, kw_only=True, forbid_unknown_fields=False):
    """A text, or chat messages as the model's template renders them (images counted as the
    guard would plan them now)."""

    model: Name | None = None
    prompt: str | None = None
    messages: Annotated[list[Message], Meta(min_length=1, max_length=MAX_MESSAGES)] | None = None
    add_special_tokens: bool = True  # for a text prompt
    add_generation_prompt: Literal[True] = True  # chat prompts always open the assistant's turn
    tools: Annotated[list[Tool], Meta(max_length=MAX_TOOLS)] | None = None
    chat_template_kwargs: dict[str, Any] | None = None
    reasoning_effort: Literal["none", "minimal", "low", "medium", "high"] | None = None


class TokenizeResponse(Struct, omit_defaults=True):
    tokens: list[int]
    count: int  # with images: the prompt's tokens with each image at its planned size
    max_model_len: int
    mmserve: dict[str, Any] | None = None  # with images: what the guard would do to each


class DetokenizeRequest(Struct, kw_only=True, forbid_unknown_fields=False):
    tokens: list[Annotated[int, Meta(ge=0, lt=MAX_TOKENS_LIMIT)]]
    model: Name | None = None


class DetokenizeResponse(Struct):
    prompt: str
