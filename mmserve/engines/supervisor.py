"""The HTTP-process side of an engine: starts its worker, routes messages, restarts it.

``EngineClient`` owns one worker process. Requests talk to it through ``count``,
``generate`` and ``stats``; a worker that dies (crash, OOM kill, SIGKILL) is noticed
when its socket closes: every request it held gets ``EngineUnavailableError`` and
the worker is started again with exponential backoff. This module never imports mlx.
"""

from __future__ import annotations

import asyncio
import itertools
import socket
import sys
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass

import structlog

from ..errors import EngineUnavailableError, InternalError, InvalidRequestError, MMServeError, OverloadedError
from . import messages

__all__ = ["EngineClient", "WorkerSpec"]

log = structlog.get_logger("mmserve.engine")


@dataclass(frozen=True)
class WorkerSpec:
    engine: str  # "text" | "vision"
    path: str
    name: str
    memory_limit: int = 0
    max_batch: int = 16
    calibrate_side: int = 0
    prefix_cache_bytes: int = 0
    queue_size: int = 64


class _Gone:
    """Put on a request's queue when the worker died under it."""


_GONE = _Gone()


class EngineClient:
    """One supervised engine worker process."""

    def __init__(self, spec: WorkerSpec, on_ready=None, on_failed=None) -> None:
        self.spec = spec
        self._on_ready = on_ready  # called with this client when a worker reports Ready
        self._on_failed = on_failed  # called with this client when the model cannot be loaded at all
        self.state = "stopped"  # starting | ready | restarting | failed | stopped
        self.reason = "not started"
        self.ready: messages.Ready | None = None
        self.process: asyncio.subprocess.Process | None = None
        self.restarts = 0
        self.inflight = 0
        self._writer: asyncio.StreamWriter | None = None
        self._queues: dict[str, asyncio.Queue] = {}
        self._ids = itertools.count()
        self._supervisor: asyncio.Task | None = None
        self._stopping = False

    @property
    def kind(self) -> str:
        return self.spec.engine

    @property
    def name(self) -> str:
        return self.spec.name

    @property
    def is_ready(self) -> bool:
        return self.state == "ready"

    # -- lifecycle -----------------------------------------------------------

    def start(self) -> None:
        """Start the worker and supervise it in the background; ``state`` says how it goes."""
        self._supervisor = asyncio.create_task(self._supervise(), name=f"supervise-{self.kind}")

    async def stop(self, drain_timeout: float = 30.0) -> None:
        """Ask the worker to finish running work and exit; kill it after ``drain_timeout``."""
        self._stopping = True
        if self._writer is not None and self.process is not None and self.process.returncode is None:
            try:
                self._send(messages.Shutdown())
                await asyncio.wait_for(self.process.wait(), drain_timeout)
            except (TimeoutError, ConnectionError, RuntimeError):
                self.process.kill()
        if self._supervisor is not None:
            self._supervisor.cancel()
            await asyncio.gather(self._supervisor, return_exceptions=True)
        self.state = "stopped"

    async def _supervise(self) -> None:
        backoff = 1.0
        while not self._stopping:
            started = time.monotonic()
            loaded = await self._run_once()
            if self._stopping:
                return
            if not loaded and self.restarts == 0:
                self.state = "failed"
                log.error("worker failed to load", engine=self.kind, model=self.name, reason=self.reason)
                if self._on_failed is not None:
                    self._on_failed(self)
                return
            if time.monotonic() - started > 60:
                backoff = 1.0  # it ran for a while: a fresh crash, not a crash loop
            self.state = "restarting"
            self.restarts += 1
            log.warning("worker restarting", engine=self.kind, in_s=backoff, reason=self.reason)
            await asyncio.sleep(backoff)
            backoff = min(backoff * 2, 30.0)

    async def _run_once(self) -> bool:
        """Run one worker process until it exits. Returns whether it got as far as ready."""
        self.state = "starting" if self.restarts == 0 else "restarting"
        if self.restarts == 0:
            self.reason = "loading the model"
        parent, child = socket.socketpair()
        spec = self.spec
        args = [
            sys.executable, "-m", "mmserve.engines.worker",
            "--engine", spec.engine, "--model", spec.path, "--name", spec.name,
            "--fd", str(child.fileno()), "--memory-limit", str(spec.memory_limit),
            "--max-batch", str(spec.max_batch), "--prefix-cache-bytes", str(spec.prefix_cache_bytes),
            # A restarted worker keeps the first calibration: the model did not change.
            "--calibrate-side", str(spec.calibrate_side if self.restarts == 0 else 0),
        ]  # fmt: skip
        try:
            self.process = await asyncio.create_subprocess_exec(
                *args, pass_fds=(child.fileno(),), stdin=asyncio.subprocess.DEVNULL, stdout=sys.stderr
            )
        finally:
            child.close()
        reader, self._writer = await asyncio.open_unix_connection(sock=parent)
        got_ready = False
        try:
            while True:
                header = await reader.readexactly(messages.HEADER.size)
                body = await reader.readexactly(messages.read_frame_size(header))
                message = messages.decode(body)
                if isinstance(message, messages.Ready):
                    self.ready, got_ready = message, True
                    if self._on_ready is not None:
                        self._on_ready(self)
                    self.state, self.reason = "ready", "ready"
                    log.info("worker ready", engine=self.kind, pid=message.pid, model=message.model)
                elif isinstance(message, messages.LoadFailed):
                    self.reason = message.message
                else:
                    queue = self._queues.get(getattr(message, "id", ""))
                    if queue is not None:
                        queue.put_nowait(message)
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            self._writer.close()
            self._writer = None
            code = await self.process.wait()
            if not self._stopping:
                self.reason = self.reason if not got_ready else f"worker exited with code {code}"
                if got_ready:
                    log.error("worker died", engine=self.kind, pid=self.process.pid, returncode=code)
            self.state = "restarting"
            for queue in self._queues.values():
                queue.put_nowait(_GONE)
        return got_ready

    # -- requests ------------------------------------------------------------

    def _send(self, message: messages.Message) -> None:
        if self._writer is None or self.state != "ready":
            raise EngineUnavailableError(f"the {self.kind} engine is not running ({self.state})", retry_after=2)
        self._writer.write(messages.encode(message))

    def _new_id(self) -> str:
        return f"{self.kind}-{next(self._ids)}"

    async def _call(self, message_for, timeout: float = 30.0):
        request_id = self._new_id()
        queue: asyncio.Queue = asyncio.Queue()
        self._queues[request_id] = queue
        try:
            self._send(message_for(request_id))
            reply = await asyncio.wait_for(queue.get(), timeout)
        finally:
            self._queues.pop(request_id, None)
        if reply is _GONE:
            raise EngineUnavailableError(f"the {self.kind} engine stopped while answering", retry_after=2)
        return reply

    async def count(self, chat: list[dict], n_images: int) -> int:
        reply = await self._call(lambda rid: messages.Count(rid, chat, n_images))
        if isinstance(reply, messages.Failed):
            raise InvalidRequestError(
                f"the messages cannot be rendered for this model: {reply.message}", param="messages"
            )
        return reply.text_tokens

    async def stats(self) -> messages.Stats | None:
        try:
            return await self._call(lambda rid: messages.StatsRequest(rid), timeout=5.0)
        except (MMServeError, TimeoutError):
            return None

    def admit(self) -> None:
        """Take a place in this engine's bounded queue, or refuse at once (503)."""
        capacity = self.spec.max_batch + self.spec.queue_size
        if self.inflight >= capacity:
            raise OverloadedError(
                f"the {self.kind} engine has {self.inflight} requests in flight; retry shortly", retry_after=1
            )
        self.inflight += 1

    def leave(self) -> None:
        self.inflight -= 1

    async def generate(self, build) -> AsyncIterator[messages.Delta | messages.Finished]:
        """Send ``build(request_id)`` (a ``Generate``) and yield its Deltas, then its Finished.

        Closing the iterator early (client gone, timeout) cancels the request in the worker.
        """
        request_id = self._new_id()
        queue: asyncio.Queue = asyncio.Queue()
        self._queues[request_id] = queue
        done = False
        try:
            self._send(build(request_id))
            while True:
                event = await queue.get()
                if event is _GONE:
                    done = True
                    raise EngineUnavailableError(f"the {self.kind} engine stopped during this request", retry_after=2)
                if isinstance(event, messages.Failed):
                    done = True
                    raise _failed_error(event)
                yield event
                if isinstance(event, messages.Finished):
                    done = True
                    return
        finally:
            self._queues.pop(request_id, None)
            if not done and self._writer is not None and self.state == "ready":
                self._writer.write(messages.encode(messages.Cancel(request_id)))

    def describe(self) -> dict:
        return {
            "engine": self.kind,
            "model": self.name,
            "pid": self.process.pid if self.process and self.process.returncode is None else None,
            "state": self.state,
            "reason": self.reason,
            "restarts": self.restarts,
            "inflight": self.inflight,
        }


def _failed_error(event: messages.Failed) -> MMServeError:
    if 400 <= event.status < 500:
        return InvalidRequestError(event.message, code=event.code)
    return InternalError(f"the engine failed on this request: {event.message}")
