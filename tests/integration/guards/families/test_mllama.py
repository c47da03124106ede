"""Llama 3.2 Vision (Mllama)'s tiles (guards.families.mllama) against mlx-vlm's real processor.

mmserve refuses to serve the family (see mmserve.engines.families.mllama), so the
generic family test does not cover it; its geometry is checked here on the processor alone.
"""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("mlx_vlm")

from ._real_processor import SIZES, Served  # noqa: E402

MORE = [(30, 30), (1200, 500)]  # one tile; a 2x1 canvas


@pytest.fixture(scope="module")
def mllama(tmp_path_factory) -> Served:
    import mlx_vlm.models.mllama  # noqa: F401  (registers mlx-vlm's processor)

    return Served.write("mllama", tmp_path_factory.mktemp("mllama"), model=False)


@pytest.mark.parametrize("size", SIZES + MORE)
def test_one_image_token_whatever_the_size(mllama, size):
    """The guard's single image token is the one <|image|> the processor writes, at any size."""
    assert mllama.geometry.layout(*mllama.geometry.snap(*size)).tokens == mllama.tokens(mllama.sent(*size)) == 1


@pytest.mark.parametrize("size", SIZES + MORE)
def test_tiles_equal_the_aspect_ratio_mask(mllama, size):
    """The real tiles are the processor's unmasked tile slots; the encoder runs over all four slots."""
    inputs = mllama.sent(*size)
    assert mllama.geometry.tiles(*size) == int(np.array(inputs["aspect_ratio_mask"]).sum())
    assert mllama.geometry.layout(*size).patches == inputs["pixel_values"].shape[2] * 1601


def test_prompt_length_is_text_plus_a_constant(mllama):
    """Beyond the text an image adds the same number of prompt tokens at every size."""
    text = mllama.text_only()
    assert len({mllama.length(mllama.sent(*size)) - text for size in SIZES + MORE}) == 1


def test_shrinking_gives_fewer_tiles_not_tokens(mllama):
    """One prompt token at any size; a smaller image covers fewer tiles of cross-attention K/V."""
    geometry = mllama.geometry
    assert geometry.layout(1024, 768).tokens == geometry.layout(400, 300).tokens == 1
    assert (geometry.tiles(1024, 768), geometry.tiles(1000, 400), geometry.tiles(400, 300)) == (4, 2, 1)
