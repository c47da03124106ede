"""OpenAI chat-completions wire types (msgspec Structs), requests and responses.

Decoding a request body goes through ``decode_chat_request``, which turns every
msgspec complaint into an ``InvalidRequestError`` whose ``param`` is the field path
in OpenAI's spelling (``messages[0].content[1].image_url``).
"""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal

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
    "PromptTokensDetails",
    "DeltaMessage",
    "FunctionDelta",
    "ImagePart",
    "ImageURL",
    "JSONObjectFormat",
    "JSONSchemaFormat",
    "Message",
    "TextPart",
    "Tool",
    "ToolCall",
    "ToolCallDelta",
    "Usage",
    "decode_chat_request",
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


class ChatCompletionRequest(Struct, kw_only=True, forbid_unknown_fields=False):
    messages: Annotated[list[Message], Meta(min_length=1, max_length=MAX_MESSAGES)]
    model: Name | None = None
    stream: bool = False
    stream_options: StreamOptions | None = None
    max_tokens: TokenCount | None = None
    max_completion_tokens: TokenCount | None = None
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
    logprobs: bool | None = None
    top_logprobs: Annotated[int, Meta(ge=0, le=20)] | None = None
    # Token id (as a string, OpenAI's spelling) -> a bias added to its logit.
    logit_bias: (
        Annotated[dict[str, Annotated[float, Meta(ge=-100, le=100)]], Meta(max_length=MAX_LOGIT_BIAS)] | None
    ) = None
    # Not served: accepted when empty, refused below when asked for.
    tools: Annotated[list[Tool], Meta(max_length=MAX_TOOLS)] | None = None
    tool_choice: ToolChoice | None = None
    parallel_tool_calls: bool = True
    # Passed to the model's chat template, e.g. {"enable_thinking": false}; reasoning_effort too.
    chat_template_kwargs: dict[str, Any] | None = None
    reasoning_effort: Literal["none", "minimal", "low", "medium", "high"] | None = None
    functions: list[Any] | None = None
    response_format: ResponseFormat | None = None
    user: Name | None = None


_PATH = re.compile(r" - at `\$(?P<path>[^`]*)`$")
_MISSING = re.compile(r"missing required field `(\w+)`")


def decode_chat_request(body: bytes) -> ChatCompletionRequest:
    """Parse and validate a chat request body; errors are 400s naming the field."""
    try:
        raw = msgspec.json.decode(body)
    except msgspec.DecodeError:
        raise InvalidRequestError("the request body is not valid JSON", code="invalid_json") from None
    except RecursionError:  # nesting deeper than the decoder goes (about a thousand levels)
        raise InvalidRequestError("the request body is nested too deeply", code="invalid_json") from None
    if not isinstance(raw, dict):
        raise InvalidRequestError("the request body must be a JSON object", code="invalid_json")
    try:
        request = msgspec.convert(raw, ChatCompletionRequest)
    except msgspec.ValidationError as exc:
        message = str(exc)
        match = _PATH.search(message)
        param = match.group("path").lstrip(".") if match else ""
        if match:
            message = message[: match.start()]
        if missing := _MISSING.search(message):  # the path names the object; the field is in the text
            param = f"{param}.{missing.group(1)}".lstrip(".")
        raise InvalidRequestError(message, param=param or None, code="invalid_value") from None
    # Refused rather than ignored: a client asking for these would otherwise get plain text or null.
    if request.functions:
        raise InvalidRequestError(
            "functions (the legacy form) are not supported: use tools", param="functions", code="unsupported_parameter"
        )
    if request.top_logprobs and not request.logprobs:
        raise InvalidRequestError("top_logprobs needs logprobs: true", param="top_logprobs", code="invalid_value")
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
