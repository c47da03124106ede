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
    DeltaMessage,
    FunctionDelta,
    PromptTokensDetails,
    ToolCallDelta,
    Usage,
)

__all__ = ["DONE", "sse_chunks"]

DONE = b"data: [DONE]\n\n"
logger = structlog.get_logger("mmserve.stream")


def _event(payload: object, event: str | None = None) -> bytes:
    head = f"event: {event}\n".encode() if event else b""
    return head + b"data: " + msgspec.json.encode(payload) + b"\n\n"


def usage_of(finished: messages.Finished) -> Usage:
    return Usage(
        prompt_tokens=finished.prompt_tokens,
        completion_tokens=finished.completion_tokens,
        total_tokens=finished.prompt_tokens + finished.completion_tokens,
        prompt_tokens_details=PromptTokensDetails(cached_tokens=finished.cached_tokens),
    )


async def sse_chunks(
    events: AsyncIterator[messages.Delta | messages.Finished],
    *,
    completion_id: str,
    created: int,
    model: str,
    include_usage: bool,
    report: dict,
    on_close: Callable[[], None],
    log: dict,
) -> AsyncIterator[bytes]:
    """The SSE body of a streamed chat completion; an in-band error's code goes on the request's log line."""

    def chunk(delta: DeltaMessage, finish_reason: str | None = None, logprobs=None, **extra) -> bytes:
        choice = ChunkChoice(index=0, delta=delta, finish_reason=finish_reason, logprobs=logprobs)
        return _event(ChatCompletionChunk(id=completion_id, created=created, model=model, choices=[choice], **extra))

    calls = 0  # tool calls sent so far: each delta's index

    def delta(event: messages.Delta | messages.Finished) -> DeltaMessage | None:
        nonlocal calls
        tool_calls = [
            ToolCallDelta(
                index=calls + n,
                id=call["id"],
                type="function",
                function=FunctionDelta(name=call["function"]["name"], arguments=call["function"]["arguments"]),
            )
            for n, call in enumerate(event.tool_calls)
        ]
        calls += len(tool_calls)
        if not (event.text or event.reasoning or tool_calls):
            return None
        return DeltaMessage(
            content=event.text or None, reasoning_content=event.reasoning or None, tool_calls=tool_calls or None
        )

    try:
        yield chunk(DeltaMessage(role="assistant", content=""))
        async for event in events:
            if (message := delta(event)) is not None or event.logprobs:
                logprobs = msgspec.convert({"content": event.logprobs}, ChoiceLogprobs) if event.logprobs else None
                yield chunk(message or DeltaMessage(content=""), logprobs=logprobs)
            if isinstance(event, messages.Delta):
                continue
            yield chunk(DeltaMessage(), event.finish_reason, mmserve=report)
            if include_usage:
                yield _event(
                    ChatCompletionChunk(
                        id=completion_id, created=created, model=model, choices=[], usage=usage_of(event)
                    )
                )
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
        await events.aclose()
        on_close()
