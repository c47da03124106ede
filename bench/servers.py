"""The servers under test: how to start each one, when it is ready, how to stop it.

Each server runs as a subprocess in its own process group on a free loopback
port, one at a time, with its log in a file. A server that fails to start is
reported with the tail of its log, never raised past the caller.
"""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx

__all__ = ["SERVERS", "Server", "ServerSpec", "StartError", "failure_lines", "free_port"]


class StartError(RuntimeError):
    """The server did not become ready."""


@dataclass(frozen=True)
class ServerSpec:
    name: str  # short key used on the command line
    title: str  # how the report names it
    workloads: frozenset[str]  # what it can serve
    needs: tuple[str, ...]  # model kinds it needs: "text", "vision"

    def argv(self, models: dict[str, Path], port: int) -> list[str]:
        py = sys.executable
        if self.name == "mmserve":
            argv = [
                py,
                "-m",
                "mmserve.cli",
                "serve",
                "--host",
                "127.0.0.1",
                "--port",
                str(port),
                # BENCH_MMSERVE_LOG_LEVEL=info logs one JSON line per request, with its phase timings.
                "--log-level",
                os.environ.get("BENCH_MMSERVE_LOG_LEVEL", "warning"),
                "--log-json",
            ]
            if "text" in models:
                argv += ["--text-model", str(models["text"])]
            if "vision" in models:
                argv += ["--vision-model", str(models["vision"])]
            return argv
        peers = {"mlx_lm": ("mlx_lm.server", "text"), "mlx_vlm": ("mlx_vlm.server", "vision")}
        if self.name in peers:
            module, kind = peers[self.name]
            return [py, "-m", module, "--model", str(models[kind]), "--host", "127.0.0.1", "--port", str(port),
                    "--log-level", "WARNING"]  # fmt: skip
        raise ValueError(self.name)

    def model_field(self, models: dict[str, Path]) -> str:
        """The request's ``model``: mmserve routes "auto"; the peers answer to the path they loaded."""
        if self.name == "mmserve":
            return "auto"
        return str(models["text" if self.name == "mlx_lm" else "vision"])


SERVERS = {
    "mmserve": ServerSpec(
        "mmserve", "mmserve", frozenset({"text", "image", "mixed", "repeated-image"}), ("text", "vision")
    ),
    "mlx_lm": ServerSpec("mlx_lm", "mlx_lm.server", frozenset({"text"}), ("text",)),
    "mlx_vlm": ServerSpec(
        "mlx_vlm", "mlx_vlm.server", frozenset({"text", "image", "mixed", "repeated-image"}), ("vision",)
    ),
}


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class Server:
    """A started server: its process, base URL, log file, and a sampler of its process tree's RSS."""

    spec: ServerSpec
    models: dict[str, Path]
    log_dir: Path
    cwd: Path
    port: int = 0
    proc: subprocess.Popen | None = None
    log_path: Path | None = None
    startup_s: float | None = None
    rss_peak_bytes: int = 0
    _sampling: bool = False
    _thread: threading.Thread | None = field(default=None, repr=False)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout_s: float) -> None:
        self.port = free_port()
        self.log_path = self.log_dir / f"{self.spec.name}.log"
        argv = self.spec.argv(self.models, self.port)
        env = dict(os.environ, PYTHONUNBUFFERED="1")
        t0 = time.perf_counter()
        with open(self.log_path, "wb") as log:
            self.proc = subprocess.Popen(
                argv, stdout=log, stderr=subprocess.STDOUT, cwd=self.cwd, env=env, start_new_session=True
            )
        self._wait_ready(timeout_s)
        self.startup_s = time.perf_counter() - t0
        self._sampling = True
        self._thread = threading.Thread(target=self._sample_rss, daemon=True)
        self._thread.start()

    def _wait_ready(self, timeout_s: float) -> None:
        deadline = time.perf_counter() + timeout_s
        path = "/ready" if self.spec.name == "mmserve" else "/health"
        last = "no answer"
        while time.perf_counter() < deadline:
            if self.proc.poll() is not None:
                raise StartError(f"exited with code {self.proc.returncode} before it was ready")
            try:
                resp = httpx.get(self.base_url + path, timeout=5.0)
                last = f"{path} -> {resp.status_code}"
                if resp.status_code == 200:
                    if self.spec.name != "mlx_vlm" or resp.json().get("loaded_model"):
                        return
                    last = f"{path} -> 200 but no model loaded yet"
            except (httpx.HTTPError, ValueError) as exc:
                last = f"{path} -> {type(exc).__name__}"
            time.sleep(0.5)
        raise StartError(f"not ready after {timeout_s:.0f}s (last: {last})")

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def log_tail(self, lines: int = 8) -> str:
        """The log's exception lines if it has any (the cause, not the traceback frames), else its last lines."""
        try:
            text = self.log_path.read_text(errors="replace")
        except (OSError, AttributeError):
            return ""
        return failure_lines(text, lines)

    def _tree(self):
        import psutil

        root = psutil.Process(self.proc.pid)
        return [root, *root.children(recursive=True)]

    def rss_by_pid(self) -> dict[int, int]:
        """The RSS of each process of the server (the HTTP process and its workers), by pid."""
        import psutil

        out = {}
        for p in self._tree():
            try:
                out[p.pid] = p.memory_info().rss
            except psutil.Error:
                pass
        return out

    def rss_bytes(self) -> int | None:
        try:
            return sum(self.rss_by_pid().values())
        except Exception:  # noqa: BLE001 - psutil missing or the process is gone
            return None

    def cpu_seconds(self) -> dict[str, float]:
        """CPU seconds (user + system) so far of each process of the server, by role: http, worker:text, ..."""
        out: dict[str, float] = {}
        try:
            import psutil

            for p in self._tree():
                try:
                    times = p.cpu_times()
                    argv = p.cmdline()
                except psutil.Error:
                    continue
                role = "server" if p.pid == self.proc.pid else "child"
                if "--engine" in argv and argv.index("--engine") + 1 < len(argv):
                    role = "worker:" + argv[argv.index("--engine") + 1]
                out[role] = out.get(role, 0.0) + times.user + times.system
        except Exception:  # noqa: BLE001 - psutil missing or the process is gone
            return {}
        return out

    def _sample_rss(self) -> None:
        while self._sampling and self.alive():
            rss = self.rss_bytes()
            if rss:
                self.rss_peak_bytes = max(self.rss_peak_bytes, rss)
            time.sleep(0.5)

    def reset_rss_peak(self) -> None:
        self.rss_peak_bytes = self.rss_bytes() or 0

    def stop(self, grace_s: float = 20.0) -> int | None:
        """SIGTERM the server (as a process manager would), then SIGKILL its group after ``grace_s``."""
        self._sampling = False
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(grace_s)
            except subprocess.TimeoutExpired:
                pass
        try:  # workers the server started may outlive it
            os.killpg(self.proc.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
        try:
            self.proc.wait(5)
        except subprocess.TimeoutExpired:
            pass
        return self.proc.returncode


_EXCEPTION = re.compile(r"^([\w.]*\.)?[A-Z]\w*(Error|Exception|Exit|Interrupt)(:.*)?$|.*(startup failed|Exiting)")


def failure_lines(text: str, limit: int = 8) -> str:
    """What a crash log says went wrong: its exception lines, deduplicated; the last lines if there are none."""
    found: list[str] = []
    for line in text.splitlines():
        line = line.strip()
        if _EXCEPTION.match(line) and not line.startswith(("File ", "Traceback")) and line not in found:
            found.append(line)
    return "\n".join(found[-limit:] if found else text.splitlines()[-limit:])
