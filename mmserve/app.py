"""The Litestar application factory.

``create_app(settings)`` builds the app; it never reads the environment. Engines
(worker processes) start in the lifespan unless the caller passes its own.
"""

from __future__ import annotations

import asyncio
import hmac
import os
import signal
import threading
import time
import uuid
from contextlib import asynccontextmanager
from pathlib import Path

import msgspec
import structlog
from litestar import Litestar, Request, Response
from litestar.config.cors import CORSConfig
from litestar.di import Provide
from litestar.exceptions import HTTPException

from . import __version__
from .api.chat import ChatController
from .api.completions import CompletionsController
from .api.health import AdminController, HealthController, MetricsController
from .api.models import ModelsController
from .api.responses import ResponsesController, ResponseStore
from .api.tokenize import TokenizeController
from .banner import render_banner, startup_report
from .config import Settings
from .engines.supervisor import EnginePool, WorkerSpec
from .errors import AuthenticationError, InternalError, MMServeError, PayloadTooLargeError
from .guard import MemoryGuard
from .media import MediaLoader, MediaPolicy
from .metrics import Metrics
from .models import ModelResolutionError, resolve_model
from .openapi import asset_routers, complete_document, openapi_config
from .serving import ChatService

__all__ = ["create_app"]

log = structlog.get_logger("mmserve")

_HTTP_ERRORS = {
    404: ("not_found_error", "not_found"),
    405: ("invalid_request_error", "method_not_allowed"),
    413: ("invalid_request_error", "request_too_large"),
}
_OPEN_PATHS = ("/health",)
_OPEN_PREFIXES = ("/docs",)  # the API's description and its viewers' scripts: a browser sends no key
_PROBE_PATHS = ("/health", "/ready", "/metrics")


def _http_error(request: Request, exc: HTTPException) -> Response:
    if exc.status_code == 413:
        err = PayloadTooLargeError("the request body is larger than this server accepts")
        return Response(err.envelope(), status_code=413)
    kind, code = _HTTP_ERRORS.get(exc.status_code, ("invalid_request_error", "invalid_request"))
    if exc.status_code >= 500:
        kind, code = "server_error", "internal_error"
    message = exc.detail if exc.status_code != 404 else f"no route {request.method} {request.url.path}"
    body = {"error": {"message": message, "type": kind, "param": None, "code": code}}
    return Response(body, status_code=exc.status_code, headers=exc.headers)


def _mmserve_error(request: Request, exc: MMServeError) -> Response:
    request.scope.setdefault("state", {}).setdefault("log", {})["error"] = exc.code
    return Response(exc.envelope(), status_code=exc.status_code, headers=exc.headers())


def _unexpected_error(request: Request, exc: Exception) -> Response:
    log.exception("unhandled error", path=request.url.path)
    return Response(InternalError("the server failed on this request").envelope(), status_code=500)


async def _send_json(send, status: int, body: dict) -> None:
    payload = msgspec.json.encode(body)
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(payload)).encode())]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": payload})


def _request_middleware(api_key: str | None, metrics: Metrics):
    """Request id, API key check and the one canonical log line per request (pure ASGI)."""

    def middleware(app):
        async def handle(scope, receive, send):
            if scope["type"] != "http":
                await app(scope, receive, send)
                return
            incoming = dict(scope["headers"]).get(b"x-request-id", b"").decode("latin-1")
            request_id = incoming if 0 < len(incoming) <= 128 and incoming.isprintable() else uuid.uuid4().hex
            fields = {"request_id": request_id, "method": scope["method"], "path": scope["path"]}
            scope.setdefault("state", {})["log"] = fields
            started = time.monotonic()
            logged = False

            def log_request() -> None:
                nonlocal logged
                logged = True
                fields["total_ms"] = round((time.monotonic() - started) * 1000, 1)
                # Probes and scrapes come every few seconds: shown at debug only.
                (log.debug if scope["path"] in _PROBE_PATHS else log.info)("request", **fields)
                metrics.observe_request(fields)

            async def send_with_id(message):
                if message["type"] == "http.response.start":
                    fields["status"] = message["status"]
                    message["headers"] = [*message.get("headers", []), (b"x-request-id", request_id.encode())]
                elif message["type"] == "http.response.body" and not message.get("more_body", False):
                    log_request()
                await send(message)

            if (
                api_key is not None
                and scope["path"] not in _OPEN_PATHS
                and not scope["path"].startswith(_OPEN_PREFIXES)
            ):
                headers = dict(scope["headers"])
                given = headers.get(b"authorization", b"").decode("latin-1").removeprefix("Bearer ").strip()
                if not hmac.compare_digest(given.encode(), api_key.encode()):
                    err = AuthenticationError("a valid API key is required (Authorization: Bearer <key>)")
                    await _send_json(send_with_id, 401, err.envelope())
                    return
            try:
                await app(scope, receive, send_with_id)
            finally:
                for end in scope["state"].get("on_end", ()):  # what a handler holds until the request ends
                    end()
                if not logged:  # the client left before the response ended, as a stream it stopped reading
                    fields["status"] = 499  # nginx's "client closed request"
                    fields.setdefault("error", "client_disconnected")
                    log_request()

        return handle

    return middleware


def _routes_for(settings: Settings) -> list[tuple[str, str]]:
    models = [("text", settings.text_model), ("vision", settings.vision_model)]
    return [(kind, ref) for kind, ref in models if ref]


def _wanted_replicas(settings: Settings, kind: str, backend: str) -> int:
    """Workers the engine should run, before the memory guard has its say."""
    wanted = settings.text_replicas if kind == "text" else settings.vision_replicas
    if wanted:
        return wanted
    # mlx's CPU backend runs each op on one core: a copy of the model per core, up to four.
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    return min(cores, 4) if backend == "cpu" else 1


async def _in_thread(function, *args, **kwargs):
    """Run ``function`` on a daemon thread: a model download still running at shutdown must
    not hold the process (``asyncio.to_thread``'s pool is joined at exit)."""
    loop = asyncio.get_running_loop()
    future = loop.create_future()

    def settle(setter, value) -> None:
        if not future.done():
            setter(value)

    def run() -> None:
        try:
            outcome = (future.set_result, function(*args, **kwargs))
        except BaseException as exc:
            outcome = (future.set_exception, exc)
        try:
            loop.call_soon_threadsafe(settle, *outcome)
        except RuntimeError:
            pass  # the server stopped meanwhile

    threading.Thread(target=run, name="model-lookup", daemon=True).start()
    return await future


def create_app(settings: Settings) -> Litestar:
    """Build the app; one worker per configured model starts in the lifespan."""
    guard = MemoryGuard(settings)
    media = MediaLoader(
        MediaPolicy(
            remote_enabled=not settings.no_remote_images,
            allow_hosts=tuple(settings.allow_media_hosts),
            max_bytes=settings.max_image_bytes,
            timeout_s=settings.fetch_timeout_s,
            media_root=Path(settings.media_root) if settings.media_root else None,
            max_pixels=settings.max_image_pixels,
            max_images=settings.max_images,
        ),
        cache_items=settings.image_cache_items,
    )
    service = ChatService({}, guard, media, settings.request_timeout_s)
    metrics = Metrics()
    response_store = ResponseStore()

    def fail(message: str, hint: str | None, exit_code: int) -> None:
        """Something the server cannot run without: record why and ask the server to stop."""
        if app.state.failed is None:
            app.state.failed, app.state.failed_hint, app.state.exit_code = message, hint, exit_code
            app.state.request_shutdown()

    def stop_serving(engine: EnginePool) -> None:
        """A model that cannot be loaded at all ends the server (it does not stay up degraded)."""
        fail(
            f"the {engine.kind} model {engine.spec.path} could not be loaded: {engine.reason}",
            "run with --log-level debug for the worker's traceback",
            1,  # cli.EXIT_FAILED
        )

    scaled = False
    started = time.monotonic()

    def attach(engine: EnginePool) -> None:
        """A worker loaded its model. Once every engine has one loaded, the guard knows
        what each model holds and says how many copies of each fit."""
        nonlocal scaled
        guard.attach(engine)
        if scaled or service.loading or any(pool.ready is None for pool in service.engines.values()):
            return
        scaled = True
        for kind, pool in service.engines.items():
            wanted = _wanted_replicas(settings, kind, pool.ready.backend)
            if wanted > 1:
                pool.scale_to(guard.replicas_for(kind, wanted))
                guard.attach(pool)  # count the copies now loading
        report = startup_report(__version__, app.state.url, settings, service, guard)
        log.info("started", banner_text=render_banner(report), **report)
        log.info("ready", took_s=round(time.monotonic() - started, 2))

    async def bring_up() -> None:
        """Find each model (downloading it if allowed), then start its workers; the port is
        already open meanwhile, and /ready says what is loading."""
        try:
            found = []
            for kind, ref in _routes_for(settings):
                service.loading[kind] = f"finding the model {ref} (downloading it if it is not in the cache)"
                found.append((kind, *await _in_thread(resolve_model, ref, no_download=settings.no_download)))
        except ModelResolutionError as exc:
            log.debug("model lookup failed", exc_info=True)
            fail(str(exc), exc.hint, 3)  # cli.EXIT_NO_MODEL
            return
        except Exception as exc:
            log.debug("model lookup failed", exc_info=True)
            fail(f"finding the models failed: {type(exc).__name__}: {exc}", None, 1)
            return
        for kind, path, name in found:
            spec = WorkerSpec(
                engine=kind,
                path=str(path),
                name=name,
                memory_limit=guard.budget_bytes,
                max_batch=settings.max_batch_size,
                prefix_cache_bytes=guard.prefix_cache_bytes,
                calibrate_side=guard.max_image_side if kind == "vision" and settings.calibrate else 0,
                queue_size=settings.queue_size,
            )
            service.engines[kind] = EnginePool(spec, on_ready=attach, on_failed=stop_serving)
        service.loading.clear()
        # Workers load in the background: /health answers at once, /ready once they are loaded.
        for engine in service.engines.values():
            engine.start()

    @asynccontextmanager
    async def lifespan(app: Litestar):
        nonlocal started
        started = time.monotonic()
        for kind, ref in _routes_for(settings):
            service.loading[kind] = f"finding the model {ref}"
        task = asyncio.create_task(bring_up(), name="bring-up")
        log.info(
            "starting",
            version=__version__,
            url=app.state.url,
            models={kind: ref for kind, ref in _routes_for(settings)},
            tier=guard.tier.name,
        )
        try:
            yield
        finally:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
            await asyncio.gather(*(engine.stop() for engine in service.engines.values()), return_exceptions=True)
            await media.aclose()
            log.info("stopped", after_s=round(time.monotonic() - started, 1), reason=app.state.failed or "shutdown")

    cors = CORSConfig(allow_origins=list(settings.cors_origins)) if settings.cors_origins else None
    app = Litestar(
        route_handlers=[
            ChatController,
            CompletionsController,
            ResponsesController,
            TokenizeController,
            ModelsController,
            HealthController,
            AdminController,
            MetricsController,
            *asset_routers(),
        ],
        dependencies={
            "chat_service": Provide(lambda: service, use_cache=True, sync_to_thread=False),
            "metrics": Provide(lambda: metrics, use_cache=True, sync_to_thread=False),
            "response_store": Provide(lambda: response_store, use_cache=True, sync_to_thread=False),
        },
        lifespan=[lifespan],
        exception_handlers={MMServeError: _mmserve_error, HTTPException: _http_error, Exception: _unexpected_error},
        middleware=[_request_middleware(settings.api_key, metrics)],
        cors_config=cors,
        request_max_body_size=settings.max_body_bytes,
        openapi_config=openapi_config(__version__),
        logging_config=None,
        debug=False,
    )
    complete_document(app)
    app.state.failed = None  # why the server stopped itself, the hint for the operator and the exit code
    app.state.failed_hint = None
    app.state.exit_code = 0
    app.state.url = None  # where the server listens; the CLI sets it once it has bound the socket
    # The server running the app replaces this with its own graceful stop.
    app.state.request_shutdown = lambda: os.kill(os.getpid(), signal.SIGTERM)
    return app
