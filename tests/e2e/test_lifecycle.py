"""Starting, stopping and failing to start, as an operator sees it."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import threading
from pathlib import Path

import httpx
import pytest

from tests.conftest import free_port, start_server

pytestmark = pytest.mark.slow


@pytest.mark.parametrize("level", ["info", "debug"])
def test_unloadable_model_exits_non_zero_with_the_reason(models, tmp_path, level):
    """A model whose weights cannot be loaded ends the server with exit code 1 and one line
    naming it; the worker's traceback is logged at debug only."""
    broken = tmp_path / "broken"
    shutil.copytree(models / "text", broken)
    (broken / "model.safetensors").write_bytes(b"not safetensors")
    result = subprocess.run(
        [sys.executable, "-m", "mmserve.cli", "serve", "--text-model", str(broken), "--port", str(free_port()),
         "--log-level", level],
        capture_output=True, text=True, timeout=120, env={**os.environ, "MMSERVE_LOG_JSON": "true"},
    )  # fmt: skip
    assert result.returncode == 1
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith("mmserve: ") and "could not be loaded" in last and str(broken) in last
    assert ("Traceback" in result.stderr) == (level == "debug")


def test_missing_model_directory_is_a_clear_startup_error(tmp_path):
    """A model path that does not exist stops the server with a message naming it."""
    missing = tmp_path / "nowhere"
    result = subprocess.run(
        [sys.executable, "-m", "mmserve.cli", "serve", "--text-model", str(missing), "--port", str(free_port())],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert result.returncode != 0
    assert str(missing) in result.stderr


@pytest.mark.parametrize("to_group", [False, True], ids=["server", "process-group"])
def test_sigterm_drains_in_flight_requests(models, tmp_path, to_group):
    """SIGTERM lets a running request finish before the server and its workers exit, also
    when it reaches the whole process group (systemd's default, or `timeout`)."""
    server = start_server(models, tmp_path)
    workers = [w["pid"] for w in server.status()["workers"]]
    outcome = {}

    def ask():
        outcome["response"] = httpx.post(
            server.base_url + "/v1/chat/completions",
            json={"messages": [{"role": "user", "content": "go"}], "max_tokens": 300, "temperature": 0},
            timeout=60,
        )

    request = threading.Thread(target=ask)
    request.start()
    while not any(w["running"] for w in server.status()["workers"]):
        pass
    if to_group:
        os.killpg(server.process.pid, signal.SIGTERM)
    else:
        server.process.send_signal(signal.SIGTERM)
    request.join()
    assert server.process.wait(60) in (0, -signal.SIGTERM)  # uvicorn re-raises the signal once drained
    assert outcome["response"].status_code == 200
    assert outcome["response"].json()["usage"]["completion_tokens"] > 0
    for pid in workers:
        with pytest.raises(ProcessLookupError):
            os.kill(pid, 0)


def test_ctrl_c_stops_quietly(models, tmp_path):
    """Ctrl-C (SIGINT to the whole process group) stops everything without tracebacks, also
    after an image request has put the vision worker's preparer threads to work."""
    from tests.e2e.test_openai_sdk import image_message, png_data_uri

    server = start_server(models, tmp_path)
    response = httpx.post(
        server.base_url + "/v1/chat/completions",
        json={"messages": image_message(png_data_uri()), "max_tokens": 4},
        timeout=60,
    )
    assert response.status_code == 200
    os.killpg(server.process.pid, signal.SIGINT)
    server.process.wait(60)
    log = server.log()
    assert "Traceback" not in log and "KeyboardInterrupt" not in log
    assert "terminate called" not in log  # no worker aborted on its way out


def test_workers_run_with_the_mlx_settings_a_long_lived_server_needs(server):
    """Each worker process runs with mlx's cache-thrashing check off, a text worker with TF32 off and a vision
    worker with one malloc arena."""
    for worker in server.status()["workers"]:
        environ = Path(f"/proc/{worker['pid']}/environ").read_bytes().split(b"\0")
        assert b"MLX_ENABLE_CACHE_THRASHING_CHECK=0" in environ
        assert (b"MLX_ENABLE_TF32=0" in environ) == (worker["engine"] == "text")
        assert (b"MALLOC_ARENA_MAX=1" in environ) == (worker["engine"] == "vision")
