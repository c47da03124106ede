"""GET /v1/models: the alias ``auto`` and each served model with its context length.

The vision model's entry also carries ``mmserve``: the image sides the memory guard
starts at and allows, the intake limits, the batch size and the worker count, for
clients that size their images and concurrency to the server.
"""

from __future__ import annotations

import time

from litestar import Controller, get

from ..normalize import AUTO
from ..serving import ChatService

__all__ = ["ModelsController"]

_STARTED = int(time.time())


def _model(name: str, **extra) -> dict:
    return {"id": name, "object": "model", "created": _STARTED, "owned_by": "mmserve", **extra}


class ModelsController(Controller):
    path = "/v1/models"
    tags = ["models"]

    @get(summary="List the served models")
    async def list_models(self, chat_service: ChatService) -> dict:
        data = [
            _model(AUTO, description="routes to the vision model when a request has images, else to the text model")
        ]
        for kind, engine in chat_service.engines.items():
            context = engine.ready.context_length if engine.ready else None
            extra = {}
            if kind == "vision":
                # What a batch client sizes its pages and its concurrency by.
                extra["mmserve"] = {**chat_service.guard.limits(), "replicas": len(engine.workers) or 1}
            data.append(_model(engine.name, engine=kind, context_length=context, ready=engine.is_ready, **extra))
        return {"object": "list", "data": data}
