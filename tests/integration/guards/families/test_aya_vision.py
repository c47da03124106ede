"""Aya Vision's tiles (guards.families.aya_vision) against mlx-vlm's real processor on a tiny checkpoint."""

from __future__ import annotations

import pytest

pytest.importorskip("mlx_vlm")

from ._real_processor import SIZES, Served  # noqa: E402

SQUARES = [(30, 30), (600, 600), (900, 900)]  # one tile; grids that tie on aspect ratio


@pytest.fixture(scope="module")
def aya_vision(tmp_path_factory) -> Served:
    return Served.write("aya_vision", tmp_path_factory.mktemp("aya_vision"))


@pytest.mark.parametrize("size", SQUARES)
def test_square_images_get_the_processors_tokens(aya_vision, size):
    """A tiny square and squares whose grids tie on aspect ratio get the image tokens the processor writes."""
    geometry = aya_vision.geometry
    assert geometry.layout(*geometry.snap(*size)).tokens == aya_vision.tokens(aya_vision.sent(*size))


@pytest.mark.parametrize("size", SIZES + SQUARES)
def test_tiles_equal_pixel_values(aya_vision, size):
    """The tiles (and thumbnail) the layout counts are the 364-px crops in pixel_values."""
    pixels = aya_vision.sent(*size)["pixel_values"]
    assert tuple(pixels.shape[1:]) == (3, 364, 364)
    assert aya_vision.geometry.layout(*size).patches == pixels.shape[0] * 26 * 26


def test_shrinking_a_square_gives_fewer_tiles(aya_vision):
    """Square grids tie on aspect ratio, so a smaller square image gets fewer tiles (3x3, 2x2, 1)."""
    tokens = [aya_vision.geometry.layout(side, side).tokens for side in (1200, 700, 400)]
    assert tokens == [10 * 169, 5 * 169, 169]
