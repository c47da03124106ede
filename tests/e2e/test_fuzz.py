"""The chat request fuzzed against a real server with one worker per engine: every field,
every type, the bounds and one past them, nesting, sizes. Each case gets a 200 or a 4xx in
the error envelope, and a plain request right after it is served by the same worker.

Then a soak: the same cases while normal text and image traffic runs beside them, which
must get exactly the answers it gets alone."""

from __future__ import annotations

import os
import threading
import time

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.e2e._hostile import (
    FIELDS,
    RAW_BODIES,
    answered_cleanly,
    error_of,
    messages_for,
    post,
    served_normally,
    single_field_cases,
)

pytestmark = pytest.mark.slow

# Cases per run; the draws are the same every run (derandomized) so CI stays repeatable.
# Raise it to search further: MMSERVE_FUZZ_EXAMPLES=2000 pytest tests/e2e/test_fuzz.py
EXAMPLES = int(os.environ.get("MMSERVE_FUZZ_EXAMPLES", "80"))

ANY_JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False) | st.text(max_size=40),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=4),
    max_leaves=12,
)
# Fields where a valid large value means a long generation: their bounds only.
_LENGTHS = {"max_tokens", "max_completion_tokens"}


@st.composite
def chat_requests(draw) -> tuple[str, dict]:
    route = draw(st.sampled_from(["text", "vision"]))
    body: dict = {"messages": messages_for(route, draw(st.text(max_size=30))), "max_tokens": 4}
    for name in draw(st.lists(st.sampled_from(sorted(FIELDS)), min_size=1, max_size=4, unique=True)):
        values = st.sampled_from(FIELDS[name])
        body[name] = draw(values if name in _LENGTHS else values | ANY_JSON)
    return route, body


def both_engines_serve(server, pids: dict[str, int]) -> None:
    for route in ("text", "vision"):
        served_normally(server, route, max_tokens=2)
        assert server.worker_pid(route) == pids[route], f"the {route} worker restarted"


@pytest.fixture(scope="module")
def pids(lone_server) -> dict[str, int]:
    return {route: lone_server.worker_pid(route) for route in ("text", "vision")}


CASES = single_field_cases()


@pytest.mark.parametrize(("name", "value"), CASES, ids=[f"{name}-{i}" for i, (name, _) in enumerate(CASES)])
def test_every_value_of_every_field_is_answered_and_the_workers_serve_the_next(lone_server, pids, name, value):
    route = "vision" if name in ("messages", "mmserve") else "text"
    answered_cleanly(post(lone_server, {"messages": messages_for(route), "max_tokens": 4, name: value}))
    both_engines_serve(lone_server, pids)


@settings(
    max_examples=EXAMPLES,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(case=chat_requests())
def test_fuzzed_requests_are_answered_and_the_workers_serve_the_next(lone_server, pids, case):
    """Several fields at once, drawn from their bounds or from any JSON at all."""
    _, body = case
    answered_cleanly(post(lone_server, body))
    both_engines_serve(lone_server, pids)


ROUTES = ["/v1/chat/completions", "/v1/completions", "/v1/responses", "/tokenize", "/detokenize"]


@pytest.mark.parametrize("path", ROUTES)
@pytest.mark.parametrize("body", RAW_BODIES, ids=[f"raw{i}" for i in range(len(RAW_BODIES))])
def test_a_body_that_is_no_request_is_a_400(lone_server, pids, body, path):
    """On every route that takes a body: not JSON, not an object, nested too deep, NaN. (A
    chat body with a field another route does not know may be a valid request there.)"""
    response = post(lone_server, body, path=path)
    if path != "/v1/chat/completions" and response.status_code == 200:
        assert response.json()
    else:
        assert response.status_code == 400, response.text[:500]
        error_of(response)
    both_engines_serve(lone_server, pids)


def test_soak_hostile_cases_beside_normal_traffic(lone_server, pids):
    """Every single-field case, the raw bodies and clients that hang up, while three clients
    send plain text and image requests: those all get 200 and the answer they get alone,
    no worker restarts, and afterwards nothing is held or in flight."""
    alone = {route: served_normally(lone_server, route, max_tokens=8) for route in ("text", "vision")}
    done = threading.Event()
    answers: list[tuple[str, str]] = []
    failures: list[str] = []

    def normal_client(route: str) -> None:
        while not done.is_set():
            try:
                answers.append((route, served_normally(lone_server, route, max_tokens=8)))
            except Exception as exc:  # noqa: BLE001 - recorded and asserted below
                failures.append(f"{route}: {exc!r}")

    clients = [threading.Thread(target=normal_client, args=(r,)) for r in ("text", "text", "vision")]
    for client in clients:
        client.start()
    try:
        for name, value in CASES:
            route = "vision" if name == "messages" else ("text", "vision")[len(answers) % 2]
            answered_cleanly(post(lone_server, {"messages": messages_for(route), "max_tokens": 4, name: value}))
        for body in RAW_BODIES:
            assert post(lone_server, body).status_code == 400
        for route in ("text", "vision", "text"):
            with pytest.raises(httpx.ReadTimeout):
                post(lone_server, {"messages": messages_for(route), "max_tokens": 2000}, timeout=0.5)
    finally:
        done.set()
        for client in clients:
            client.join()
    assert not failures, failures[:5]
    assert {route for route, _ in answers} == {"text", "vision"}
    assert [(route, text) for route, text in answers if text != alone[route]] == []
    both_engines_serve(lone_server, pids)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        status = lone_server.status()
        if status["guard"]["held_bytes"] == 0 and all(w["inflight"] == 0 for w in status["workers"]):
            break
        time.sleep(0.1)
    assert status["guard"]["held_bytes"] == 0
    assert all(w["inflight"] == 0 for w in status["workers"])
    assert "Traceback" not in lone_server.log()
