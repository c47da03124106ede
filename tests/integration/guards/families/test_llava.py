"""LLaVA-1.5's view (guards.families.llava) against mlx-vlm's real processor on a tiny checkpoint."""

from __future__ import annotations

import pytest

pytest.importorskip("mlx_vlm")

from ._real_processor import SIZES, Served  # noqa: E402


@pytest.fixture(scope="module")
def llava(tmp_path_factory) -> Served:
    return Served.write("llava", tmp_path_factory.mktemp("llava"))


@pytest.mark.parametrize("size", SIZES)
def test_view_is_the_center_crop(llava, size):
    """The processor's pixel_values are one 336 x 336 view."""
    shape = llava.sent(*size)["pixel_values"].shape
    assert shape[-2:] == llava.geometry.layout(*size).size[::-1] == (336, 336)


def test_smaller_image_buys_nothing(llava):
    """A fixed-resolution family: 576 tokens at any size, and the guard does not shrink the image."""
    geometry = llava.geometry
    assert geometry.resizable is False and geometry.snap(1024, 768) == (1024, 768)
    assert geometry.layout(200, 150).tokens == geometry.layout(2550, 3300).tokens == 576
