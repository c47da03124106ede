"""Idefics2's views (guards.families.idefics2) against mlx-vlm's real processor on a tiny checkpoint."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("mlx_vlm")

from ._real_processor import SIZES, Served  # noqa: E402


@pytest.fixture(scope="module")
def idefics2(tmp_path_factory) -> Served:
    return Served.write("idefics2", tmp_path_factory.mktemp("idefics2"))


def test_a_tiny_image_gets_the_processors_tokens(idefics2):
    """A 30x30 image, smaller than one patch row, gets the image tokens the processor writes."""
    geometry = idefics2.geometry
    assert geometry.layout(*geometry.snap(30, 30)).tokens == idefics2.tokens(idefics2.sent(30, 30))


@pytest.mark.parametrize("size", SIZES + [(30, 30)])
def test_size_equals_pixel_values(idefics2, size):
    """Five views; the padded views' side and the patch count match the processor's pixel_values."""
    inputs = idefics2.sent(*size)
    layout = idefics2.geometry.layout(*idefics2.geometry.snap(*size))
    _, views, _, height, width = inputs["pixel_values"].shape
    assert views == 5
    assert layout.patches == views * (height // 14) * (width // 14)
    whole = np.array(inputs["pixel_attention_mask"])[0, -1]
    assert layout.size == (int(whole.any(axis=0).sum()), int(whole.any(axis=1).sum()))


def test_shrinking_gives_fewer_patches_not_tokens(idefics2):
    """Tokens are fixed per view; a smaller image only saves encoder patches, down to 378-px views."""
    big, small = idefics2.geometry.layout(1960, 1960), idefics2.geometry.layout(800, 800)
    assert big.tokens == small.tokens == 320
    assert small.patches < big.patches
