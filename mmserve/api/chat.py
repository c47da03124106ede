"""POST /v1/chat/completions."""

from __future__ import annotations

import asyncio
import time
import uuid
import weakref

import msgspec
from litestar import Controller, Request, Response, post
from litestar.response import Stream

from ..engines import messages
from ..errors import ClientDisconnectedError, EngineUnavailableError
from ..normalize import normalize
from ..protocol.openai import ChatCompletion, ChatMessage, Choice, ChoiceLogprobs, ToolCall, decode_chat_request
from ..serving import ChatService, Prepared
from ..streaming import sse_chunks, usage_of

__all__ = ["ChatController"]


class Reply:
    """A whole reply gathered from the engine's events: answer, thinking, tool calls."""

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

    def choice_logprobs(self) -> ChoiceLogprobs:
        return msgspec.convert({"content": self.logprobs}, ChoiceLogprobs)

    def message(self) -> ChatMessage:
        content = "".join(self.content)
        return ChatMessage(
            role="assistant",
            content=content or (None if self.tool_calls else ""),  # OpenAI's null beside tool calls
            tool_calls=self.tool_calls or None,
            reasoning_content="".join(self.reasoning) or None,
        )


async def _until_disconnect(request: Request) -> None:
    while (await request.receive())["type"] != "http.disconnect":
        pass


class ChatController(Controller):
    path = "/v1/chat/completions"
    tags = ["chat"]

    @post(
        status_code=200,
        summary="Create a chat completion (OpenAI-compatible; text and images)",
        description="The body is an OpenAI chat-completions request. Image parts (`image_url`) route to the "
        "vision engine. The response carries an `mmserve` object saying where the request went and what "
        "the memory guard did to its images.",
    )
    async def create(self, request: Request, chat_service: ChatService) -> Response:
        log = request.state.setdefault("log", {})
        chat_request = decode_chat_request(await request.body())
        if chat_service.loading:  # the port opens before the models are found: 503 with Retry-After, not a 404
            doing = "; ".join(chat_service.loading.values())
            raise EngineUnavailableError(f"the server is starting: {doing}", retry_after=5)
        job = normalize(chat_request, chat_service.routes())
        prepared = await chat_service.prepare(job, log)
        headers = {
            "X-MMServe-Route": job.route.kind,
            "X-MMServe-Resized": str(prepared.report.get("resized_count", 0)),  # shrunk for memory or side
            "X-MMServe-Snapped": str(prepared.report.get("snapped_count", 0)),  # only rounded to the grid
        }
        completion_id = f"chatcmpl-{uuid.uuid4().hex}"
        created = int(time.time())
        events = chat_service.events(prepared)
        if job.stream:
            try:
                first = await anext(events)  # failures before the first token still get a real status code
            except BaseException:
                await events.aclose()
                prepared.release()
                raise

            async def replay():
                yield first
                async for event in events:
                    yield event

            body = sse_chunks(
                replay(),
                completion_id=completion_id,
                created=created,
                model=prepared.engine.name,
                include_usage=job.include_usage,
                choices=prepared.choices,
                report=prepared.report,
                on_close=prepared.release,
                log=log,
            )
            # If the body is never iterated (the client left first), its reservation still goes back.
            weakref.finalize(body, prepared.release)
            headers["Cache-Control"] = "no-cache"
            return Stream(body, media_type="text/event-stream", headers=headers)
        try:
            completion = await self._collect(request, prepared, events, completion_id, created)
        finally:
            prepared.release()
        return Response(completion, headers=headers)

    async def _collect(
        self, request: Request, prepared: Prepared, events, completion_id: str, created: int
    ) -> ChatCompletion:
        async def collect() -> list[Reply]:
            replies = [Reply() for _ in range(prepared.choices)]
            async for index, event in events:
                replies[index].add(event)
            if any(reply.finished is None for reply in replies):
                raise RuntimeError("the engine ended the request without finishing it")
            return replies

        work = asyncio.create_task(collect())
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
        replies = await work
        return ChatCompletion(
            id=completion_id,
            created=created,
            model=prepared.engine.name,
            choices=[
                Choice(
                    index=index,
                    message=reply.message(),
                    finish_reason=reply.finished.finish_reason,
                    logprobs=reply.choice_logprobs() if prepared.generate.logprobs is not None else None,
                )
                for index, reply in enumerate(replies)
            ],
            usage=usage_of([reply.finished for reply in replies]),
            mmserve=prepared.report,
        )
