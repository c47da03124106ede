"""LLaVA-NeXT's anyres tiles (guards.families.llava_next) against mlx-vlm's real processor on a tiny checkpoint."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("mlx_vlm")

from ._real_processor import SIZES, Served  # noqa: E402

# one base-size tile, a wide and a tall grid, a 2x2 square, odd sides that leave padding to unpad
MORE_SIZES = [(336, 336), (700, 300), (300, 1200), (1500, 1500), (99, 401)]


@pytest.fixture(scope="module")
def llava_next(tmp_path_factory) -> Served:
    return Served.write("llava_next", tmp_path_factory.mktemp("llava_next"))


@pytest.mark.parametrize("size", MORE_SIZES)
def test_tokens_equal_the_processor_for_every_grid(llava_next, size):
    """Base view + unpadded tile features + one newline per row: the processor's <image> count."""
    assert llava_next.geometry.layout(*size).tokens == llava_next.tokens(llava_next.sent(*size))


@pytest.mark.parametrize("size", SIZES)
def test_views_equal_the_grid(llava_next, size):
    """pixel_values holds the base view and one 336-px tile per grid cell of the chosen resolution."""
    views = llava_next.sent(*size)["pixel_values"].shape[1]
    layout = llava_next.geometry.layout(*size)
    assert views * 336 * 336 == 336 * 336 + layout.size[0] * layout.size[1]
    assert layout.patches == views * 576


def test_smaller_image_gets_fewer_tiles(llava_next):
    """A 4:3 photo shrunk to 448 px wide fits a 2-tile grid instead of 4, and takes fewer tokens."""
    geometry = llava_next.geometry
    assert geometry.resizable
    assert geometry.layout(1024, 768).patches == 5 * 576 and geometry.layout(448, 336).patches == 3 * 576
    assert geometry.layout(448, 336).tokens < geometry.layout(1024, 768).tokens


def test_embeddings_fill_every_image_token(llava_next):
    """After after_load the model puts one feature on each image token: embeddings as long as input_ids."""
    inputs = llava_next.inputs(1024, 768)
    extra = {k: v for k, v in inputs.items() if k not in ("input_ids", "pixel_values", "attention_mask")}
    embeds = llava_next.model.get_input_embeddings(inputs["input_ids"], inputs["pixel_values"], **extra)
    assert embeds.inputs_embeds.shape[1] == np.array(inputs["input_ids"]).shape[1]
