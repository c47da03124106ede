"""POST /v1/completions: a raw prompt on the text model, no chat template."""

from __future__ import annotations

import functools
import time
import uuid

from litestar import Controller, Request, Response, post

from ..errors import InvalidRequestError
from ..normalize import normalize_completion
from ..protocol.openai import CompletionChoice, CompletionLogprobs, TextCompletion, decode_completion_request
from ..serving import ChatService
from ..streaming import sse_completion_chunks, usage_of
from .generation import chunk_fields, collect, refuse_while_loading, stream

__all__ = ["CompletionsController"]


class CompletionsController(Controller):
    path = "/v1/completions"
    tags = ["completions"]

    @post(
        status_code=200,
        summary="Create a text completion (OpenAI's legacy completions API) on the text model",
        description="The prompt (text or token ids) goes to the model as it is, with no chat template. "
        "`echo` puts a text prompt before each choice; `suffix` is refused.",
    )
    async def create(self, request: Request, chat_service: ChatService) -> Response:
        log = request.state.setdefault("log", {})
        completion_request = decode_completion_request(await request.body())
        refuse_while_loading(chat_service)
        job = normalize_completion(completion_request, chat_service.routes())
        if completion_request.echo and not isinstance(job.prompt, str):
            raise InvalidRequestError("echo takes a text prompt", param="echo", code="unsupported_parameter")
        echo = job.prompt if completion_request.echo else ""
        prepared = await chat_service.prepare(job, log)
        headers = {"X-MMServe-Route": job.route.kind}
        completion_id = f"cmpl-{uuid.uuid4().hex}"
        created = int(time.time())
        events = chat_service.events(prepared)
        if job.stream:
            fields = chunk_fields(prepared, job, log, completion_id, created)
            render = functools.partial(sse_completion_chunks, **fields, echo=echo, logprobs=job.logprobs is not None)
            return await stream(request, prepared, events, render, headers)
        replies = await collect(request, prepared, events)
        completion = TextCompletion(
            id=completion_id,
            created=created,
            model=prepared.engine.name,
            choices=[
                CompletionChoice(
                    index=index,
                    text=echo + reply.text,
                    finish_reason=reply.finished.finish_reason,
                    logprobs=CompletionLogprobs.of(reply.logprobs, len(echo)) if job.logprobs is not None else None,
                )
                for index, reply in enumerate(replies)
            ],
            usage=usage_of([reply.finished for reply in replies]),
            mmserve=prepared.report,
        )
        return Response(completion, headers=headers)
