"""PaliGemma 2's geometry equals mlx-vlm's real processor on tiny paligemma2-3b-mix-224 / -448-shaped checkpoints."""

from __future__ import annotations

import pytest

pytest.importorskip("mlx_vlm")

from ._real_processor import SIZES, Served  # noqa: E402


@pytest.fixture(scope="module", params=[("paligemma", 224, 256), ("paligemma-448", 448, 1024)], ids=["224", "448"])
def paligemma(request, tmp_path_factory):
    name, side, tokens = request.param
    return Served.write(name, tmp_path_factory.mktemp(name), "paligemma"), side, tokens


@pytest.mark.parametrize("size", SIZES)
def test_tokens_equal_the_processor(paligemma, size):
    """Every image becomes image_seq_length <image> tokens (256 at 224 px, 1024 at 448 px)."""
    served, _, tokens = paligemma
    real, _, _ = served.counts(*size)
    assert served.geometry().layout(*size).tokens == real == tokens


@pytest.mark.parametrize("size", SIZES)
def test_view_is_fixed(paligemma, size):
    """pixel_values is one square view of the checkpoint's resolution, aspect not kept."""
    served, side, _ = paligemma
    _, _, shape = served.counts(*size)
    assert shape[-2:] == served.geometry().layout(*size).size[::-1] == (side, side)


def test_wrapper_is_constant(paligemma):
    """Beyond its image tokens an image adds the same tokens at every size (<bos> after the image tokens)."""
    served, _, _ = paligemma
    assert {served.wrapper(*size) for size in SIZES} == {served.wrapper(*SIZES[0])}


def test_smaller_image_buys_nothing(paligemma):
    """A fixed-resolution family: the guard must not shrink for tokens."""
    served, _, _ = paligemma
    assert served.geometry().resizable is False


def test_greedy_generation_gives_text(paligemma):
    """mlx_vlm.generate runs on the prompt mlx-vlm builds ("<image>" + text) and gives text."""
    served, _, _ = paligemma
    assert served.generate(640, 480)
