"""A worker killed mid-request: clean end for the client, restart, the server stays up."""

from __future__ import annotations

import os
import signal
import threading
import time

import httpx
import openai
import pytest

from tests.conftest import start_server, stop_server, wait_until

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def fragile(models, tmp_path_factory):
    # One worker per engine: with more, the others keep it ready (tests/e2e/test_replicas.py).
    srv = start_server(models, tmp_path_factory.mktemp("fault-logs"), "--text-replicas", "1", "--vision-replicas", "1")
    yield srv
    stop_server(srv)


@pytest.mark.parametrize("engine", ["text", "vision"])
def test_sigkill_mid_stream_ends_cleanly_and_worker_restarts(fragile, engine):
    """SIGKILL of a worker mid-stream: the stream ends with an error event, /ready reports, the next request works."""
    client = openai.OpenAI(base_url=f"{fragile.base_url}/v1", api_key="x", max_retries=0, timeout=60)
    server_pid = fragile.process.pid
    worker_pid = fragile.worker_pid(engine)
    stream = client.chat.completions.create(
        model=engine,  # the synth model directories are named text and vision
        messages=[{"role": "user", "content": "Go on for a long time."}],
        max_tokens=100_000,
        temperature=0,
        stream=True,
    )
    received = []
    with pytest.raises(openai.APIError) as caught:
        for chunk in stream:
            received.append(chunk)
            if len(received) == 3:
                os.kill(worker_pid, signal.SIGKILL)
    assert len(received) >= 3
    assert "engine" in str(caught.value)
    # The request's log line is written once its response has finished, which may be just after
    # the client has read the error event.
    wait_until(lambda: '"error": "engine_unavailable"' in fragile.log(), timeout=10)

    ready = lambda: httpx.get(f"{fragile.base_url}/ready", timeout=5)  # noqa: E731
    wait_until(lambda: ready().status_code == 200)
    assert fragile.worker_pid(engine) != worker_pid
    answer = client.chat.completions.create(
        model="auto", messages=[{"role": "user", "content": "Still there?"}], max_tokens=4, temperature=0
    )
    assert answer.choices[0].message.content
    assert fragile.process.poll() is None and fragile.process.pid == server_pid


def test_ready_is_503_while_a_worker_restarts(fragile):
    """Between a worker's death and its restart /ready answers 503 and says why."""
    seen = []
    stop = threading.Event()

    def poll():
        while not stop.is_set():
            response = httpx.get(f"{fragile.base_url}/ready", timeout=5)
            seen.append((response.status_code, response.json()))
            time.sleep(0.02)

    poller = threading.Thread(target=poll)
    poller.start()
    try:
        os.kill(fragile.worker_pid("text"), signal.SIGKILL)
        wait_until(lambda: any(code == 503 for code, _ in seen), timeout=10)
        wait_until(lambda: seen[-1][0] == 200, timeout=60)
    finally:
        stop.set()
        poller.join()
    down = next(body for code, body in seen if code == 503)
    assert "text engine" in down["reason"]


def test_non_streaming_request_gets_503_when_its_worker_dies(fragile):
    """A non-streamed request whose worker dies gets a 503 in the error envelope, not a hang."""
    wait_until(lambda: httpx.get(f"{fragile.base_url}/ready", timeout=5).status_code == 200)
    worker_pid = fragile.worker_pid("text")
    timer = threading.Timer(1.0, os.kill, (worker_pid, signal.SIGKILL))
    timer.start()
    response = httpx.post(
        f"{fragile.base_url}/v1/chat/completions",
        json={"messages": [{"role": "user", "content": "long"}], "max_tokens": 100_000, "temperature": 0},
        timeout=60,
    )
    timer.join()
    assert response.status_code == 503
    assert response.json()["error"]["code"] == "engine_unavailable"
    assert "retry-after" in response.headers
