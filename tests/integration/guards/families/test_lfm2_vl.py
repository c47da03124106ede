"""LFM2-VL's views (guards.families.lfm2_vl) against mlx-vlm's real processor on a tiny checkpoint."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("mlx_vlm")

from ._real_processor import SIZES, Served  # noqa: E402

MORE = [(30, 30), (700, 700), (640, 480)]  # a tiny image, a square at the tiling threshold, a single view


@pytest.fixture(scope="module")
def lfm2_vl(tmp_path_factory) -> Served:
    return Served.write("lfm2_vl", tmp_path_factory.mktemp("lfm2_vl"))


@pytest.mark.parametrize("size", MORE)
def test_tokens_equal_the_processor_near_the_tiling_threshold(lfm2_vl, size):
    """Images around the size where tiling starts get the image tokens the processor writes."""
    geometry = lfm2_vl.geometry
    assert geometry.layout(*geometry.snap(*size)).tokens == lfm2_vl.tokens(lfm2_vl.sent(*size))


@pytest.mark.parametrize("size", SIZES + MORE)
def test_views_equal_pixel_values(lfm2_vl, size):
    """The views (tiles and thumbnail, or the one view) and its patch grid match the processor's output."""
    inputs = lfm2_vl.sent(*size)
    sent = lfm2_vl.geometry.snap(*size)
    layout = lfm2_vl.geometry.layout(*sent)
    views, padded, _ = inputs["pixel_values"].shape
    assert layout.patches == views * padded
    rows, columns = np.array(inputs["spatial_shapes"])[-1].tolist()
    assert lfm2_vl.geometry.resize(*sent) == (columns * 16, rows * 16)
    if views == 1:
        assert layout.size == sent == (columns * 16, rows * 16)


@pytest.mark.parametrize("size", SIZES + MORE)
def test_snap_is_a_fixed_point(lfm2_vl, size):
    """A single view sent at the snapped size is not resized again."""
    snapped = lfm2_vl.geometry.snap(*size)
    assert lfm2_vl.geometry.snap(*snapped) == snapped


def test_shrinking_drops_the_tiles(lfm2_vl):
    """A photo is six tiles and a thumbnail; at 640x480 it is one view of at most 256 tokens."""
    assert lfm2_vl.geometry.layout(1024, 768).tokens == 6 * 256 + 234
    assert lfm2_vl.geometry.layout(*lfm2_vl.geometry.snap(640, 480)).tokens <= 256
