"""The server's memory guard: the resized-image cache, device readings, the reported peak."""

from __future__ import annotations

import asyncio
import time

import pytest
from PIL import Image

from mmserve.config import Settings
from mmserve.engines import messages
from mmserve.guard import MemoryGuard
from mmserve.media import DecodedImage
from mmserve.normalize import Route, normalize
from mmserve.protocol.openai import decode_chat_request

GB = 10**9


def page(sha: str = "a" * 64) -> DecodedImage:
    return DecodedImage(image=Image.new("RGB", (1000, 800), "white"), width=1000, height=800, sha256=sha, format="PNG")


def test_same_page_is_resized_once():
    """Asking for the same content at the same size returns the cached resize."""
    guard = MemoryGuard(Settings())
    first = guard._resized_image(page(), (280, 224))
    assert (first.width, first.height, len(first.rgb)) == (280, 224, 280 * 224 * 3)
    assert guard._resized_image(page(), (280, 224)) is first


def test_other_content_or_size_is_not_shared():
    """A different image or a different size is resized on its own."""
    guard = MemoryGuard(Settings())
    first = guard._resized_image(page(), (280, 224))
    assert guard._resized_image(page("b" * 64), (280, 224)) is not first
    assert guard._resized_image(page(), (140, 112)) is not first


def test_cached_resizes_expire():
    """Entries older than image_cache_ttl_s are resized again."""
    guard = MemoryGuard(Settings(image_cache_ttl_s=0.05))
    first = guard._resized_image(page(), (280, 224))
    time.sleep(0.1)
    assert guard._resized_image(page(), (280, 224)) is not first


class Engine:
    """What the guard reads of an engine pool: its kind, name, copies and Ready message."""

    def __init__(self, backend: str, device_info: dict, kind: str = "text") -> None:
        self.kind, self.name, self.replicas = kind, "tiny", 1
        self.ready = messages.Ready(
            engine=kind,
            model="tiny",
            pid=1,
            backend=backend,
            device_info=device_info,
            context_length=4096,
            weights_bytes=1 << 30,
            kv_bytes_per_token=1 << 16,
        )


CARD = {"total_memory": 80 * GB, "free_memory": 79 * GB}


@pytest.mark.parametrize(
    ("budget", "expected"), [("50%", 40 * GB), ("24GB", 24 * GB), ("90%", 40 * GB), (None, 40 * GB)]
)
def test_a_budget_on_a_device_is_of_the_device_not_the_host(budget, expected):
    """With --memory-budget given or not, a CUDA worker's reading replaces the host's: the
    status names the card, and a fractional budget is a share of the card (never over half
    of it, the workers' mlx limit on CUDA)."""
    guard = MemoryGuard(Settings(memory_budget=budget))
    guard.attach(Engine("cuda", CARD))
    status = guard.status()
    assert (status["backend"], status["total_bytes"]) == ("cuda", 80 * GB)
    assert status["budget_bytes"] == expected


def test_the_peak_reported_is_the_one_a_request_was_admitted_under():
    """A request that waited for memory reports what was held when it ran, not when it was planned."""
    guard = MemoryGuard(Settings(memory_budget="4GiB", memory_wait_s=10))
    guard.attach(Engine("cpu", {}))
    job = normalize(
        decode_chat_request(b'{"messages": [{"role": "user", "content": "hi"}]}'), [Route("text", "tiny", "")]
    )
    capacity = guard.ledger.capacity_bytes

    async def scenario():
        alone = await guard.plan(guard_engine, job, [], text_tokens=10)
        alone.release()
        others = await guard.ledger.reserve(capacity - 1000, timeout_s=None)  # the request must wait
        waiting = asyncio.create_task(guard.plan(guard_engine, job, [], text_tokens=10))
        await asyncio.sleep(0.05)
        assert not waiting.done()
        others.release()
        admitted = await waiting
        admitted.release()
        return alone.report["memory"], admitted.report["memory"]

    guard_engine = Engine("cpu", {})
    alone, admitted = asyncio.run(scenario())
    assert admitted == alone  # nothing else was held when it ran
    assert admitted["planned_peak_bytes"] <= admitted["budget_bytes"]
