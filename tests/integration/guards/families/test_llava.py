"""LLaVA-1.5's geometry equals mlx-vlm's real processor on a tiny llava-1.5-7b-hf-shaped checkpoint."""

from __future__ import annotations

import pytest

pytest.importorskip("mlx_vlm")

from ._real_processor import SIZES, Served  # noqa: E402


@pytest.fixture(scope="module")
def llava(tmp_path_factory) -> Served:
    return Served.write("llava", tmp_path_factory.mktemp("llava"))


@pytest.mark.parametrize("size", SIZES)
def test_tokens_equal_the_processor(llava, size):
    """Every image becomes the 576 image tokens the processor writes."""
    real, _, _ = llava.counts(*size)
    assert llava.geometry().layout(*size).tokens == real == 576


@pytest.mark.parametrize("size", SIZES)
def test_view_is_the_center_crop(llava, size):
    """The processor's pixel_values are one 336 x 336 view."""
    _, _, shape = llava.counts(*size)
    assert shape[-2:] == llava.geometry().layout(*size).size[::-1] == (336, 336)


def test_wrapper_is_constant(llava):
    """Beyond its image tokens an image adds the same tokens at every size (the "\\n" after <image>)."""
    assert {llava.wrapper(*size) for size in SIZES} == {llava.wrapper(*SIZES[0])}


def test_smaller_image_buys_nothing(llava):
    """A fixed-resolution family: the guard must not shrink for tokens."""
    geometry = llava.geometry()
    assert geometry.resizable is False and geometry.snap(1024, 768) == (1024, 768)


def test_greedy_generation_gives_text(llava):
    """With the after_load fix (no ``padding`` into the image processor) generate runs and gives text."""
    assert llava.generate(640, 480)
