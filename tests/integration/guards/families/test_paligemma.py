"""PaliGemma 2's view (guards.families.paligemma) against mlx-vlm's real processor at 224 and 448 px."""

from __future__ import annotations

import pytest

pytest.importorskip("mlx_vlm")

from ._real_processor import SIZES, Served  # noqa: E402


@pytest.fixture(scope="module", params=[("paligemma", 224, 256), ("paligemma-448", 448, 1024)], ids=["224", "448"])
def paligemma(request, tmp_path_factory):
    name, side, tokens = request.param
    return Served.write(name, tmp_path_factory.mktemp(name)), side, tokens


@pytest.mark.parametrize("size", SIZES)
def test_view_is_fixed(paligemma, size):
    """pixel_values is one square view of the checkpoint's resolution, aspect not kept."""
    served, side, _ = paligemma
    shape = served.sent(*size)["pixel_values"].shape
    assert shape[-2:] == served.geometry.layout(*size).size[::-1] == (side, side)


def test_smaller_image_buys_nothing(paligemma):
    """A fixed-resolution family: image_seq_length tokens (256 at 224 px, 1024 at 448 px) at any size."""
    served, _, tokens = paligemma
    geometry = served.geometry
    assert geometry.resizable is False
    assert geometry.layout(200, 150).tokens == geometry.layout(2550, 3300).tokens == tokens
