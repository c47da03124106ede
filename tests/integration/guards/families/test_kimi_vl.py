"""Kimi-VL's patch grid (guards.families.kimi_vl) against mlx-vlm's real processor on a tiny checkpoint."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("mlx_vlm")

from ._real_processor import SIZES, Served  # noqa: E402


@pytest.fixture(scope="module")
def kimi_vl(tmp_path_factory) -> Served:
    return Served.write("kimi_vl", tmp_path_factory.mktemp("kimi_vl"))


def test_a_tiny_image_gets_the_processors_tokens(kimi_vl):
    """A 30x30 image, near one merged patch, gets the image tokens the processor writes."""
    geometry = kimi_vl.geometry
    assert geometry.layout(*geometry.snap(30, 30)).tokens == kimi_vl.tokens(kimi_vl.sent(30, 30))


@pytest.mark.parametrize("size", SIZES + [(30, 30)])
def test_size_equals_the_patch_grid(kimi_vl, size):
    """The layout's size and patches are the patch grid the processor reports for the image sent."""
    inputs = kimi_vl.sent(*size)
    rows, columns = np.array(inputs["image_grid_hws"])[0].tolist()
    layout = kimi_vl.geometry.layout(*kimi_vl.geometry.snap(*size))
    assert layout.size == (columns * 14, rows * 14)
    assert layout.patches == rows * columns == inputs["pixel_values"].shape[0]


@pytest.mark.parametrize("size", SIZES + [(30, 30)])
def test_snap_is_a_fixed_point(kimi_vl, size):
    """An image sent at the snapped size is not resized or cropped again."""
    snapped = kimi_vl.geometry.snap(*size)
    assert kimi_vl.geometry.snap(*snapped) == snapped


def test_shrinking_gives_fewer_tokens(kimi_vl):
    """A dynamic-patch family: half the sides, about a quarter of the tokens."""
    assert kimi_vl.geometry.resizable
    assert kimi_vl.geometry.layout(448, 336).tokens == 4 * kimi_vl.geometry.layout(224, 168).tokens
