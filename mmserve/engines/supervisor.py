"""The HTTP-process side of an engine: starts its workers, routes messages, restarts them.

``EngineClient`` owns one worker process. Requests talk to it through ``count``,
``generate`` and ``stats``; a worker that dies (crash, OOM kill, SIGKILL) is noticed
when its socket closes: every request it held gets ``EngineUnavailableError`` and
the worker is started again with exponential backoff. ``EnginePool`` holds the
workers of one engine (copies of one model) and picks one for each request. This
module never imports mlx.
"""

from __future__ import annotations

import asyncio
import dataclasses
import itertools
import os
import socket
import sys
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass

import structlog

from ..errors import EngineUnavailableError, InternalError, InvalidRequestError, MMServeError, OverloadedError
from ..logs import WORKER_LOG_FORMAT, log_format
from . import messages

__all__ = ["EngineClient", "EnginePool", "WorkerSpec", "worker_environment"]

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
        process = self.process
        if process is not None and process.returncode is None:
            try:
                self._send(messages.Shutdown())  # refused while it is still loading: nothing to drain
                await asyncio.wait_for(process.wait(), drain_timeout)
            except (TimeoutError, ConnectionError, RuntimeError, EngineUnavailableError):
                process.kill()
                await process.wait()
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
            self.reason = f"loading the model from {self.spec.path}"
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
                *args,
                pass_fds=(child.fileno(),),
                stdin=asyncio.subprocess.DEVNULL,
                stdout=sys.stderr,
                env={**worker_environment(spec.engine, os.environ), WORKER_LOG_FORMAT: log_format()},
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
                    self.reason = " ".join(message.message.split())  # one line
                    if message.traceback:
                        log.debug("worker load traceback", engine=self.kind, traceback=message.traceback)
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
            async with asyncio.timeout(timeout):  # not wait_for, which can drop a cancellation (serving.events)
                reply = await queue.get()
        except TimeoutError:
            raise EngineUnavailableError(
                f"the {self.kind} engine did not answer within {timeout:g} s; retry shortly", retry_after=2
            ) from None
        finally:
            self._queues.pop(request_id, None)
        if reply is _GONE:
            raise EngineUnavailableError(f"the {self.kind} engine stopped while answering", retry_after=2)
        return reply

    async def ask(self, message_for, param: str | None = None):
        """Send ``message_for(request_id)`` (a Count, Tokenize or Detokenize) and return the
        worker's answer; what its template or tokenizer refuses is the client's 400."""
        reply = await self._call(message_for)
        if isinstance(reply, messages.Failed):
            raise InvalidRequestError(f"the {self.kind} model cannot take this request: {reply.message}", param=param)
        return reply

    async def stats(self) -> messages.Stats | None:
        try:
            return await self._call(lambda rid: messages.StatsRequest(rid), timeout=5.0)
        except MMServeError:
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
            **_model_facts(self.ready),
        }


class EnginePool:
    """The workers of one engine: copies of one model, each a supervised process of its own.

    The pool starts with one worker; ``scale_to`` adds copies (the app asks the memory
    guard how many fit once every engine has loaded). On mlx's CPU backend a process runs
    one op at a time on one core, and threads within it share Python's interpreter lock,
    so a copy per core decodes that many batches side by side.

    A request goes to the ready worker with the fewest requests in flight; among equals,
    to the one its ``affinity`` picks (the app derives it from the request's first image,
    or else its first message), so a page asked again, or a conversation's later turn,
    finds its features and prefix in that worker's caches.
    """

    def __init__(self, spec: WorkerSpec, on_ready=None, on_failed=None) -> None:
        self.spec = spec
        self._on_ready = on_ready  # called with this pool whenever one of its workers reports Ready
        self._on_failed = on_failed  # called with this pool when the model cannot be loaded at all
        self.workers: list[EngineClient] = []

    @property
    def kind(self) -> str:
        return self.spec.engine

    @property
    def name(self) -> str:
        return self.spec.name

    @property
    def replicas(self) -> int:
        """Workers started, loading ones included: each holds a copy of the weights."""
        return len(self.workers)

    @property
    def is_ready(self) -> bool:
        return any(worker.is_ready for worker in self.workers)

    @property
    def ready(self) -> messages.Ready | None:
        """The Ready message of a worker that has loaded the model, if any has."""
        return next((worker.ready for worker in self.workers if worker.ready is not None), None)

    @property
    def state(self) -> str:
        return "ready" if self.is_ready else self.workers[0].state

    @property
    def reason(self) -> str:
        return "ready" if self.is_ready else self.workers[0].reason

    @property
    def inflight(self) -> int:
        return sum(worker.inflight for worker in self.workers)

    @property
    def restarts(self) -> int:
        return sum(worker.restarts for worker in self.workers)

    def start(self) -> None:
        """Start the first worker; ``state`` says how it goes."""
        self._add()

    def scale_to(self, replicas: int) -> None:
        """Start workers until ``replicas`` run (it never stops any)."""
        while len(self.workers) < replicas:
            self._add()
        log.info("engine replicas", engine=self.kind, replicas=len(self.workers))

    def _add(self) -> None:
        spec = self.spec if not self.workers else dataclasses.replace(self.spec, calibrate_side=0)  # calibrated once
        worker = EngineClient(spec, on_ready=self._worker_ready, on_failed=self._worker_failed)
        self.workers.append(worker)
        worker.start()

    def _worker_ready(self, worker: EngineClient) -> None:
        if self._on_ready is not None:
            self._on_ready(self)

    def _worker_failed(self, worker: EngineClient) -> None:
        if worker is self.workers[0]:
            if self._on_failed is not None:
                self._on_failed(self)
            return
        # A further copy that cannot load (memory taken meanwhile, say): serve with the others.
        log.warning("replica failed to load", engine=self.kind, reason=worker.reason)
        self.workers.remove(worker)
        if self._on_ready is not None:
            self._on_ready(self)  # so that the guard counts one copy fewer

    async def stop(self, drain_timeout: float = 30.0) -> None:
        await asyncio.gather(*(worker.stop(drain_timeout) for worker in self.workers))

    def admit(self, affinity: int = 0) -> EngineClient:
        """The worker that takes a request, with its place in that worker's queue taken;
        refuses at once (503) when no worker is ready or the chosen one is full."""
        ready = [worker for worker in self.workers if worker.is_ready]
        if not ready:
            raise EngineUnavailableError(f"the {self.kind} engine is not ready ({self.state})", retry_after=2)
        n = len(ready)
        worker = ready[min(range(n), key=lambda i: (ready[i].inflight, (i - affinity) % n))]
        worker.admit()
        return worker

    def describe(self) -> dict:
        return {
            "engine": self.kind,
            "model": self.name,
            "state": self.state,
            "reason": self.reason,
            "replicas": self.replicas,
            "restarts": self.restarts,
            "inflight": self.inflight,
        }


def _model_facts(ready: messages.Ready | None) -> dict:
    """What a worker found about its model at load, for /admin/status: how it batches
    (``solo``: mlx-lm cannot batch it, so requests decode one at a time, and why), its
    context length and the KV layout the guard plans with."""
    if ready is None:
        return {}
    return {
        "batching": "continuous" if ready.batch_fault is None else "solo",
        "batch_fault": ready.batch_fault,
        "context_length": ready.context_length,
        "kv_layout": ready.kv_layout,
    }


def worker_environment(engine: str, environ) -> dict[str, str]:
    """A worker's environment: the server's, with these defaults unless set there.

    - ``MLX_ENABLE_CACHE_THRASHING_CHECK=0``: mlx's CUDA backend keeps CUDA graphs, cuDNN
      attention plans and convolution plans in bounded caches, each keyed by shape or
      topology. The check counts a cache's misses over the whole life of the process and,
      once they pass twice its capacity, raises on every further miss. A server that lives
      for days sees ever more prompt lengths, batch compositions and image sizes: the check
      would then fail each request that brings a new shape. Without it the caches still
      evict; a miss costs a rebuild, not the request.
    - ``MLX_ENABLE_TF32=0`` in a text worker: float32 matmuls in full precision. mlx runs
      them as TF32 by default on CUDA and on M5-class Macs, where a batch of rows (GEMM)
      rounds differently from a row alone (GEMV): a float32 model's greedy answers would
      then depend on what else is batched. A vision worker keeps TF32 for its float32
      vision tower on CUDA, which encodes one image at a time.
    - ``MALLOC_ARENA_MAX=1`` in a vision worker (glibc; other C libraries ignore it): one
      malloc arena for all its threads. Images are prepared on a thread of their own and
      run on the loop's; with an arena per thread the worker's RSS grew by some 20 KiB an
      image on Linux while mlx's memory stayed level (docs/operations.md, "Long runs")."""
    env = dict(environ)
    env.setdefault("MLX_ENABLE_CACHE_THRASHING_CHECK", "0")
    if engine == "text":
        env.setdefault("MLX_ENABLE_TF32", "0")
    else:
        env.setdefault("MALLOC_ARENA_MAX", "1")
    return env


def _failed_error(event: messages.Failed) -> MMServeError:
    if 400 <= event.status < 500:
        return InvalidRequestError(event.message, code=event.code)
    return InternalError(f"the engine failed on this request: {event.message}")
