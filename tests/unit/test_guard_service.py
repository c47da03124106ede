"""The server's memory guard: the resized-image cache."""

from __future__ import annotations

import time

from PIL import Image

from mmserve.config import Settings
from mmserve.guard import MemoryGuard
from mmserve.media import DecodedImage


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
