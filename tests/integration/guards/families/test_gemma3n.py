"""Gemma 3n's view (guards.families.gemma3n) against mlx-vlm's real processor on a tiny checkpoint."""

from __future__ import annotations

import pytest

pytest.importorskip("mlx_vlm")

from ._real_processor import SIZES, Served  # noqa: E402


@pytest.fixture(scope="module")
def gemma3n(tmp_path_factory) -> Served:
    return Served.write("gemma3n", tmp_path_factory.mktemp("gemma3n"))


@pytest.mark.parametrize("size", SIZES)
def test_size_equals_pixel_values(gemma3n, size):
    """The layout's size is the pixel_values' spatial size: a fixed 768x768."""
    pixels = gemma3n.sent(*size)["pixel_values"]
    assert tuple(pixels.shape[-2:][::-1]) == gemma3n.geometry.layout(*size).size == (768, 768)


def test_shrinking_buys_nothing(gemma3n):
    """A fixed-resolution family: any image is 256 tokens, and the guard knows not to shrink it."""
    assert not gemma3n.geometry.resizable
    assert gemma3n.geometry.layout(64, 64) == gemma3n.geometry.layout(4000, 3000)
