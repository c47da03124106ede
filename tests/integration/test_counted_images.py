"""Without a geometry it can trust, the guard plans with the worker processor's own counts."""

from __future__ import annotations

import asyncio
import dataclasses
from types import SimpleNamespace

from PIL import Image

from mmserve.config import Settings
from mmserve.engines import messages
from mmserve.guard import MemoryGuard
from mmserve.media import DecodedImage


def _ready(engine, check: dict) -> messages.Ready:
    return messages.Ready(
        engine="vision",
        model="vision",
        pid=0,
        backend="cpu",
        device_info={},
        context_length=engine.context_length,
        weights_bytes=engine.weights_bytes,
        kv_bytes_per_token=engine.kv_bytes_per_token,
        vision={"checkpoint": dataclasses.asdict(engine.checkpoint), "check": check},
    )


def test_the_processors_counts_plan_the_prompt_the_model_runs(models):
    """A geometry that failed its check is dropped; the counted prompt equals the prompt the engine runs."""
    from mmserve.engines.vision import VisionEngine

    engine = VisionEngine(str(models / "vision"))
    engine.geometry = None  # as after a failed check
    check = engine.check_geometry(768)
    assert check["ok"] is False
    guard = MemoryGuard(Settings(max_image_side=768))
    pool = SimpleNamespace(kind="vision", name="vision", replicas=1, ready=_ready(engine, check))
    guard.attach(pool)
    assert guard.status()["image_geometry"]["ok"] is False

    image = Image.new("RGB", (2000, 1500), (30, 90, 200))
    decoded = [DecodedImage(image=image, width=2000, height=1500, sha256="c" * 64, format="PNG")]
    chat = [{"role": "user", "content": [{"type": "image"}, {"type": "text", "text": "Read it."}]}]
    sizes = guard.sizes_to_count("vision", decoded)
    assert sizes == [(768, 576)]
    job = SimpleNamespace(
        images=[SimpleNamespace(detail="auto", param="messages[0].content[0]")],
        max_tokens=4,
        n=1,
        route=SimpleNamespace(kind="vision"),
    )
    planned = asyncio.run(guard.plan(pool, job, decoded, engine.count(chat, 1), engine.image_tokens(sizes)))
    assert planned.report["images"][0]["resized"] == [768, 576]

    request = messages.Generate(id="counted", messages=chat, images=planned.images, max_tokens=planned.max_tokens)
    admitted = engine.insert(engine.prepare(request))
    assert admitted.prompt_tokens == planned.report["prompt_tokens_planned"]
