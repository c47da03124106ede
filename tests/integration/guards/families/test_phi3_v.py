"""Phi-3.5-vision's HD tiles (guards.families.phi3_v) against mlx-vlm's real processor on a tiny checkpoint."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("mlx_vlm")

from ._real_processor import SIZES, Served  # noqa: E402


@pytest.fixture(scope="module")
def phi3_v(tmp_path_factory) -> Served:
    return Served.write("phi3_v", tmp_path_factory.mktemp("phi3_v"))


def test_one_tile_image_gets_the_processors_tokens(phi3_v):
    """A 336x336 image, exactly one tile, gets the image positions the processor writes."""
    geometry = phi3_v.geometry
    assert geometry.layout(*geometry.snap(336, 336)).tokens == phi3_v.tokens(phi3_v.sent(336, 336))


@pytest.mark.parametrize("size", SIZES + [(336, 336)])
def test_size_equals_the_tiled_pixels(phi3_v, size):
    """The layout's size is the HD grid the processor cut: tiles plus one global view, sizes reported."""
    inputs = phi3_v.sent(*size)
    layout = phi3_v.geometry.layout(*size)
    height, width = np.array(inputs["image_sizes"])[0].tolist()
    assert layout.size == (width, height)
    tiles = (width // 336) * (height // 336) + 1
    assert inputs["pixel_values"].shape[1] == tiles
    assert layout.patches == tiles * 24 * 24


def test_shrinking_buys_nothing(phi3_v):
    """A fixed tile budget: the same aspect ratio gives the same tokens at any size."""
    assert not phi3_v.geometry.resizable
    assert phi3_v.geometry.layout(400, 300).tokens == phi3_v.geometry.layout(4000, 3000).tokens
