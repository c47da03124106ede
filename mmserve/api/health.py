"""Liveness, readiness and operator status."""

from __future__ import annotations

import asyncio

from litestar import Controller, Response, get

from ..metrics import Metrics
from ..serving import ChatService

__all__ = ["AdminController", "HealthController", "MetricsController"]


class HealthController(Controller):
    tags = ["health"]

    @get("/health", summary="The HTTP process is alive")
    async def health(self) -> dict:
        return {"status": "ok"}

    @get("/ready", summary="200 only when every configured engine has a worker loaded and alive")
    async def ready(self, chat_service: ChatService) -> Response:
        engines = {kind: engine.describe() for kind, engine in chat_service.engines.items()}
        for kind, doing in chat_service.loading.items():  # models still being found or downloaded
            engines[kind] = {"engine": kind, "state": "finding", "reason": doing}
        not_ready = [
            f"{kind} engine is {info['state']}: {info['reason']}"
            for kind, info in engines.items()
            if info["state"] != "ready"
        ]
        if not engines:
            not_ready.append("no engine is running")
        body = {"status": "ready" if not not_ready else "not_ready", "engines": engines}
        if not_ready:
            body["reason"] = "; ".join(not_ready)
        return Response(body, status_code=503 if not_ready else 200)


class AdminController(Controller):
    path = "/admin"
    tags = ["admin"]

    @get("/status", summary="Memory guard and worker memory, as JSON")
    async def status(self, chat_service: ChatService) -> dict:
        engines = [worker for pool in chat_service.engines.values() for worker in pool.workers]
        stats = await asyncio.gather(*(engine.stats() for engine in engines))
        workers = []
        for engine, stat in zip(engines, stats):
            info = engine.describe()
            info["memory"] = {
                "budget_bytes": stat.memory_limit_bytes if stat else None,
                "active_bytes": stat.active_bytes if stat else None,
                "peak_bytes": stat.peak_bytes if stat else None,
                "cache_bytes": stat.cache_bytes if stat else None,
            }
            info["running"] = stat.running if stat else 0
            workers.append(info)
        return {"guard": chat_service.guard.status(), "workers": workers}


class MetricsController(Controller):
    tags = ["admin"]

    @get("/metrics", summary="Prometheus metrics (text exposition format)", media_type="text/plain; version=0.0.4")
    async def metrics(self, chat_service: ChatService, metrics: Metrics) -> Response:
        return Response(await metrics.render(chat_service), media_type="text/plain; version=0.0.4; charset=utf-8")
