"""POST /v1/responses: OpenAI's Responses API, served as the chat request it amounts to.

Conversations continue with ``previous_response_id`` from a bounded in-memory store
(``ResponseStore``): the most recent responses are kept, and a restart forgets them all, so
a client that continues an older or pre-restart response gets a 400 naming
``previous_response_id`` and must send the conversation again as ``input``.
"""

from __future__ import annotations

import itertools
import threading
import time
import uuid
from collections import OrderedDict
from collections.abc import AsyncIterator, Callable

import msgspec
from litestar import Controller, Request, Response, post

from ..engines import messages
from ..errors import InvalidRequestError
from ..normalize import normalize
from ..protocol.openai import decode_request
from ..protocol.responses import ResponsesRequest, chat_request
from ..serving import ChatService
from ..streaming import sse_events
from .generation import Reply, collect, refuse_while_loading, stream

__all__ = ["ResponseStore", "ResponsesController"]


class ResponseStore:
    """The conversations of the last ``capacity`` stored responses (chat messages), by id."""

    def __init__(self, capacity: int = 1024) -> None:
        self.capacity = capacity
        self._conversations: OrderedDict[str, list[dict]] = OrderedDict()
        self._lock = threading.Lock()

    def put(self, response_id: str, conversation: list[dict]) -> None:
        with self._lock:
            self._conversations[response_id] = conversation
            while len(self._conversations) > self.capacity:
                self._conversations.popitem(last=False)

    def conversation(self, response_id: str) -> list[dict]:
        with self._lock:
            conversation = self._conversations.get(response_id)
        if conversation is None:
            raise InvalidRequestError(
                f"no stored response '{response_id}': the server keeps its last {self.capacity} responses in "
                "memory, and none from before a restart; send the conversation as input",
                param="previous_response_id",
                code="previous_response_not_found",
            )
        return conversation


def _id(prefix: str) -> str:
    return f"{prefix}_{uuid.uuid4().hex}"


def _message_item(text: str, status: str = "completed") -> dict:
    return {
        "type": "message",
        "id": _id("msg"),
        "status": status,
        "role": "assistant",
        "content": [{"type": "output_text", "text": text, "annotations": [], "logprobs": []}],
    }


def _call_item(call: dict) -> dict:
    return {
        "type": "function_call",
        "id": _id("fc"),
        "call_id": call["id"],
        "name": call["function"]["name"],
        "arguments": call["function"]["arguments"],
        "status": "completed",
    }


def _reasoning_item(text: str) -> dict:
    return {
        "type": "reasoning",
        "id": _id("rs"),
        "status": "completed",
        "summary": [],
        "content": [{"type": "reasoning_text", "text": text}],
    }


def _usage(finished: messages.Finished) -> dict:
    return {
        "input_tokens": finished.prompt_tokens,
        "input_tokens_details": {"cached_tokens": finished.cached_tokens},
        "output_tokens": finished.completion_tokens,
        "output_tokens_details": {"reasoning_tokens": 0},
        "total_tokens": finished.prompt_tokens + finished.completion_tokens,
    }


def _ended(response: dict, finished: messages.Finished, output: list[dict]) -> dict:
    """The response once its reply has ended: completed, or incomplete where max_output_tokens cut it."""
    cut = finished.finish_reason == "length"
    return {
        **response,
        "status": "incomplete" if cut else "completed",
        "incomplete_details": {"reason": "max_output_tokens"} if cut else None,
        "output": output,
        "usage": _usage(finished),
    }


def _assistant_turn(text: str, calls: list[dict]) -> dict:
    """The reply as a chat message, for the conversation a later response continues."""
    turn: dict = {"role": "assistant", "content": text or None}
    if calls:
        turn["tool_calls"] = calls
    return turn


async def _events(
    events: AsyncIterator, *, response: dict, on_end: Callable[[dict, str, list[dict]], None]
) -> AsyncIterator[bytes]:
    """A reply as the Responses event sequence: created, in_progress, each output item in
    the order the model writes it (its thinking, its text, its function calls: added, the
    content as deltas, done), then completed (or incomplete). The events of one engine
    update go out as one chunk."""
    numbers = itertools.count()
    pending: list[bytes] = []

    def event(kind: str, **fields) -> None:
        payload = msgspec.json.encode({"type": kind, "sequence_number": next(numbers), **fields})
        pending.append(f"event: {kind}\n".encode() + b"data: " + payload + b"\n\n")

    def sent() -> bytes:
        chunk = b"".join(pending)
        pending.clear()
        return chunk

    output: list[dict] = []
    writing: dict | None = None  # the reasoning or message item whose text is streaming
    text, calls = [], []

    def add(item: dict, shown: dict) -> None:
        output.append(item)
        event("response.output_item.added", output_index=len(output) - 1, item=shown)

    def start(kind: str) -> dict:
        item = {**(_reasoning_item("") if kind == "reasoning" else _message_item("")), "status": "in_progress"}
        add(item, {**item, "content": []})
        if kind == "message":
            where = {"item_id": item["id"], "output_index": len(output) - 1, "content_index": 0}
            event("response.content_part.added", **where, part=item["content"][0])
        return item

    def finish(item: dict) -> None:
        index, part = output.index(item), item["content"][0]
        where = {"item_id": item["id"], "output_index": index, "content_index": 0}
        if item["type"] == "reasoning":
            event("response.reasoning_text.done", **where, text=part["text"])
        else:
            event("response.output_text.done", **where, text=part["text"])
            event("response.content_part.done", **where, part=part)
        item["status"] = "completed"
        event("response.output_item.done", output_index=index, item=item)

    event("response.created", response={**response, "status": "in_progress", "output": []})
    event("response.in_progress", response={**response, "status": "in_progress", "output": []})
    yield sent()
    async for _, update in events:
        for kind, delta in (("reasoning", update.reasoning), ("message", update.text)):
            if not delta:
                continue
            if writing is None or writing["type"] != kind:
                if writing is not None:
                    finish(writing)
                writing = start(kind)
            writing["content"][0]["text"] += delta
            where = {"item_id": writing["id"], "output_index": len(output) - 1, "content_index": 0}
            if kind == "reasoning":
                event("response.reasoning_text.delta", **where, delta=delta)
            else:
                event("response.output_text.delta", **where, delta=delta, logprobs=[])
        text.append(update.text)
        if isinstance(update, messages.Finished) and not (output or update.tool_calls):
            writing = start("message")  # a reply of nothing is an empty message, as unstreamed
        if writing is not None and (update.tool_calls or isinstance(update, messages.Finished)):
            finish(writing)
            writing = None
        for call in update.tool_calls:
            item = _call_item(call)
            add(item, {**item, "arguments": "", "status": "in_progress"})
            calls.append(call)
            where = {"item_id": item["id"], "output_index": len(output) - 1}
            event("response.function_call_arguments.delta", **where, delta=item["arguments"])
            event("response.function_call_arguments.done", **where, arguments=item["arguments"])
            event("response.output_item.done", output_index=len(output) - 1, item=item)
        if isinstance(update, messages.Finished):
            final = _ended(response, update, output)
            on_end(final, "".join(text), calls)
            event(f"response.{final['status']}", response=final)
        if pending:
            yield sent()


class ResponsesController(Controller):
    path = "/v1/responses"
    tags = ["responses"]

    @post(
        status_code=200,
        summary="Create a model response (OpenAI's Responses API): text and images in, text and function calls out",
        description="`input` is a string or a list of items (messages with input_text and input_image parts, "
        "function_call and function_call_output); `instructions`, function `tools`, `text.format` "
        "(json_schema), `max_output_tokens`, `stream` (the Responses event sequence) and "
        "`previous_response_id` (the server keeps its last responses in memory; none survive a restart). "
        "`input_image` by `file_id` is refused.",
    )
    async def create(self, request: Request, chat_service: ChatService, response_store: ResponseStore) -> Response:
        log = request.state.setdefault("log", {})
        body = decode_request(await request.body(), ResponsesRequest)
        refuse_while_loading(chat_service)
        history = response_store.conversation(body.previous_response_id) if body.previous_response_id else []
        chat, conversation = chat_request(body, history)
        job = normalize(chat, chat_service.routes())
        prepared = await chat_service.prepare(job, log)
        response = {
            "id": _id("resp"),
            "object": "response",
            "created_at": int(time.time()),
            "model": prepared.engine.name,
            "error": None,
            "instructions": body.instructions,
            "max_output_tokens": body.max_output_tokens,
            "metadata": body.metadata or {},
            "parallel_tool_calls": body.parallel_tool_calls,
            "previous_response_id": body.previous_response_id,
            "reasoning": {"effort": body.reasoning.effort if body.reasoning else None},
            "store": body.store,
            "temperature": body.temperature,
            "text": msgspec.to_builtins(body.text) if body.text else {"format": {"type": "text"}},
            "tool_choice": msgspec.to_builtins(body.tool_choice) if body.tool_choice else "auto",
            "tools": msgspec.to_builtins(body.tools or []),
            "top_p": body.top_p,
            "truncation": "disabled",
            "user": body.user,
            "mmserve": prepared.report,
        }

        def remember(final: dict, text: str, calls: list[dict]) -> None:
            if body.store:
                response_store.put(final["id"], [*conversation, _assistant_turn(text, calls)])

        headers = {"X-MMServe-Route": job.route.kind}
        events = chat_service.events(prepared)
        if body.stream:
            return await stream(
                request,
                prepared,
                events,
                lambda replayed: sse_events(
                    _events(replayed, response=response, on_end=remember), on_close=prepared.release, log=log
                ),
                headers,
            )
        (reply,) = await collect(request, prepared, events)
        final = _ended(response, reply.finished, _output(reply))
        remember(final, reply.text, [msgspec.to_builtins(call) for call in reply.tool_calls])
        return Response(final, headers=headers)


def _output(reply: Reply) -> list[dict]:
    """A whole reply as output items: its thinking, its text, its function calls (an empty
    message when it has none of them)."""
    output = []
    if thought := "".join(reply.reasoning):
        output.append(_reasoning_item(thought))
    if reply.text or not (thought or reply.tool_calls):
        output.append(_message_item(reply.text))
    output += [_call_item(msgspec.to_builtins(call)) for call in reply.tool_calls]
    return output
