"""GET /v1/models: the alias ``auto`` and each served model with its context length."""

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
            data.append(_model(engine.name, engine=kind, context_length=context, ready=engine.is_ready))
        return {"object": "list", "data": data}
