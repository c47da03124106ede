"""A real `mmserve serve` process driven by the official openai SDK and curl."""

from __future__ import annotations

import json
import subprocess
from concurrent.futures import ThreadPoolExecutor

import openai
import pytest

from tests.conftest import png_data_uri

pytestmark = pytest.mark.slow


def image_message(uri: str, text: str = "What is in this image?") -> list[dict]:
    return [
        {"role": "user", "content": [{"type": "image_url", "image_url": {"url": uri}}, {"type": "text", "text": text}]}
    ]


@pytest.fixture(scope="module")
def client(server) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{server.base_url}/v1", api_key="unused", max_retries=0, timeout=120)


def test_text_chat_returns_completion_routed_to_text(client):
    """A plain text chat is answered by the text engine, with usage and a finish reason."""
    raw = client.chat.completions.with_raw_response.create(
        model="auto", messages=[{"role": "user", "content": "Hello there"}], max_tokens=12, temperature=0
    )
    completion = raw.parse()
    assert raw.headers["x-mmserve-route"] == "text"
    assert completion.choices[0].message.content
    assert completion.choices[0].finish_reason in ("stop", "length")
    assert completion.usage.completion_tokens <= 12
    assert completion.usage.total_tokens == completion.usage.prompt_tokens + completion.usage.completion_tokens
    assert completion.model_extra["mmserve"]["route"] == "text"


def test_max_tokens_is_honoured_with_finish_reason_length(client):
    """max_tokens stops generation and says finish_reason=length."""
    completion = client.chat.completions.create(
        model="auto", messages=[{"role": "user", "content": "Tell me a long story"}], max_tokens=5, temperature=0
    )
    if completion.choices[0].finish_reason == "length":
        assert completion.usage.completion_tokens == 5
    else:
        assert completion.usage.completion_tokens < 5


def test_text_stream_assembles_to_the_same_text(client):
    """Streaming yields chunks whose concatenation equals the non-streamed answer (greedy)."""
    messages = [{"role": "user", "content": "Stream something for me"}]
    whole = client.chat.completions.create(model="auto", messages=messages, max_tokens=16, temperature=0)
    chunks = list(
        client.chat.completions.create(
            model="auto",
            messages=messages,
            max_tokens=16,
            temperature=0,
            stream=True,
            stream_options={"include_usage": True},
        )
    )
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == whole.choices[0].message.content
    finals = [c for c in chunks if c.choices and c.choices[0].finish_reason]
    assert len(finals) == 1 and finals[0].model_extra["mmserve"]["route"] == "text"
    assert chunks[-1].usage.completion_tokens == whole.usage.completion_tokens


def test_image_chat_routes_to_vision_and_reports_images(client):
    """An image_url data URI goes to the vision engine; the mmserve object reports the image."""
    raw = client.chat.completions.with_raw_response.create(
        model="auto", messages=image_message(png_data_uri()), max_tokens=8, temperature=0
    )
    completion = raw.parse()
    assert raw.headers["x-mmserve-route"] == "vision"
    assert completion.choices[0].message.content
    report = completion.model_extra["mmserve"]
    assert report["route"] == "vision"
    assert report["images"][0]["original"] == [224, 224]
    assert report["images"][0]["tokens"] == 64


def test_image_chat_streams(client):
    """An image chat can be streamed; the final chunk carries the mmserve report."""
    chunks = list(
        client.chat.completions.create(
            model="auto", messages=image_message(png_data_uri(seed=1)), max_tokens=8, temperature=0, stream=True
        )
    )
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert chunks[-1].model_extra["mmserve"]["route"] == "vision"


def test_different_images_give_different_answers(client):
    """The image reaches the model: two different images give two different greedy answers."""
    answers = {
        client.chat.completions.create(
            model="auto", messages=image_message(png_data_uri(seed=s)), max_tokens=12, temperature=0
        )
        .choices[0]
        .message.content
        for s in (2, 3)
    }
    assert len(answers) == 2


def test_models_lists_auto_and_served_models(client):
    """/v1/models lists the alias auto and each model with its context length."""
    models = {m.id: m for m in client.models.list().data}
    assert "auto" in models
    served = [m for m in models.values() if m.id != "auto"]
    assert len(served) == 2 and all(m.model_extra["context_length"] > 0 for m in served)


def test_curl_non_streaming(server):
    """curl gets a JSON completion."""
    body = json.dumps({"messages": [{"role": "user", "content": "hi"}], "max_tokens": 4})
    out = subprocess.run(
        ["curl", "-s", "-H", "Content-Type: application/json", "-d", body, f"{server.base_url}/v1/chat/completions"],
        capture_output=True, check=True, timeout=60,
    )  # fmt: skip
    assert json.loads(out.stdout)["object"] == "chat.completion"


def test_curl_streaming_ends_with_done(server):
    """curl -N sees SSE data lines ending with data: [DONE]."""
    body = json.dumps({"messages": [{"role": "user", "content": "hi"}], "max_tokens": 4, "stream": True})
    out = subprocess.run(
        ["curl", "-sN", "-H", "Content-Type: application/json", "-d", body, f"{server.base_url}/v1/chat/completions"],
        capture_output=True, check=True, timeout=60, text=True,
    )  # fmt: skip
    lines = [line for line in out.stdout.splitlines() if line.startswith("data: ")]
    assert lines[-1] == "data: [DONE]"
    assert json.loads(lines[0][6:])["object"] == "chat.completion.chunk"


def test_eight_concurrent_requests_each_get_their_solo_answer(client):
    """Batching causes no cross-talk: 8 concurrent greedy requests equal their solo answers."""
    prompts = [
        f"Question number {i}: what about {word}?"
        for i, word in enumerate("apples rivers stars glass music trains sand wolves".split())
    ]

    def ask(prompt: str) -> str:
        return (
            client.chat.completions.create(
                model="auto", messages=[{"role": "user", "content": prompt}], max_tokens=24, temperature=0
            )
            .choices[0]
            .message.content
        )

    solo = [ask(p) for p in prompts]
    with ThreadPoolExecutor(8) as pool:
        together = list(pool.map(ask, prompts))
    assert together == solo
    assert len(set(solo)) == len(solo)


def test_http_process_never_loads_mlx(server):
    """The HTTP process has no mlx library mapped; only the workers do."""
    maps = open(f"/proc/{server.process.pid}/maps").read()
    assert "libmlx" not in maps and "/mlx/core" not in maps
    worker_maps = open(f"/proc/{server.worker_pid('text')}/maps").read()
    assert "mlx" in worker_maps


def test_prefix_cache_reuses_kv_and_keeps_greedy_output(client):
    """Asking again, and continuing the chat, reuses cached KV without changing greedy answers."""
    messages = [
        {"role": "system", "content": "A shared system prompt for caching."},
        {"role": "user", "content": "Cache me"},
    ]
    first = client.chat.completions.create(model="text", messages=messages, max_tokens=16, temperature=0)
    second = client.chat.completions.create(model="text", messages=messages, max_tokens=16, temperature=0)
    assert second.choices[0].message.content == first.choices[0].message.content
    assert second.usage.prompt_tokens_details.cached_tokens >= first.usage.prompt_tokens - 1
    follow_up = [
        *messages,
        {"role": "assistant", "content": first.choices[0].message.content},
        {"role": "user", "content": "More"},
    ]
    third = client.chat.completions.create(model="text", messages=follow_up, max_tokens=16, temperature=0)
    assert third.usage.prompt_tokens_details.cached_tokens >= first.usage.prompt_tokens


def test_a_page_asked_again_reports_its_cached_image_tokens(client):
    """A second question about the same image reuses the page's KV and says so in usage."""

    def ask(question: str):
        content = [
            {"type": "image_url", "image_url": {"url": png_data_uri(224, 252, seed=11)}},
            {"type": "text", "text": question},
        ]
        return client.chat.completions.create(
            model="auto", messages=[{"role": "user", "content": content}], max_tokens=4, temperature=0
        )

    first, second = ask("What is the title of this page?"), ask("Who signed it?")
    assert first.usage.prompt_tokens_details.cached_tokens == 0
    assert second.usage.prompt_tokens_details.cached_tokens >= 64  # 224x252 px: 72 image tokens


def test_metrics_exposes_requests_tokens_guard_and_memory(client, server):
    """/metrics speaks Prometheus text with request, token, latency, guard and worker-memory series."""
    import httpx

    client.chat.completions.create(model="auto", messages=[{"role": "user", "content": "count me"}], max_tokens=3)
    text = httpx.get(server.base_url + "/metrics", timeout=10).text
    for series in (
        'mmserve_requests_total{route="text",status="200"}',
        "mmserve_completion_tokens_total",
        "mmserve_time_to_first_token_seconds_bucket",
        "mmserve_request_duration_seconds_count",
        'mmserve_request_phase_seconds_count{phase="prefill",route="text"}',
        'mmserve_guard_decisions_total{decision="resized"}',
        'mmserve_guard_decisions_total{decision="snapped"}',
        'mmserve_worker_restarts_total{engine="text"}',
        'mmserve_worker_memory_bytes{engine="vision",kind="peak"}',
        'mmserve_queue_depth{engine="text"}',
        'mmserve_batch_size{engine="text"}',
    ):
        assert series in text, series


def test_openapi_docs_are_served(server):
    """Litestar's OpenAPI schema lists the chat route."""
    import httpx

    schema = httpx.get(server.base_url + "/docs/openapi.json", timeout=10).json()
    assert "/v1/chat/completions" in schema["paths"]


def test_one_canonical_log_line_per_request_without_payloads(client, server):
    """Each chat request logs one JSON line with its id, route, tokens and timings, and never the image bytes."""
    import json

    uri = png_data_uri(seed=42)
    raw = client.chat.completions.with_raw_response.create(model="auto", messages=image_message(uri), max_tokens=4)
    request_id = raw.headers["x-request-id"]
    lines = [json.loads(line) for line in server.log().splitlines() if request_id in line]
    assert len(lines) == 1
    line = lines[0]
    for field in ("route", "model", "images", "prompt_tokens", "completion_tokens", "ttft_ms", "total_ms", "status"):
        assert field in line, field
    assert line["route"] == "vision" and line["images"] == 1 and line["status"] == 200
    # Where the time went, from arrival: intake, then the worker's phases, add up to no more than the whole.
    phases = ("intake_ms", "queue_ms", "prepare_ms", "admit_ms", "prefill_ms", "decode_ms")
    assert all(line[phase] >= 0 for phase in phases)
    assert line["prepare_ms"] > 0 and line["prefill_ms"] > 0
    assert sum(line[phase] for phase in phases) <= line["total_ms"]
    assert line["intake_ms"] <= line["ttft_ms"] <= line["total_ms"]
    assert uri[30:90] not in server.log()
    assert "[transformers]" not in server.log()  # no library chatter for every image request
