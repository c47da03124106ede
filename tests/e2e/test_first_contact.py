"""What an operator sees first: start-up failures, the banner, the ready and stopped lines."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from tests.conftest import Server, free_port, stop_server

pytestmark = pytest.mark.slow


def _serve(*args: str, env: dict | None = None, timeout: float = 60) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "mmserve.cli", "serve", *args],
        capture_output=True, text=True, timeout=timeout,
        env={**os.environ, "MMSERVE_LOG_JSON": "true", "HF_HUB_OFFLINE": "1", **(env or {})},
    )  # fmt: skip


def _plain_lines(stderr: str) -> list[str]:
    """Lines on stderr that are not JSON log events."""
    return [line for line in stderr.splitlines() if line.strip() and not line.startswith("{")]


def _events(text: str) -> list[dict]:
    return [json.loads(line) for line in text.splitlines() if line.startswith("{")]


@pytest.fixture
def bad_toml(tmp_path) -> Path:
    path = tmp_path / "mmserve.toml"
    path.write_text("max_image_sid = 100\n")
    return path


@pytest.mark.parametrize(
    ("case", "code", "says"),
    [
        ("flag", 2, "argument --port: invalid int value: 'abc'"),
        ("env", 2, "MMSERVE_MAX_IMAGE_SIDE: 'abc' is not valid"),
        ("toml", 2, "mmserve.toml: max_image_sid: unknown setting"),
        ("budget", 2, "--memory-budget: memory budget '12XB' has an unknown unit"),
        ("offline-repo", 3, "model 'mmserve-test/no-such-model' is not in the Hugging Face cache"),
        ("no-directory", 3, "is not a model directory"),
        ("port-taken", 4, "cannot listen on 127.0.0.1:"),
    ],
)
def test_a_startup_failure_is_one_line_with_an_exit_code(case, code, says, models, bad_toml, tmp_path):
    """Each start-up failure exits with its documented code, says what and what to do in at
    most three plain lines, and prints no traceback."""
    text = str(models / "text")
    taken = socket.socket()
    taken.bind(("127.0.0.1", 0))
    taken.listen()
    args, env = {
        "flag": (["--text-model", text, "--port", "abc"], None),
        "env": (["--text-model", text], {"MMSERVE_MAX_IMAGE_SIDE": "abc"}),
        "toml": (["--text-model", text, "--config", str(bad_toml)], None),
        "budget": (["--text-model", text, "--memory-budget", "12XB"], None),
        "offline-repo": (["--text-model", "mmserve-test/no-such-model", "--port", "0"], None),
        "no-directory": (["--text-model", str(tmp_path / "nowhere"), "--port", "0"], None),
        "port-taken": (["--text-model", text, "--port", str(taken.getsockname()[1])], None),
    }[case]
    try:
        result = _serve(*args, env=env)
    finally:
        taken.close()
    assert result.returncode == code
    plain = _plain_lines(result.stderr)
    assert 1 <= len(plain) <= 3 and says in plain[-1]
    assert "Traceback" not in result.stderr


def test_version():
    """`mmserve serve --version` prints the version."""
    from mmserve import __version__

    result = subprocess.run([sys.executable, "-m", "mmserve.cli", "serve", "--version"], capture_output=True, text=True)
    assert result.returncode == 0 and result.stdout.strip() == f"mmserve {__version__}"


@pytest.fixture(scope="module")
def started(models, tmp_path_factory):
    """A server started here, with /health asked as soon as the port opens."""
    port = free_port()
    log_path = tmp_path_factory.mktemp("first-contact") / "server.log"
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "MMSERVE_LOG_JSON": "true"}
    cmd = [sys.executable, "-m", "mmserve.cli", "serve", "--port", str(port), "--text-model", str(models / "text"),
           "--vision-model", str(models / "vision")]  # fmt: skip
    with open(log_path, "wb") as log:
        process = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=env, start_new_session=True)
    server = Server(process, f"http://127.0.0.1:{port}", log_path)
    early = None
    try:
        while early is None and process.poll() is None:
            try:
                early = (httpx.get(server.base_url + "/health").status_code, httpx.get(server.base_url + "/ready"))
            except httpx.TransportError:
                pass
        server.wait_ready()
        yield server, early
    finally:
        stop_server(server)


def test_health_answers_while_the_models_load(started):
    """The port opens at once: /health is 200 while /ready is 503 and says what is loading."""
    _, (health, ready) = started
    assert health == 200
    assert ready.status_code == 503
    engines = ready.json()["engines"].values()
    assert {engine["state"] for engine in engines} <= {"finding", "starting", "ready"}
    assert all(("model" in engine["reason"]) or engine["state"] == "ready" for engine in engines)


def test_banner_says_what_is_served_and_the_budget_admin_status_reports(started, models):
    """One `started` event names the URL, each model with its source, family and weights, the
    device, tier and image side, and the budget /admin/status reports; then `ready` with the time."""
    server, _ = started
    events = _events(server.log())
    banner = next(e for e in events if e["event"] == "started")
    status = server.status()["guard"]
    assert banner["url"] == server.base_url
    assert banner["budget_bytes"] == status["budget_bytes"]
    assert (banner["tier"], banner["max_image_side"]) == (status["tier"], status["max_image_side"])
    by_engine = {model["engine"]: model for model in banner["models"]}
    assert by_engine["text"]["source"] == str(models / "text") and by_engine["text"]["family"] == "qwen2"
    assert by_engine["vision"]["family"] == "qwen2_5_vl" and by_engine["vision"]["weights_bytes"] > 0
    assert all(model["demo"] for model in banner["models"])  # synthesized: random weights
    assert banner["backend"] in ("cpu", "cuda", "metal")
    ready = next(e for e in events if e["event"] == "ready")
    assert ready["took_s"] > 0 and events.index(ready) > events.index(banner)


def test_probes_are_not_logged_at_info(started):
    """/health and /ready probes leave no request line at info; a chat request does."""
    server, _ = started
    for _ in range(3):
        httpx.get(server.base_url + "/ready")
    httpx.get(server.base_url + "/v1/models")
    requests = [e for e in _events(server.log()) if e["event"] == "request"]
    assert not [e for e in requests if e["path"] in ("/health", "/ready")]
    assert any(e["path"] == "/v1/models" for e in requests)


def _chat_image(server: Server, width: int, height: int) -> httpx.Response:
    from tests.e2e.test_openai_sdk import image_message, png_data_uri

    body = {"messages": image_message(png_data_uri(width, height)), "max_tokens": 2}
    return httpx.post(server.base_url + "/v1/chat/completions", json=body, timeout=60)


def test_snapping_to_the_grid_is_reported_apart_from_shrinking(started):
    """A 320x200 image rounded to the grid (308x196) is snapped, not resized, in the headers,
    the mmserve object, the request log line and the metrics; a 2000x1500 one is resized."""
    server, _ = started
    snapped, shrunk = _chat_image(server, 320, 200), _chat_image(server, 2000, 1500)
    assert (snapped.headers["x-mmserve-resized"], snapped.headers["x-mmserve-snapped"]) == ("0", "1")
    report = snapped.json()["mmserve"]
    assert (report["resized_count"], report["snapped_count"]) == (0, 1) and report["images"][0]["snapped"]
    assert (shrunk.headers["x-mmserve-resized"], shrunk.headers["x-mmserve-snapped"]) == ("1", "0")
    assert shrunk.json()["mmserve"]["images"][0]["shrunk"]
    line = next(e for e in _events(server.log()) if e.get("request_id") == snapped.headers["x-request-id"])
    assert line["image_sizes"] == ["320x200>308x196"] and line["snapped"] == 1 and line["planned_bytes"] > 0
    metrics = httpx.get(server.base_url + "/metrics").text
    assert 'mmserve_guard_decisions_total{decision="snapped"} 1.0' in metrics
    assert 'mmserve_guard_decisions_total{decision="resized"} 1.0' in metrics
    assert "_created" not in metrics


def test_docs_load_every_asset_from_the_server_itself(started):
    """/docs, /docs/swagger and /docs/redoc reference no outside URL, and each script, style
    and icon they name is served locally, so the docs work offline."""
    import re

    server, _ = started
    for page in ("/docs", "/docs/swagger", "/docs/redoc"):
        html = httpx.get(server.base_url + page).text
        assert not re.search(r"https?://", html.split("<script type='text/javascript'>")[0]), page
        assets = re.findall(r"(?:src|href)=[\"'](/docs/assets/[^\"']+)", html)
        assert assets, page
        for asset in assets:
            response = httpx.get(server.base_url + asset)
            assert response.status_code == 200 and len(response.content) > 100, asset


def test_openapi_describes_every_route_with_schemas_examples_and_errors(started):
    """The OpenAPI document gives the chat request and response schemas, examples and the
    error envelope, and a response schema for every other route."""
    server, _ = started
    document = httpx.get(server.base_url + "/docs/openapi.json").json()
    components = document["components"]["schemas"]
    chat = document["paths"]["/v1/chat/completions"]["post"]
    body = chat["requestBody"]["content"]["application/json"]
    assert body["schema"]["$ref"].endswith("/ChatCompletionRequest") and {"text", "image"} <= set(body["examples"])
    assert "messages" in components["ChatCompletionRequest"]["properties"]
    ok = chat["responses"]["200"]["content"]
    assert ok["application/json"]["schema"]["$ref"].endswith("/ChatCompletion") and "text/event-stream" in ok
    for status in ("400", "413", "503"):
        error = chat["responses"][status]["content"]["application/json"]
        assert error["schema"]["$ref"].endswith("/ErrorEnvelope") and "error" in error["example"]
    assert components["ChatCompletion"]["properties"]["mmserve"]["$ref"].endswith("/MMServeReport")
    for path, operations in document["paths"].items():
        for method, operation in operations.items():
            for status, response in operation["responses"].items():
                for media, content in response.get("content", {}).items():
                    assert content["schema"], f"{method} {path} {status} {media}"


def test_shutdown_is_logged(started):
    """SIGTERM ends the server with a `stopped` line."""
    server, _ = started
    server.process.send_signal(signal.SIGTERM)
    server.process.wait(60)
    assert any(e["event"] == "stopped" for e in _events(server.log()))
