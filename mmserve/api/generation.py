"""What the chat and text completion routes share once a request is prepared: waiting for
its first event before the status goes out, gathering whole replies, and a client leaving."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable

import msgspec
from litestar import Request
from litestar.response import Stream

from ..engines import messages
from ..errors import ClientDisconnectedError, EngineUnavailableError
from ..protocol.openai import ChatMessage, ChoiceLogprobs, ToolCall
from ..serving import ChatService, Prepared

__all__ = ["Reply", "chunk_fields", "collect", "refuse_while_loading", "stream"]


def refuse_while_loading(service: ChatService) -> None:
    """The port opens before the models are found: 503 with Retry-After, not a 404."""
    if service.loading:
        doing = "; ".join(service.loading.values())
        raise EngineUnavailableError(f"the server is starting: {doing}", retry_after=5)


class Reply:
    """One choice's whole reply gathered from the engine's events: answer, thinking, tool
    calls, logprobs, and the event that ended it."""

    def __init__(self) -> None:
        self.content: list[str] = []
        self.reasoning: list[str] = []
        self.tool_calls: list[ToolCall] = []
        self.logprobs: list[dict] = []
        self.finished: messages.Finished | None = None

    def add(self, event: messages.Delta | messages.Finished) -> None:
        if isinstance(event, messages.Finished):
            self.finished = event
        self.content.append(event.text)
        self.reasoning.append(event.reasoning)
        self.tool_calls += [msgspec.convert(call, ToolCall) for call in event.tool_calls]
        self.logprobs += event.logprobs

    @property
    def text(self) -> str:
        return "".join(self.content)

    def choice_logprobs(self) -> ChoiceLogprobs:
        return msgspec.convert({"content": self.logprobs}, ChoiceLogprobs)

    def message(self) -> ChatMessage:
        return ChatMessage(
            role="assistant",
            content=self.text or (None if self.tool_calls else ""),  # OpenAI's null beside tool calls
            tool_calls=self.tool_calls or None,
            reasoning_content="".join(self.reasoning) or None,
        )


async def _until_disconnect(request: Request) -> None:
    while (await request.receive())["type"] != "http.disconnect":
        pass


async def collect(request: Request, prepared: Prepared, events: AsyncIterator) -> list[Reply]:
    """Every choice's whole reply; stops generating (and raises ClientDisconnectedError) if
    the client leaves first."""

    async def gather() -> list[Reply]:
        replies = [Reply() for _ in range(prepared.choices)]
        async for index, event in events:
            replies[index].add(event)
        if any(reply.finished is None for reply in replies):
            raise RuntimeError("the engine ended the request without finishing it")
        return replies

    try:
        work = asyncio.create_task(gather())
        watcher = asyncio.create_task(_until_disconnect(request))
        try:
            await asyncio.wait([work, watcher], return_when=asyncio.FIRST_COMPLETED)
        finally:
            watcher.cancel()
            left = not work.done()
            if left:  # the client left (or the server is stopping): stop generating for it
                work.cancel()
            await asyncio.gather(watcher, work, return_exceptions=True)
        if left:
            raise ClientDisconnectedError("the client closed the connection before the answer was ready")
        return await work
    finally:
        prepared.release()


def chunk_fields(prepared: Prepared, job, log: dict, completion_id: str, created: int) -> dict:
    """What every streamed completion's chunks are made with (``streaming.sse_chunks`` and
    ``sse_completion_chunks``)."""
    return {
        "completion_id": completion_id,
        "created": created,
        "model": prepared.engine.name,
        "include_usage": job.include_usage,
        "choices": prepared.choices,
        "report": prepared.report,
        "on_close": prepared.release,
        "log": log,
    }


async def stream(
    request: Request,
    prepared: Prepared,
    events: AsyncIterator,
    render: Callable[[AsyncIterator], AsyncIterator[bytes]],
    headers: dict,
) -> Stream:
    """A streamed response whose status waits for the first event, so that failures before
    the first token still get a real status code; ``render`` turns events into SSE bytes
    and gives the reservation back when it ends."""
    try:
        first = await anext(events)
    except BaseException:
        await events.aclose()
        prepared.release()
        raise

    async def replay():
        yield first
        async for event in events:
            yield event

    body = render(replay())
    # If the body is never iterated (the client left before the response started), the
    # reservation goes back when the request ends (the request middleware's ``on_end``).
    request.scope["state"].setdefault("on_end", []).append(prepared.release)
    return Stream(body, media_type="text/event-stream", headers={**headers, "Cache-Control": "no-cache"})
