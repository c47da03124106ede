"""Several workers per engine, each a copy of the model: requests spread, answers agree, a page
or a conversation stays with the worker that caches it, and one dying leaves the rest serving."""

from __future__ import annotations

import os
import signal
import threading
from contextlib import ExitStack

import httpx
import openai
import pytest

from tests.conftest import start_server, stop_server, wait_until

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def pair(models, tmp_path_factory):
    srv = start_server(
        models, tmp_path_factory.mktemp("replica-logs"), "--text-replicas", "2", "--vision-replicas", "2"
    )
    wait_until(lambda: [w["state"] for w in srv.status()["workers"]] == ["ready"] * 4)
    yield srv
    stop_server(srv)


@pytest.fixture
def client(pair) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{pair.base_url}/v1", api_key="x", max_retries=0, timeout=60)


def text_workers(server) -> list[dict]:
    return [w for w in server.status()["workers"] if w["engine"] == "text"]


def image_question(uri: str, text: str) -> list[dict]:
    return [
        {"role": "user", "content": [{"type": "image_url", "image_url": {"url": uri}}, {"type": "text", "text": text}]}
    ]


def test_both_copies_run_as_processes_of_their_own(pair):
    """/ready and /admin/status show two text workers with their own pids."""
    ready = httpx.get(f"{pair.base_url}/ready", timeout=5).json()
    assert ready["engines"]["text"]["replicas"] == 2
    pids = [w["pid"] for w in text_workers(pair)]
    assert len(set(pids)) == 2 and all(pids)


def test_concurrent_requests_spread_over_the_workers(pair, endless):
    """Four long streams at once run two on each worker, although all four prefer the same one."""
    stop = threading.Event()

    def stream(http: httpx.Client) -> None:
        with http.stream("POST", f"{pair.base_url}/v1/chat/completions", json={**endless, "stream": True}) as response:
            for _ in response.iter_lines():
                if stop.is_set():
                    return

    def running() -> list[int]:
        workers = status.get(f"{pair.base_url}/admin/status").json()["workers"]
        return [w["running"] for w in workers if w["engine"] == "text"]

    # Every client is made before the load starts: making one (its TLS context) took seconds
    # in this process while two workers kept both cores of a small machine busy.
    with ExitStack() as clients:
        status, *https = [clients.enter_context(httpx.Client(timeout=30)) for _ in range(5)]
        threads = [threading.Thread(target=stream, args=(http,)) for http in https]
        for thread in threads:
            thread.start()
        try:
            wait_until(lambda: running() == [2, 2], timeout=10)
        finally:
            stop.set()
            for thread in threads:
                thread.join()
    wait_until(lambda: all(w["running"] == 0 for w in text_workers(pair)), timeout=5)


def test_greedy_answers_do_not_depend_on_the_worker(client):
    """The same prompt sent twice at once (one to each worker) and alone gets one greedy answer."""
    ask = lambda: client.chat.completions.create(  # noqa: E731
        model="text", messages=[{"role": "user", "content": "Which worker?"}], max_tokens=24, temperature=0
    )
    answers = []
    threads = [threading.Thread(target=lambda: answers.append(ask().choices[0].message.content)) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(answers) == 2 and answers[0] == answers[1] == ask().choices[0].message.content


def test_a_conversation_stays_with_the_worker_that_caches_it(client):
    """Every conversation's second turn finds its first turn in the prefix cache."""
    for i in range(6):  # one worker in two by chance: 1 in 64 to pass without affinity
        messages = [{"role": "user", "content": f"Conversation {i} opens here."}]
        first = client.chat.completions.create(model="text", messages=messages, max_tokens=8, temperature=0)
        follow_up = [
            *messages,
            {"role": "assistant", "content": first.choices[0].message.content},
            {"role": "user", "content": "And then?"},
        ]
        second = client.chat.completions.create(model="text", messages=follow_up, max_tokens=8, temperature=0)
        assert second.usage.prompt_tokens_details.cached_tokens >= first.usage.prompt_tokens - 1


def test_a_page_asked_again_goes_to_the_worker_that_encoded_it(client):
    """Every page's second question, a different one, reuses the first's cached image KV."""
    from tests.e2e.test_openai_sdk import png_data_uri

    for seed in range(6):  # one worker in two by chance: 1 in 64 to pass without affinity
        uri = png_data_uri(224, 224, seed=100 + seed)
        first = client.chat.completions.create(
            model="vision", messages=image_question(uri, "What is this?"), max_tokens=4, temperature=0
        )
        second = client.chat.completions.create(
            model="vision", messages=image_question(uri, "And its colours?"), max_tokens=4, temperature=0
        )
        assert first.usage.prompt_tokens_details.cached_tokens == 0
        assert second.usage.prompt_tokens_details.cached_tokens >= 48  # 224 px: 64 image tokens


def test_one_worker_dying_leaves_the_other_serving(pair, client):
    """SIGKILL of one text worker: /ready stays 200, requests are answered, and the worker comes back."""
    victim = text_workers(pair)[0]["pid"]
    os.kill(victim, signal.SIGKILL)
    wait_until(lambda: any(w["state"] != "ready" for w in text_workers(pair)), timeout=10)
    assert httpx.get(f"{pair.base_url}/ready", timeout=5).status_code == 200
    for i in range(3):
        answer = client.chat.completions.create(
            model="text", messages=[{"role": "user", "content": f"Still there, {i}?"}], max_tokens=4, temperature=0
        )
        assert answer.choices[0].message.content
    wait_until(lambda: [w["state"] for w in text_workers(pair)] == ["ready", "ready"])
    assert victim not in [w["pid"] for w in text_workers(pair)]
