"""The OpenAPI document and its viewers, served offline.

Swagger UI (``/docs``, ``/docs/swagger``) and ReDoc (``/docs/redoc``) load their
scripts from ``/docs/assets`` — copies packaged by ``openapi-ui-bundles`` — so the
docs work on a machine without network. The document describes every route with the
wire Structs of ``mmserve.protocol``: the chat handler reads its body itself (to
answer with OpenAI's error envelope), so Litestar cannot see its types, and the
operations are completed here from those Structs, with examples.
"""

from __future__ import annotations

from typing import Any

import msgspec
from litestar import Litestar, Router
from litestar.openapi import OpenAPIConfig
from litestar.openapi.plugins import JsonRenderPlugin, RedocRenderPlugin, SwaggerRenderPlugin
from litestar.static_files import create_static_files_router

from .protocol import schemas
from .protocol.openai import (
    ChatCompletion,
    ChatCompletionChunk,
    ChatCompletionRequest,
    CompletionRequest,
    TextCompletion,
)
from .protocol.responses import ResponsesRequest

__all__ = ["ASSETS", "asset_routers", "complete_document", "openapi_config"]

ASSETS = "/docs/assets"
_REF = "#/components/schemas/{name}"
_FAVICON = f"<link rel='icon' type='image/png' href='{ASSETS}/swagger-ui/favicon-32x32.png'>"


def openapi_config(version: str) -> OpenAPIConfig:
    """``/docs`` (Swagger UI), ``/docs/swagger``, ``/docs/redoc`` and ``/docs/openapi.json``."""
    return OpenAPIConfig(
        title="mmserve",
        version=version,
        description="An OpenAI-compatible chat server for MLX models that takes text and images, with a memory "
        "guard that sizes every request to the memory the machine has. Every non-2xx answer is "
        '`{"error": {"message", "type", "param", "code"}}`.',
        path="/docs",
        render_plugins=[
            SwaggerRenderPlugin(
                path=["/", "/swagger"],
                js_url=f"{ASSETS}/swagger-ui/swagger-ui-bundle.js",
                css_url=f"{ASSETS}/swagger-ui/swagger-ui.css",
                standalone_preset_js_url=f"{ASSETS}/swagger-ui/swagger-ui-standalone-preset.js",
                favicon=_FAVICON,
            ),
            RedocRenderPlugin(
                path="/redoc", js_url=f"{ASSETS}/redoc/redoc.standalone.js", google_fonts=False, favicon=_FAVICON
            ),
            JsonRenderPlugin(path="/openapi.json"),
        ],
        create_examples=False,
    )


def asset_routers() -> list[Router]:
    """The viewers' scripts and styles, from the ``openapi-ui-bundles`` package."""
    from openapi_ui_bundles import redoc, swagger_ui

    return [
        create_static_files_router(f"{ASSETS}/swagger-ui", [swagger_ui.static_path], name="swagger-ui-assets"),
        create_static_files_router(f"{ASSETS}/redoc", [redoc.static_path], name="redoc-assets"),
    ]


# --- the document -----------------------------------------------------------

_TEXT_REQUEST = {
    "model": "auto",
    "messages": [{"role": "user", "content": "Say hello"}],
    "max_tokens": 32,
}
_IMAGE_REQUEST = {
    "model": "auto",
    "max_tokens": 256,
    "messages": [
        {
            "role": "user",
            "content": [
                {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBORw0KGgo..."}},
                {"type": "text", "text": "What does this page say?"},
            ],
        }
    ],
}
_REPORT = {
    "route": "vision",
    "model": "vision",
    "images": [{"original": [2550, 3300], "resized": [392, 504], "tokens": 252, "shrunk": True}],
    "resized_count": 1,
    "snapped_count": 0,
    "prompt_tokens_planned": 300,
    "memory": {"budget_bytes": 20981534720, "planned_peak_bytes": 2208063849},
}
_COMPLETION = {
    "id": "chatcmpl-0a1b2c",
    "object": "chat.completion",
    "created": 1765100000,
    "model": "vision",
    "choices": [
        {"index": 0, "message": {"role": "assistant", "content": "INVOICE No. 1042 ..."}, "finish_reason": "stop"}
    ],
    "usage": {"prompt_tokens": 300, "completion_tokens": 40, "total_tokens": 340},
    "mmserve": _REPORT,
}
_STREAM = (
    'data: {"id":"chatcmpl-0a1b2c","object":"chat.completion.chunk","created":1765100000,"model":"text",'
    '"choices":[{"index":0,"delta":{"role":"assistant","content":"Hel"}}]}\n\n'
    "...\n\n"
    "data: [DONE]\n\n"
)


def _error(status_text: str, message: str, type_: str, code: str, param: str | None = None) -> dict:
    return {
        "description": status_text,
        "content": {
            "application/json": {
                "schema": {"$ref": _REF.format(name="ErrorEnvelope")},
                "example": {"error": {"message": message, "type": type_, "param": param, "code": code}},
            }
        },
    }


_ERRORS = {
    "400": _error(
        "Bad request: a field, an image or its source (the message and `param` say which)",
        "Expected `float` <= 2.0",
        "invalid_request_error",
        "invalid_value",
        "temperature",
    ),
    "401": _error(
        "No valid API key (only when the server has --api-key)",
        "a valid API key is required (Authorization: Bearer <key>)",
        "authentication_error",
        "invalid_api_key",
    ),
    "404": _error("Unknown model", "no model 'gpt-9'", "invalid_request_error", "model_not_found", "model"),
    "413": _error(
        "The body is too large, or the request can never fit the memory budget",
        "the request needs more memory than the budget allows even at the smallest image size",
        "invalid_request_error",
        "insufficient_memory",
    ),
    "503": _error(
        "Busy or starting: retry after `Retry-After` seconds",
        "memory did not free up in time",
        "server_overloaded",
        "overloaded",
    ),
    "500": _error("A fault in the server", "the server failed on this request", "server_error", "internal_error"),
}


def _json(name: str, description: str, example: Any = None) -> dict:
    content: dict = {"schema": {"$ref": _REF.format(name=name)}}
    if example is not None:
        content["example"] = example
    return {"description": description, "content": {"application/json": content}}


def _body(name: str, **examples: Any) -> dict:
    """A required JSON request body of schema ``name``, with its ``example`` or ``examples``."""
    return {"required": True, "content": {"application/json": {"schema": {"$ref": _REF.format(name=name)}, **examples}}}


def _operations() -> dict[tuple[str, str], dict]:
    chat = {
        "requestBody": _body(
            "ChatCompletionRequest",
            examples={
                "text": {"summary": "A text chat", "value": _TEXT_REQUEST},
                "image": {"summary": "An image and a question (routed to the vision model)", "value": _IMAGE_REQUEST},
            },
        ),
        "responses": {
            "200": {
                "description": "The completion; with `stream: true`, server-sent `chat.completion.chunk` events, "
                "the last one carrying `usage` (if asked) and `mmserve`, then `data: [DONE]`",
                "headers": {
                    "X-MMServe-Route": {"description": "text or vision", "schema": {"type": "string"}},
                    "X-MMServe-Resized": {
                        "description": "images shrunk for the side limit or memory",
                        "schema": {"type": "integer"},
                    },
                    "X-MMServe-Snapped": {
                        "description": "images only rounded to the model's grid",
                        "schema": {"type": "integer"},
                    },
                    "X-Request-Id": {"description": "the request's id in the log", "schema": {"type": "string"}},
                },
                "content": {
                    "application/json": {
                        "schema": {"$ref": _REF.format(name="ChatCompletion")},
                        "example": _COMPLETION,
                    },
                    "text/event-stream": {
                        "schema": {"$ref": _REF.format(name="ChatCompletionChunk")},
                        "example": _STREAM,
                    },
                },
            },
            **_ERRORS,
        },
    }
    models = {
        "responses": {
            "200": _json(
                "ModelList",
                "The alias `auto` and each served model",
                {
                    "object": "list",
                    "data": [
                        {"id": "auto", "object": "model", "created": 1765100000, "owned_by": "mmserve"},
                        {
                            "id": "vision",
                            "object": "model",
                            "created": 1765100000,
                            "owned_by": "mmserve",
                            "engine": "vision",
                            "context_length": 128000,
                            "ready": True,
                        },
                    ],
                },
            ),  # fmt: skip
            "401": _ERRORS["401"],
        }
    }
    ready = {
        "responses": {
            "200": _json("Readiness", "Every engine has a worker loaded"),
            "503": _json(
                "Readiness",
                "Not ready; `reason` says what is loading",
                {
                    "status": "not_ready",
                    "engines": {
                        "vision": {
                            "engine": "vision",
                            "state": "finding",
                            "reason": "finding the model mlx-community/Qwen2.5-VL-3B-Instruct-4bit",
                        }
                    },
                    "reason": "vision engine is finding: finding the model mlx-community/Qwen2.5-VL-3B-Instruct-4bit",
                },
            ),  # fmt: skip
        }
    }
    completions = {
        "requestBody": _body(
            "CompletionRequest", example={"model": "auto", "prompt": "Once upon a time", "max_tokens": 16}
        ),
        "responses": {
            "200": {
                "description": "The completion; with `stream: true`, server-sent `text_completion` chunks, then "
                "`data: [DONE]`",
                "content": {
                    "application/json": {"schema": {"$ref": _REF.format(name="TextCompletion")}},
                    "text/event-stream": {"schema": {"$ref": _REF.format(name="TextCompletion")}},
                },
            },
            **_ERRORS,
        },
    }
    responses = {
        "requestBody": _body(
            "ResponsesRequest", example={"model": "auto", "input": "Say hello.", "max_output_tokens": 16}
        ),
        "responses": {
            "200": {
                "description": "The response object; with `stream: true`, the Responses event sequence as "
                "server-sent events (`response.created` ... `response.completed` or `response.incomplete`)",
                "content": {"application/json": {"schema": {"type": "object"}}},
            },
            **_ERRORS,
        },
    }
    return {
        ("/v1/chat/completions", "post"): chat,
        ("/v1/completions", "post"): completions,
        ("/v1/responses", "post"): responses,
        ("/v1/models", "get"): models,
        ("/health", "get"): {"responses": {"200": _json("Health", "The HTTP process is alive", {"status": "ok"})}},
        ("/ready", "get"): ready,
        ("/admin/status", "get"): {
            "responses": {"200": _json("AdminStatus", "The guard and the workers"), "401": _ERRORS["401"]}
        },
        ("/metrics", "get"): {
            "responses": {
                "200": {
                    "description": "Prometheus text exposition format",
                    "content": {"text/plain; version=0.0.4": {"schema": {"type": "string"}}},
                }
            }
        },
    }


_TYPES = [
    ChatCompletionRequest,
    ChatCompletion,
    ChatCompletionChunk,
    CompletionRequest,
    TextCompletion,
    ResponsesRequest,
    schemas.ErrorEnvelope,
    schemas.MMServeReport,
    schemas.ModelList,
    schemas.Health,
    schemas.Readiness,
    schemas.AdminStatus,
]


def complete_document(app: Litestar) -> dict:
    """Fill in the request and response schemas, examples and errors of every route in
    the app's OpenAPI document (the dict Litestar caches and serves)."""
    from litestar._openapi.plugin import OpenAPIPlugin

    document = app.plugins.get(OpenAPIPlugin).provide_openapi_schema()
    _, components = msgspec.json.schema_components(_TYPES, ref_template=_REF)
    # The handlers build `mmserve` as a dict; its shape is MMServeReport's.
    for name in ("ChatCompletion", "ChatCompletionChunk", "TextCompletion"):
        components[name]["properties"]["mmserve"] = {"$ref": _REF.format(name="MMServeReport")}
    document.setdefault("components", {}).setdefault("schemas", {}).update(components)
    for (path, method), operation in _operations().items():
        target = document.get("paths", {}).get(path, {}).get(method)
        if target is not None:
            target.update(operation)
    return document
