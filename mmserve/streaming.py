"""Engine events -> OpenAI chat-completion chunks as Server-Sent Events.

Once the first byte is out an error cannot change the status code, so it goes
in-band: an SSE ``error`` event carrying the usual envelope, then ``data: [DONE]``.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable

import msgspec
import structlog

from .engines import messages
from .errors import InternalError, MMServeError
from .protocol.openai import (
    ChatCompletionChunk,
    ChoiceLogprobs,
    ChunkChoice,
    CompletionChoice,
    CompletionLogprobs,
    DeltaMessage,
    FunctionDelta,
    PromptTokensDetails,
    TextCompletion,
    ToolCallDelta,
    Usage,
)

__all__ = ["DONE", "sse_chunks", "sse_completion_chunks", "sse_events", "usage_of"]

DONE = b"data: [DONE]\n\n"
logger = structlog.get_logger("mmserve.stream")


def _event(payload: object, event: str | None = None) -> bytes:
    head = f"event: {event}\n".encode() if event else b""
    return head + b"data: " + msgspec.json.encode(payload) + b"\n\n"


def usage_of(finished: list[messages.Finished]) -> Usage:
    """A request's usage from its choices' ends: the prompt once, every choice's completion."""
    prompt = max(f.prompt_tokens for f in finished)
    completion = sum(f.completion_tokens for f in finished)
    return Usage(
        prompt_tokens=prompt,
        completion_tokens=completion,
        total_tokens=prompt + completion,
        prompt_tokens_details=PromptTokensDetails(cached_tokens=max(f.cached_tokens for f in finished)),
    )


async def _chat_chunks(
    events: AsyncIterator[tuple[int, messages.Delta | messages.Finished]],
    *,
    completion_id: str,
    created: int,
    model: str,
    include_usage: bool,
    report: dict,
    choices: int = 1,
) -> AsyncIterator[bytes]:
    """A streamed chat completion's chunks, its events tagged with their choice's index; the
    ``mmserve`` report rides on the chunk that ends the last choice."""

    def chunk(index: int, delta: DeltaMessage, finish_reason: str | None = None, logprobs=None, **extra) -> bytes:
        choice = ChunkChoice(index=index, delta=delta, finish_reason=finish_reason, logprobs=logprobs)
        return _event(ChatCompletionChunk(id=completion_id, created=created, model=model, choices=[choice], **extra))

    calls = [0] * choices  # tool calls sent so far per choice: each delta's index

    def delta(index: int, event: messages.Delta | messages.Finished) -> DeltaMessage | None:
        tool_calls = [
            ToolCallDelta(
                index=calls[index] + n,
                id=call["id"],
                type="function",
                function=FunctionDelta(name=call["function"]["name"], arguments=call["function"]["arguments"]),
            )
            for n, call in enumerate(event.tool_calls)
        ]
        calls[index] += len(tool_calls)
        if not (event.text or event.reasoning or tool_calls):
            return None
        return DeltaMessage(
            content=event.text or None, reasoning_content=event.reasoning or None, tool_calls=tool_calls or None
        )

    finished: list[messages.Finished] = []
    try:
        for index in range(choices):
            yield chunk(index, DeltaMessage(role="assistant", content=""))
        async for index, event in events:
            if (message := delta(index, event)) is not None or event.logprobs:
                logprobs = msgspec.convert({"content": event.logprobs}, ChoiceLogprobs) if event.logprobs else None
                yield chunk(index, message or DeltaMessage(content=""), logprobs=logprobs)
            if isinstance(event, messages.Delta):
                continue
            finished.append(event)
            last = len(finished) == choices
            yield chunk(index, DeltaMessage(), event.finish_reason, **({"mmserve": report} if last else {}))
            if last and include_usage:
                yield _event(
                    ChatCompletionChunk(
                        id=completion_id, created=created, model=model, choices=[], usage=usage_of(finished)
                    )
                )
    finally:
        await events.aclose()


async def _completion_chunks(
    events: AsyncIterator[tuple[int, messages.Delta | messages.Finished]],
    *,
    completion_id: str,
    created: int,
    model: str,
    include_usage: bool,
    choices: int,
    echo: str,
    logprobs: bool,
    report: dict,
) -> AsyncIterator[bytes]:
    """The SSE body of a streamed text completion: ``text_completion`` chunks tagged with
    their choice's index, the ``mmserve`` report on the chunk that ends the last choice."""

    def chunk(index: int, text: str, finish_reason: str | None = None, entries=None, **extra) -> bytes:
        choice = CompletionChoice(index=index, text=text, finish_reason=finish_reason, logprobs=entries)
        return _event(TextCompletion(id=completion_id, created=created, model=model, choices=[choice], **extra))

    offsets = [len(echo)] * choices
    finished: list[messages.Finished] = []
    try:
        if echo:
            for index in range(choices):
                yield chunk(index, echo)
        async for index, event in events:
            entries = CompletionLogprobs.of(event.logprobs, offsets[index]) if logprobs and event.logprobs else None
            offsets[index] += sum(len(entry["token"]) for entry in event.logprobs)
            if isinstance(event, messages.Delta):
                yield chunk(index, event.text, entries=entries)
                continue
            finished.append(event)
            last = len(finished) == choices
            yield chunk(index, event.text, event.finish_reason, entries, **({"mmserve": report} if last else {}))
            if last and include_usage:
                yield _event(
                    TextCompletion(id=completion_id, created=created, model=model, choices=[], usage=usage_of(finished))
                )
    finally:
        await events.aclose()


async def sse_events(body: AsyncIterator[bytes], *, on_close: Callable[[], None], log: dict) -> AsyncIterator[bytes]:
    """``body``'s chunks, then ``data: [DONE]``. Once the first byte is out an error cannot
    change the status: it goes in-band as an SSE ``error`` event (its code on the request's
    log line), then ``data: [DONE]``. ``on_close`` runs however the stream ends."""
    try:
        async for part in body:
            yield part
        yield DONE
    except MMServeError as exc:
        log["error"] = exc.code
        yield _event(exc.envelope(), event="error")
        yield DONE
    except Exception:
        logger.exception("stream failed")
        error = InternalError("the server failed while streaming this response")
        log["error"] = error.code
        yield _event(error.envelope(), event="error")
        yield DONE
    finally:
        try:
            await body.aclose()
        finally:
            on_close()


def sse_chunks(events, *, on_close: Callable[[], None], log: dict, **chunk_fields) -> AsyncIterator[bytes]:
    """The SSE body of a streamed chat completion (see ``_chat_chunks`` for the fields)."""
    return sse_events(_chat_chunks(events, **chunk_fields), on_close=on_close, log=log)


def sse_completion_chunks(events, *, on_close: Callable[[], None], log: dict, **chunk_fields) -> AsyncIterator[bytes]:
    """The SSE body of a streamed text completion (see ``_completion_chunks`` for the fields)."""
    return sse_events(_completion_chunks(events, **chunk_fields), on_close=on_close, log=log)
