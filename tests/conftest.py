"""Shared fixtures: tiny synth models and real `mmserve serve` subprocesses."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from PIL import Image


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture(autouse=True)
def _restore_pillow_pixel_limit(monkeypatch: pytest.MonkeyPatch) -> None:
    # The media loader lifts this process-wide limit; undo it after every test.
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", Image.MAX_IMAGE_PIXELS)


@pytest.fixture(scope="session")
def models(tmp_path_factory) -> Path:
    """Tiny random-weight text and vision models, written once per test session."""
    from mmserve.synth import synthesize

    root = tmp_path_factory.mktemp("models")
    synthesize(root, seed=0)
    return root


def wait_until(predicate, timeout: float = 60) -> None:
    """Poll ``predicate`` every 0.1 s until it holds; TimeoutError after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.1)
    raise TimeoutError("condition not met in time")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class Server:
    process: subprocess.Popen
    base_url: str
    log_path: Path
    api_key: str | None = None

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.api_key}"} if self.api_key else {}

    def status(self) -> dict:
        return httpx.get(f"{self.base_url}/admin/status", headers=self.headers, timeout=10).json()

    def worker_pid(self, engine: str) -> int:
        return next(w["pid"] for w in self.status()["workers"] if w["engine"] == engine)

    def wait_ready(self, timeout: float = 120) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(
                    f"server exited with {self.process.returncode}:\n{self.log_path.read_text()[-4000:]}"
                )
            try:
                if httpx.get(f"{self.base_url}/ready", headers=self.headers, timeout=2).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.2)
        raise TimeoutError(f"server not ready in {timeout}s:\n{self.log_path.read_text()[-4000:]}")

    def log(self) -> str:
        return self.log_path.read_text()


def start_server(models: Path, log_dir: Path, *args: str, api_key: str | None = None) -> Server:
    port = free_port()
    log_path = log_dir / f"server-{port}.log"
    cmd = [sys.executable, "-m", "mmserve.cli", "serve", "--port", str(port),
           "--text-model", str(models / "text"), "--vision-model", str(models / "vision"), *args]  # fmt: skip
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "MMSERVE_LOG_JSON": "true"}
    if api_key:
        env["MMSERVE_API_KEY"] = api_key
    with open(log_path, "wb") as log:
        process = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=env, start_new_session=True)
    server = Server(process, f"http://127.0.0.1:{port}", log_path, api_key)
    try:
        server.wait_ready()
    except BaseException:
        stop_server(server)
        raise
    return server


def stop_server(server: Server) -> None:
    if server.process.poll() is None:
        server.process.send_signal(signal.SIGTERM)
        try:
            server.process.wait(30)
        except subprocess.TimeoutExpired:
            os.killpg(server.process.pid, signal.SIGKILL)
            server.process.wait()


@pytest.fixture(scope="session")
def server(models, tmp_path_factory) -> Iterator[Server]:
    """One real server on the tiny models, shared by the tests that do not break it."""
    srv = start_server(models, tmp_path_factory.mktemp("logs"), "--allow-media-host", "127.0.0.1")
    yield srv
    stop_server(srv)


@pytest.fixture(scope="session")
def lone_server(models, tmp_path_factory) -> Iterator[Server]:
    """A real server with one worker per engine, for tests that check a hostile request
    left that very worker able to serve the next one."""
    srv = start_server(models, tmp_path_factory.mktemp("lone-logs"), "--text-replicas", "1", "--vision-replicas", "1")
    yield srv
    stop_server(srv)


@pytest.fixture(scope="session")
def endless(models) -> dict:
    """A request that cannot end by itself within the tests' window: its end-of-sequence
    tokens are banned, so the tiny model writes all 3000 tokens (over ten seconds on the
    CPU) unless the server stops it. Without the ban it stops after about three seconds,
    too close to the time a cancellation is given under a loaded machine."""
    config = json.loads((models / "text" / "generation_config.json").read_text())
    eos = config["eos_token_id"]
    ban = {str(token): -100 for token in (eos if isinstance(eos, list) else [eos])}
    return {
        "messages": [{"role": "user", "content": "Keep talking."}],
        "max_tokens": 3000,
        "temperature": 0,
        "logit_bias": ban,
    }


def png_data_uri(width: int = 224, height: int = 224, seed: int = 0) -> str:
    """A PNG of random pixels as a data URI."""
    import base64
    import io

    import numpy as np

    pixels = np.random.default_rng(seed).integers(0, 255, size=(height, width, 3), dtype=np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="PNG")
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode()
