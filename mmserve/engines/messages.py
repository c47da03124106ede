"""The message protocol between the HTTP process and an engine worker.

Transport: a Unix socket pair. Each frame is a 4-byte big-endian length followed by
one msgpack-encoded message; every message is a tagged msgspec Struct (the tag is
the class name), so either side decodes with ``decode(frame)``.

Conversation (HTTP process -> worker on the left, worker -> HTTP process on the right)::

    (worker starts)                          Ready | LoadFailed
    Count(id, messages, n_images)       ->   Counted(id, text_tokens) | Failed(id)
    Generate(id, ...)                   ->   Delta(id)* then Finished(id) | Failed(id)
    Cancel(id)                          ->   Finished(id, finish_reason="cancelled") if it was running
    StatsRequest(id)                    ->   Stats(id, ...)
    Shutdown                            ->   (worker finishes running work, then exits)

A worker never sends anything for an id it was not given. When the socket closes
the worker is gone, and every request it held has ended.
"""

from __future__ import annotations

import struct
from typing import Any

import msgspec

__all__ = [
    "Cancel",
    "Count",
    "Counted",
    "Detokenize",
    "Delta",
    "Failed",
    "Finished",
    "Generate",
    "ImageData",
    "LoadFailed",
    "Ready",
    "Sampling",
    "Shutdown",
    "Stats",
    "StatsRequest",
    "Tokenize",
    "Tokens",
    "decode",
    "encode",
    "read_frame_size",
]

HEADER = struct.Struct(">I")
MAX_FRAME = 1 << 30


class Sampling(msgspec.Struct, frozen=True, kw_only=True):
    temperature: float = 1.0
    top_p: float = 1.0
    top_k: int = 0
    min_p: float = 0.0
    seed: int | None = None
    repetition_penalty: float | None = None
    presence_penalty: float | None = None
    frequency_penalty: float | None = None
    logit_bias: dict[int, float] | None = None


class ImageData(msgspec.Struct, frozen=True):
    """An image the guard has already sized: raw RGB bytes, ``width * height * 3`` long."""

    width: int
    height: int
    rgb: bytes
    sha256: str


# --- HTTP process -> worker -------------------------------------------------


class Count(msgspec.Struct, tag=True, frozen=True):
    """Ask how many text tokens the templated prompt has (image placeholders excluded), and,
    for images of the given sizes, what the processor makes of each (where no geometry is trusted)."""

    id: str
    messages: list[dict[str, Any]]
    n_images: int = 0
    sizes: list[tuple[int, int]] = []
    tools: list[dict[str, Any]] | None = None  # rendered by the chat template, so they count
    template_kwargs: dict[str, Any] = {}
    prompt: str | list[int] | None = None  # a text completion's raw prompt, in place of messages


class Generate(msgspec.Struct, tag=True, frozen=True, kw_only=True):
    id: str
    messages: list[dict[str, Any]]
    images: list[ImageData] = []
    max_tokens: int
    sampling: Sampling = Sampling()
    stop: list[str] = []
    processor_kwargs: dict[str, Any] = {}  # the family geometry's options for the image processor
    grammar: str | None = None  # llguidance's grammar the reply is held to (structured output, forced tool calls)
    tools: list[dict[str, Any]] | None = None  # offered to the model: rendered by its template, its calls parsed
    parallel_tool_calls: bool = True  # False: the reply ends with its first call
    template_kwargs: dict[str, Any] = {}  # more for the chat template (chat_template_kwargs, reasoning_effort)
    logprobs: int | None = None  # None: none; else each token's logprob and this many alternatives
    prompt: str | list[int] | None = None  # a text completion's raw prompt, in place of messages


class Cancel(msgspec.Struct, tag=True, frozen=True):
    id: str


class StatsRequest(msgspec.Struct, tag=True, frozen=True):
    id: str


class Tokenize(msgspec.Struct, tag=True, frozen=True, kw_only=True):
    """The token ids of a prompt: a chat through the template (images as their placeholders),
    or a raw text."""

    id: str
    messages: list[dict[str, Any]] = []
    n_images: int = 0
    tools: list[dict[str, Any]] | None = None
    template_kwargs: dict[str, Any] = {}
    prompt: str | None = None
    add_special_tokens: bool = True


class Detokenize(msgspec.Struct, tag=True, frozen=True):
    id: str
    tokens: list[int]


class Shutdown(msgspec.Struct, tag=True, frozen=True):
    pass


# --- worker -> HTTP process -------------------------------------------------


class Ready(msgspec.Struct, tag=True, frozen=True, kw_only=True):
    engine: str  # "text" | "vision"
    model: str
    pid: int
    backend: str  # "metal" | "cuda" | "cpu"
    device_info: dict[str, Any]
    context_length: int
    weights_bytes: int
    kv_bytes_per_token: int  # the most one more token costs (the plain formula's figure)
    vocab_size: int = 0  # logits per step: the bound of top_k
    longest_token_chars: int = 0  # the most text one token stands for: prompts are bounded by it before counting
    # What a sequence's cache holds by kind of layer (guards.KVLayout.as_dict); None: the plain formula.
    kv_layout: dict[str, Any] | None = None
    # How the model calls tools (mlx-lm's parser name and the markers around a call), where its
    # chat template declares a format; None: it cannot be offered tools.
    tool_format: dict[str, Any] | None = None
    # Why mlx-lm cannot batch this model, which then decodes one request at a time; None: it batches.
    batch_fault: str | None = None
    # The image geometry: the checkpoint's config files (guards.families.Checkpoint) and the
    # load-time check against the real processor; None for a text engine.
    vision: dict[str, Any] | None = None
    # Calibration samples of the vision encoder: [width, height, patches, peak_extra_bytes].
    calibration: list[list[int]] = []


class LoadFailed(msgspec.Struct, tag=True, frozen=True):
    message: str
    traceback: str = ""  # logged by the server at debug level only


class Counted(msgspec.Struct, tag=True, frozen=True):
    id: str
    text_tokens: int
    images: list[tuple[int, int]] = []  # per size asked: (image tokens, all prompt tokens of the image)


class Delta(msgspec.Struct, tag=True, frozen=True):
    id: str
    text: str
    completion_tokens: int
    reasoning: str = ""  # the model's thinking, apart from its answer
    tool_calls: list[dict[str, Any]] = []  # complete calls, OpenAI's shape: id, type, function{name, arguments}
    logprobs: list[dict[str, Any]] = []  # per token since the last event, OpenAI's shape


class Finished(msgspec.Struct, tag=True, frozen=True, kw_only=True):
    id: str
    finish_reason: str  # "stop" | "length" | "tool_calls" | "cancelled"
    prompt_tokens: int
    completion_tokens: int
    text: str = ""  # text held back for a stop-sequence check, released at the end
    reasoning: str = ""
    tool_calls: list[dict[str, Any]] = []
    logprobs: list[dict[str, Any]] = []
    cached_tokens: int = 0
    # Where the request's time went in the worker, in ms: queue (waiting for a preparer),
    # prepare (templating, images, encoder), admit (waiting to join the batch), prefill
    # (joining to the first token), decode (the first token to the end).
    timings: dict[str, float] = {}


class Failed(msgspec.Struct, tag=True, frozen=True, kw_only=True):
    id: str
    message: str
    status: int = 500
    code: str = "internal_error"


class Tokens(msgspec.Struct, tag=True, frozen=True):
    """The answer to Tokenize (``tokens``) or to Detokenize (``text``)."""

    id: str
    tokens: list[int] = []
    text: str = ""


class Stats(msgspec.Struct, tag=True, frozen=True, kw_only=True):
    id: str
    active_bytes: int
    peak_bytes: int
    cache_bytes: int
    memory_limit_bytes: int
    running: int
    prefix_cache_bytes: int = 0


Message = (
    Count
    | Generate
    | Cancel
    | StatsRequest
    | Tokenize
    | Detokenize
    | Shutdown
    | Ready
    | LoadFailed
    | Counted
    | Delta
    | Finished
    | Failed
    | Stats
    | Tokens
)

_encoder = msgspec.msgpack.Encoder()
_decoder = msgspec.msgpack.Decoder(Message)


def encode(message: Message) -> bytes:
    """One frame: length header plus msgpack body."""
    body = _encoder.encode(message)
    return HEADER.pack(len(body)) + body


def decode(body: bytes) -> Message:
    return _decoder.decode(body)


def read_frame_size(header: bytes) -> int:
    (size,) = HEADER.unpack(header)
    if size > MAX_FRAME:
        raise ValueError(f"frame of {size} bytes is over the limit")
    return size
