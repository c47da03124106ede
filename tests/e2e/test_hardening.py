"""Requests a hostile or careless client sends: each gets a 200 or a 4xx in the error
envelope, and the worker that saw it serves the next request as before."""

from __future__ import annotations

import json
import time

import httpx
import pytest

from tests.conftest import wait_until
from tests.e2e._hostile import CHAT, error_of, log_lines, messages_for, post, served_normally

pytestmark = pytest.mark.slow


HOSTILE = [
    ("top_k past the vocabulary", {"top_k": 100_000, "temperature": 1.0}, 400, "top_k"),
    ("top_k of 2**31", {"top_k": 2**31}, 400, "top_k"),
    ("seed -1", {"seed": -1, "temperature": 1.0}, 200, None),
    ("seed 2**64", {"seed": 2**64, "temperature": 1.0}, 400, "seed"),
    ("seed -(2**63) - 1", {"seed": -(2**63) - 1}, 400, "seed"),
    ("16 stop strings of 100k characters", {"stop": ["s" * 100_000] * 16}, 400, "stop[0]"),
    ("17 stop strings", {"stop": ["s"] * 17}, 400, "stop"),
    ("16 stop strings of 1,024 characters", {"stop": [str(i) * 1024 for i in range(10)] + ["z" * 1024] * 6}, 200, None),
    ("NaN temperature", b'{"temperature": NaN}', 400, None),
]


@pytest.mark.parametrize("route", ["text", "vision"])
@pytest.mark.parametrize(("fields", "status", "param"), [case[1:] for case in HOSTILE], ids=[c[0] for c in HOSTILE])
def test_a_hostile_field_is_answered_and_the_worker_serves_the_next(lone_server, route, fields, status, param):
    pid = lone_server.worker_pid(route)
    if isinstance(fields, bytes):
        body = fields[:-1] + b', "messages": ' + json.dumps(messages_for(route)).encode() + b"}"
    else:
        body = {"messages": messages_for(route), "max_tokens": 8, **fields}
    response = post(lone_server, body)
    assert response.status_code == status, response.text
    if status != 200:
        error = error_of(response)
        assert error["type"] == "invalid_request_error"
        if param:
            assert error["param"] == param
    served_normally(lone_server, route, temperature=1.0)  # unseeded sampling: what a poisoned state broke
    served_normally(lone_server, route)
    assert lone_server.worker_pid(route) == pid


def test_json_nested_ten_thousand_levels_deep_is_a_400(lone_server):
    body = b'{"messages": [{"role": "user", "content": "hi"}], "metadata": ' + b"[" * 10_000 + b"]" * 10_000 + b"}"
    response = post(lone_server, body)
    assert response.status_code == 400
    assert error_of(response)["code"] == "invalid_json"
    served_normally(lone_server, "text")


@pytest.mark.parametrize("megabytes", [12, 48])
def test_a_huge_prompt_is_refused_from_its_length_before_any_tokenizer(lone_server, megabytes):
    """Megabytes of text under the body limit: context_length_exceeded from the characters
    alone (the message says so), and the text worker, never asked to count it, serves on."""
    pid = lone_server.worker_pid("text")
    response = post(lone_server, {"messages": [{"role": "user", "content": "word " * (megabytes << 18)}]})
    assert response.status_code == 400
    error = error_of(response)
    assert error["code"] == "context_length_exceeded" and "characters" in error["message"]
    served_normally(lone_server, "text")
    assert lone_server.worker_pid("text") == pid


LONG = {"messages": [{"role": "user", "content": "Keep talking."}], "max_tokens": 3000, "temperature": 0}


def request_line(server, request_id: str) -> dict:
    found: list[dict] = []

    def logged() -> bool:
        found[:] = [line for line in log_lines(server) if line.get("request_id") == request_id]
        return bool(found)

    wait_until(logged, timeout=10)
    (line,) = found
    return line


def test_a_client_that_leaves_before_a_plain_answer_is_logged_as_499(lone_server):
    """One JSON request line with status 499 and a metric; no traceback in the log."""
    with pytest.raises(httpx.ReadTimeout):
        post(lone_server, LONG, timeout=1.0, headers={"X-Request-Id": "left-early-plain"})
    line = request_line(lone_server, "left-early-plain")
    assert (line["status"], line["error"], line["route"]) == (499, "client_disconnected", "text")
    log = lone_server.log()
    assert "Exception in ASGI application" not in log and "CancelledError" not in log
    metrics = httpx.get(lone_server.base_url + "/metrics", timeout=10).text
    assert 'mmserve_requests_total{route="text",status="499"}' in metrics
    served_normally(lone_server, "text")


def test_a_client_that_stops_reading_a_stream_is_logged_as_499(lone_server):
    with httpx.stream(
        "POST",
        lone_server.base_url + CHAT,
        json={**LONG, "stream": True},
        headers={"X-Request-Id": "left-early-stream"},
        timeout=30,
    ) as response:
        lines = response.iter_lines()
        for _ in range(4):
            next(lines)
    line = request_line(lone_server, "left-early-stream")
    assert (line["status"], line["error"]) == (499, "client_disconnected")
    assert "Traceback" not in lone_server.log()
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline and lone_server.status()["guard"]["held_bytes"]:
        time.sleep(0.1)
    assert lone_server.status()["guard"]["held_bytes"] == 0
