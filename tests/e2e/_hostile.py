"""What a hostile or careless client sends, field by field, and how to check the server took it."""

from __future__ import annotations

import base64
import io
import json

import httpx
from PIL import Image

from tests.conftest import png_data_uri

CHAT = "/v1/chat/completions"
IMAGE = png_data_uri(64, 48, seed=5)


def _png_declaring(width: int, height: int) -> str:
    """A tiny PNG whose header declares ``width`` x ``height`` (a decompression bomb's shape)."""
    buffer = io.BytesIO()
    Image.new("1", (width, height)).save(buffer, format="PNG")
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode()


def messages_for(route: str, text: str = "hello") -> list[dict]:
    if route == "text":
        return [{"role": "user", "content": text}]
    parts = [{"type": "image_url", "image_url": {"url": IMAGE}}, {"type": "text", "text": text}]
    return [{"role": "user", "content": parts}]


def post(server, body, *, timeout: float = 120, path: str = CHAT, **kwargs) -> httpx.Response:
    if isinstance(body, bytes):
        kwargs["content"] = body
        kwargs.setdefault("headers", {})["Content-Type"] = "application/json"
    else:
        kwargs["json"] = body
    return httpx.post(server.base_url + path, timeout=timeout, **kwargs)


def error_of(response: httpx.Response) -> dict:
    """The OpenAI error envelope of a non-2xx answer (asserting its shape)."""
    error = response.json()["error"]
    assert set(error) == {"message", "type", "param", "code"}, error
    return error


def answered_cleanly(response: httpx.Response) -> None:
    """A 200 whose body (streamed or not) carries no server error, or a 4xx in the envelope."""
    if response.status_code == 200:
        if response.headers["content-type"].startswith("text/event-stream"):
            assert response.text.endswith("data: [DONE]\n\n")
            assert "event: error" not in response.text, response.text[-2000:]
        else:
            assert response.json()["choices"][0]["message"]["content"] is not None
        return
    assert 400 <= response.status_code < 500, (response.status_code, response.text[:2000])
    error_of(response)


def served_normally(server, route: str, **sampling) -> str:
    """A plain request on ``route`` is answered with a 200; its text."""
    body = {"messages": messages_for(route), "max_tokens": 4, "temperature": 0, **sampling}
    response = post(server, body)
    assert response.status_code == 200, response.text
    assert response.headers["x-mmserve-route"] == route
    return response.json()["choices"][0]["message"]["content"]


def log_lines(server) -> list[dict]:
    return [json.loads(line) for line in server.log().splitlines() if line.startswith("{")]


def _integers(low: int, high: int) -> list:
    """The bounds, one past each, and the wrong types an integer field gets."""
    return [low, high, low - 1, high + 1, str(low), low + 0.5, True, [], {}]


def _numbers(low: float, high: float, past: float = 1e-3) -> list:
    return [low, high, low - past, high + past, 1e308, -1e308, str(high), True, [], {}]


# Per field of the chat request: valid values at its bounds, values one past them, wrong
# types, nesting and sizes. max_tokens keeps to small valid values: a valid max_tokens of
# 2**31 - 1 is clamped to the context, and generating that long is a test of patience.
FIELDS: dict[str, list] = {
    "model": ["auto", "", "m" * 256, "m" * 257, "no-such-model", 5, None, ["auto"]],
    "stream": [True, False, "yes", 1, None],
    "stream_options": [{"include_usage": True}, {"include_usage": "yes"}, {}, "x", None, {"x": [[[]]]}],
    "max_tokens": [1, 16, 0, -1, 2**31, 2**63, 2**64, -(2**63) - 1, "8", 1.5, True, None],
    "max_completion_tokens": [1, 0, 2**31, "8", None],
    "temperature": _numbers(0.0, 2.0),
    "top_p": [1e-9, 1.0, 0.0, 1.001, -1.0, "1", None, True],
    "top_k": [-1, 0, 1, 40, -2, 100_000, 2**31 - 1, 2**31, 2**64, "5", 1.5, None],
    "min_p": _numbers(0.0, 1.0),
    "seed": [*_integers(-(2**63), 2**63 - 1), 2**64, -1, 0, None],
    "stop": [
        "a",
        "",
        "x" * 1024,
        "x" * 1025,
        ["a"] * 16,
        ["a"] * 17,
        ["x" * 1024] * 16,
        ["x" * 100_000] * 16,
        [""],
        [5],
        [],
        [["a"]],
        None,
    ],
    "presence_penalty": _numbers(-2.0, 2.0),
    "frequency_penalty": _numbers(-2.0, 2.0),
    "repetition_penalty": [1e-9, 10.0, 0.0, 10.001, -1.0, None, "1"],
    "n": [1, 2, 0, -1, 2**64, "1", None],
    "logprobs": [False, True, None, "yes"],
    "top_logprobs": [0, 20, 21, -1, None, "3"],
    "tools": [[], None, [{"type": "function", "function": {"name": "f"}}], "x", [[[[]]]]],
    "functions": [[], None, [{}], 5],
    "tool_choice": ["auto", "none", "required", {"type": "function", "function": {"name": "f"}}, "always", 5, None],
    "parallel_tool_calls": [True, False, "yes", None],
    "chat_template_kwargs": [{"enable_thinking": False}, {}, {"messages": []}, {"raise_exception": 1}, "x", None],
    "reasoning_effort": ["low", "high", "none", "extreme", 3, None],
    "response_format": [{"type": "text"}, {"type": "json_object"}, {"type": 5}, {}, "json", None],
    "user": ["u", "u" * 256, "u" * 257, 5, None],
    "mmserve": [
        {"max_image_side": 28},
        {"max_image_side": 65536},
        {"max_image_side": 65537},
        {"min_image_side": 27},
        {"min_image_side": 4000},
        {"max_image_side": "big"},
        "x",
        None,
    ],
    "metadata": [{"a": "b"}, [[[[[[[[[[[]]]]]]]]]]], "x" * 10_000],  # unknown fields are ignored
    "messages": [
        [],
        "hello",
        None,
        [{}],
        [None],
        [{"role": "wizard", "content": "hi"}],
        [{"role": "user"}],
        [{"role": "user", "content": 5}],
        [{"role": "user", "content": []}],
        [{"role": "user", "content": [{"type": "text"}]}],
        [{"role": "user", "content": [{"type": "audio", "data": "x"}]}],
        [{"role": "user", "content": [{"type": "text", "text": "hi"}] * 1000}],
        [{"role": "user", "content": [{"type": "text", "text": "hi"}] * 1001}],
        [{"role": "user", "content": "hi"}] * 10_000,
        [{"role": "user", "content": "hi"}] * 10_001,
        [{"role": "user", "content": "hi", "name": "n" * 256}],
        [{"role": "user", "content": "hi", "name": "n" * 257}],
        [{"role": "assistant", "content": "hi"}],
        [
            {"role": "system", "content": "be brief"},
            {"role": "developer", "content": "x"},
            {"role": "user", "content": "hi"},
        ],
        [{"role": "user", "content": "\x00\ud7ff\ufffd" * 100}],
        [{"role": "user", "content": "word " * 200_000}],
        [{"role": "user", "content": [{"type": "image_url", "image_url": {"url": ""}}]}],
        [{"role": "user", "content": [{"type": "image_url", "image_url": {"url": IMAGE, "detail": "ultra"}}]}],
        [{"role": "user", "content": [{"type": "image_url", "image_url": {"url": IMAGE, "detail": "low"}}]}],
        [{"role": "user", "content": [{"type": "image_url", "image_url": "not-an-object"}]}],
        [{"role": "user", "content": [{"type": "image_url", "image_url": {"url": "file:///etc/passwd"}}]}],
        [{"role": "user", "content": [{"type": "image_url", "image_url": {"url": "http://169.254.169.254/x.png"}}]}],
        [{"role": "user", "content": [{"type": "image_url", "image_url": {"url": "data:image/png;base64,!!!"}}]}],
        [{"role": "user", "content": [{"type": "image_url", "image_url": {"url": "data:text/plain,hello"}}]}],
        [{"role": "user", "content": [{"type": "image_url", "image_url": {"url": _png_declaring(30_000, 30_000)}}]}],
        [{"role": "user", "content": [{"type": "image_url", "image_url": {"url": png_data_uri(1, 1)}}]}],
        [{"role": "user", "content": [{"type": "image_url", "image_url": {"url": png_data_uri(2000, 8)}}]}],
        [{"role": "user", "content": [{"type": "image_url", "image_url": {"url": IMAGE}}] * 9}],
        [
            {"role": "system", "content": [{"type": "image_url", "image_url": {"url": IMAGE}}]},
            {"role": "user", "content": "hi"},
        ],
    ],
}

# Bodies that are not a chat request at all.
RAW_BODIES = [
    b"",
    b"{",
    b"null",
    b"[]",
    b'"text"',
    b"12",
    b"{" * 100_000,
    b'{"messages": ' + b"[" * 100_000 + b"]" * 100_000 + b"}",
    b'{"messages": [{"role": "user", "content": "hi"}], "temperature": NaN}',
    b'{"messages": [{"role": "user", "content": "hi"}], "temperature": Infinity}',
    b'{"messages": [{"role": "user", "content": "hi"}], "max_tokens": 1e400}',
    b'{"messages": [{"role": "user", "content": "hi"}]}' + b" " * 10_000 + b"x",
    b'{"messages": [{"role": "user", "content": "\\ud800"}]}',
    b"\xff\xfe{\x00}",
]


def single_field_cases() -> list[tuple[str, object]]:
    """Every value of every field, one at a time."""
    return [(name, value) for name, values in FIELDS.items() for value in values]
