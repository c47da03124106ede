"""POST /v1/chat/completions."""

from __future__ import annotations

import functools
import time
import uuid

from litestar import Controller, Request, Response, post

from ..normalize import normalize
from ..protocol.openai import ChatCompletion, Choice, decode_chat_request
from ..serving import ChatService
from ..streaming import sse_chunks, usage_of
from .generation import chunk_fields, collect, refuse_while_loading, stream

__all__ = ["ChatController"]


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
        refuse_while_loading(chat_service)
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
            fields = chunk_fields(prepared, job, log, completion_id, created)
            return await stream(request, prepared, events, functools.partial(sse_chunks, **fields), headers)
        replies = await collect(request, prepared, events)
        completion = ChatCompletion(
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
        return Response(completion, headers=headers)
