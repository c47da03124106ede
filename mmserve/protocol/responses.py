"""OpenAI Responses API wire types (POST /v1/responses), and its input as chat messages.

A Responses request is served as the chat request it amounts to: ``instructions`` and the
``input`` items (with the conversation of ``previous_response_id`` before them) become chat
messages, function tools and ``text.format`` their chat spelling. ``chat_request`` does
that; the route (``api/responses.py``) turns the chat reply back into output items.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

import msgspec
from msgspec import Meta, Struct

from ..errors import InvalidRequestError
from .openai import (
    MAX_MESSAGES,
    MAX_TOOLS,
    ChatCompletionRequest,
    FunctionName,
    Name,
    Probability,
    TokenCount,
)

__all__ = ["ResponsesRequest", "chat_request"]


class FunctionTool(Struct, tag_field="type", tag="function", forbid_unknown_fields=False):
    name: FunctionName
    description: str | None = None
    parameters: dict[str, Any] | None = None
    strict: bool | None = None


class NamedFunction(Struct, tag_field="type", tag="function", forbid_unknown_fields=False):
    name: FunctionName


class TextFormat(Struct, frozen=True, forbid_unknown_fields=False):
    type: Literal["text", "json_object", "json_schema"] = "text"
    name: Annotated[str, Meta(min_length=1, max_length=64, pattern="^[A-Za-z0-9_-]+$")] | None = None
    schema: dict[str, Any] | None = None
    strict: bool | None = None


class TextOptions(Struct, forbid_unknown_fields=False):
    format: TextFormat = TextFormat()


class Reasoning(Struct, forbid_unknown_fields=False):
    effort: Literal["none", "minimal", "low", "medium", "high"] | None = None


class ResponsesRequest(Struct, kw_only=True, forbid_unknown_fields=False):
    input: str | Annotated[list[dict[str, Any]], Meta(max_length=MAX_MESSAGES)]
    model: Name | None = None
    instructions: str | None = None
    max_output_tokens: TokenCount | None = None
    temperature: Annotated[float, Meta(ge=0.0, le=2.0)] | None = None
    top_p: Annotated[float, Meta(gt=0.0, le=1.0)] | None = None
    stream: bool = False
    tools: Annotated[list[FunctionTool], Meta(max_length=MAX_TOOLS)] | None = None
    tool_choice: Literal["none", "auto", "required"] | NamedFunction | None = None
    parallel_tool_calls: bool = True
    text: TextOptions | None = None
    reasoning: Reasoning | None = None
    previous_response_id: Annotated[str, Meta(max_length=128)] | None = None
    store: bool = True
    metadata: dict[str, str] | None = None
    user: Name | None = None
    top_logprobs: Annotated[int, Meta(ge=0, le=0)] | None = None  # not served past 0
    min_p: Probability | None = None


def _parts(content: Any, param: str) -> str | list[dict]:
    """Responses content (a string or input/output parts) as chat content parts."""
    if isinstance(content, str):
        return content
    if not isinstance(content, list):
        raise InvalidRequestError("content must be a string or a list of parts", param=param)
    parts: list[dict] = []
    for index, part in enumerate(content):
        where = f"{param}[{index}]"
        kind = part.get("type") if isinstance(part, dict) else None
        if kind in ("input_text", "output_text", "text") and isinstance(part.get("text"), str):
            parts.append({"type": "text", "text": part["text"]})
        elif kind == "input_image":
            if part.get("file_id"):
                raise InvalidRequestError(
                    "input_image by file_id is not supported: this server keeps no files; send image_url "
                    "(a URL or a data URI)",
                    param=f"{where}.file_id",
                    code="unsupported_parameter",
                )
            if not isinstance(part.get("image_url"), str):
                raise InvalidRequestError("input_image needs image_url", param=f"{where}.image_url")
            detail = part.get("detail") or "auto"
            parts.append({"type": "image_url", "image_url": {"url": part["image_url"], "detail": detail}})
        else:
            raise InvalidRequestError("content parts are input_text, input_image or output_text", param=f"{where}.type")
    return parts


def _messages(items: str | list[dict]) -> list[dict]:
    """The input items as chat messages (OpenAI's wire form)."""
    if isinstance(items, str):
        return [{"role": "user", "content": items}]
    messages: list[dict] = []
    for index, item in enumerate(items):
        param = f"input[{index}]"
        kind = item.get("type", "message")
        if kind == "message" and item.get("role") in ("user", "system", "developer", "assistant"):
            messages.append({"role": item["role"], "content": _parts(item.get("content", ""), f"{param}.content")})
        elif kind == "function_call":
            call = {
                "id": str(item.get("call_id", "")),
                "type": "function",
                "function": {"name": item.get("name"), "arguments": item.get("arguments", "{}")},
            }
            if messages and messages[-1]["role"] == "assistant" and "tool_calls" in messages[-1]:
                messages[-1]["tool_calls"].append(call)
            else:
                messages.append({"role": "assistant", "content": None, "tool_calls": [call]})
        elif kind == "function_call_output":
            output = item.get("output")
            messages.append(
                {
                    "role": "tool",
                    "tool_call_id": str(item.get("call_id", "")),
                    "content": output if isinstance(output, str) else msgspec.json.encode(output).decode(),
                }
            )
        elif kind == "reasoning":
            continue  # the model's earlier thinking is not sent back to it
        else:
            raise InvalidRequestError(
                "input items are messages, function_call or function_call_output", param=f"{param}.type"
            )
    return messages


def chat_request(request: ResponsesRequest, history: list[dict]) -> tuple[ChatCompletionRequest, list[dict]]:
    """The chat request a Responses request amounts to (``history``: the conversation of its
    previous response), and its input as chat messages (what a later response continues)."""
    conversation = [*history, *_messages(request.input)]
    # Instructions hold for this response only: a later one gives its own (as OpenAI's do).
    messages = (
        [{"role": "system", "content": request.instructions}, *conversation] if request.instructions else conversation
    )
    text_format = request.text.format if request.text else TextFormat()
    response_format: dict | None = None
    if text_format.type == "json_object":
        response_format = {"type": "json_object"}
    elif text_format.type == "json_schema":
        response_format = {
            "type": "json_schema",
            "json_schema": {"name": text_format.name or "output", "schema": text_format.schema, "strict": True},
        }
    choice = request.tool_choice
    body = {
        "model": request.model,
        "messages": messages,
        "max_tokens": request.max_output_tokens,
        "temperature": request.temperature,
        "top_p": request.top_p,
        "min_p": request.min_p,
        "tools": [{"type": "function", "function": msgspec.to_builtins(tool)} for tool in request.tools or []] or None,
        "tool_choice": {"type": "function", "function": {"name": choice.name}}
        if isinstance(choice, NamedFunction)
        else choice,
        "parallel_tool_calls": request.parallel_tool_calls,
        "response_format": response_format,
        "reasoning_effort": request.reasoning.effort if request.reasoning else None,
        "user": request.user,
    }
    try:
        chat = msgspec.convert({k: v for k, v in body.items() if v is not None}, ChatCompletionRequest)
    except msgspec.ValidationError as exc:
        raise InvalidRequestError(f"the input cannot be served: {exc}", param="input", code="invalid_value") from None
    return chat, conversation
