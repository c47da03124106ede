"""Molmo's crops (guards.families.molmo) against mlx-vlm's real processor on a tiny checkpoint."""

from __future__ import annotations

import pytest

pytest.importorskip("mlx_vlm")

from ._real_processor import SIZES, Served  # noqa: E402

MORE = [(30, 30), (500, 500)]  # one crop; a 2x2 square


@pytest.fixture(scope="module")
def molmo(tmp_path_factory) -> Served:
    return Served.write("molmo", tmp_path_factory.mktemp("molmo"))


@pytest.mark.parametrize("size", MORE)
def test_tokens_equal_the_processor_for_few_crops(molmo, size):
    """A tiny image and a small square get the <im_patch> tokens the processor writes."""
    assert molmo.geometry.layout(*molmo.geometry.snap(*size)).tokens == molmo.tokens(molmo.sent(*size))


@pytest.mark.parametrize("size", SIZES + MORE)
def test_views_equal_pixel_values(molmo, size):
    """The crops plus the global view the layout counts are the 336-px views in pixel_values."""
    pixels = molmo.sent(*size)["pixel_values"]
    assert molmo.geometry.layout(*size).patches == pixels.shape[0] * pixels.shape[1] == pixels.shape[0] * 576


def test_shrinking_gives_fewer_crops(molmo):
    """A photo is 12 crops; at 500x500 it is four, at 336x336 one."""
    crops = [molmo.geometry.layout(*size).patches // 576 - 1 for size in ((1024, 768), (500, 500), (336, 336))]
    assert crops == [12, 4, 1]
