"""A client that goes away stops its generation within about a second."""

from __future__ import annotations

import time

import httpx
import pytest

pytestmark = pytest.mark.slow


def running(server, engine: str) -> int:
    return sum(w["running"] for w in server.status()["workers"] if w["engine"] == engine)


def wait_for_running(server, engine: str, value: int, timeout: float) -> float:
    started = time.monotonic()
    while time.monotonic() - started < timeout:
        if running(server, engine) == value:
            return time.monotonic() - started
        time.sleep(0.05)
    raise AssertionError(f"{engine} engine still has {running(server, engine)} running after {timeout}s")


def test_stream_disconnect_frees_the_sequence(server, endless):
    """Closing a streaming response mid-way removes the sequence from the batch within seconds (it would run ten more)."""
    with httpx.stream(
        "POST", server.base_url + "/v1/chat/completions", json={**endless, "stream": True}, timeout=30
    ) as response:
        lines = response.iter_lines()
        for _ in range(6):
            next(lines)
        assert running(server, "text") == 1
    wait_for_running(server, "text", 0, timeout=5)


def test_non_stream_disconnect_frees_the_sequence(server, endless):
    """A non-streaming client that times out and hangs up stops its generation too."""
    with pytest.raises(httpx.ReadTimeout):
        httpx.post(server.base_url + "/v1/chat/completions", json=endless, timeout=1.0)
    wait_for_running(server, "text", 0, timeout=5)


def test_abandoned_requests_give_back_memory_and_queue_places(server, endless):
    """After streams are abandoned at different points, nothing stays reserved or queued."""
    body = {**endless, "stream": True}
    for lines_read in (0, 1, 3):
        with httpx.stream("POST", server.base_url + "/v1/chat/completions", json=body, timeout=30) as response:
            lines = response.iter_lines()
            for _ in range(lines_read):
                next(lines)
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        status = server.status()
        if status["guard"]["held_bytes"] == 0 and all(w["inflight"] == 0 for w in status["workers"]):
            return
        time.sleep(0.1)
    raise AssertionError(
        f"still held after abandoned streams: {status['guard']['held_bytes']} bytes, {status['workers']}"
    )
