"""DeepSeek-VL2's geometry in guards equals mlx-vlm's real processor on a tiny deepseek_vl_v2 checkpoint.

The wrapper: the processor repeats ``<image>`` for every feature (newlines and the view
separator included), adds nothing else per image, and puts one BOS in front of a prompt
with images (mlx-vlm's text-only path adds none): 1, the same at every size.
"""

from __future__ import annotations

import pytest

pytest.importorskip("mlx_vlm")

from mmserve.synth.families import deepseek_vl_v2  # noqa: E402
from tests.integration.guards.families.probe import SIZES, load, picture, synthesize  # noqa: E402


@pytest.fixture(scope="module")
def deepseek_vl_v2_model(tmp_path_factory):
    path = synthesize(deepseek_vl_v2.FAMILY, tmp_path_factory)
    return load(path, deepseek_vl_v2.VOCAB["<image>"])


@pytest.mark.parametrize(("width", "height"), SIZES + [(700, 700)])
def test_tokens_equal_the_processor(deepseek_vl_v2_model, width, height):
    """The guard's image tokens equal the <image> ids the processor writes for the image as sent."""
    geometry = deepseek_vl_v2_model.geometry
    sent = geometry.snap(width, height)
    real, _, _ = deepseek_vl_v2_model.count(picture(*sent), **geometry.processor_kwargs(*sent))
    assert geometry.layout(*sent).tokens == real


def test_two_by_two_tiles_are_1023_tokens(deepseek_vl_v2_model):
    """A 2x2 grid is 14*15 global + 1 separator + 28*29 local = 1023 image tokens, as the real model card says."""
    geometry = deepseek_vl_v2_model.geometry
    assert geometry.best_resolution(700, 700) == (768, 768)
    assert geometry.layout(700, 700).tokens == 1023 == deepseek_vl_v2_model.count(picture(700, 700))[0]


def test_prompt_length_is_text_plus_tokens_and_one_wrapper(deepseek_vl_v2_model):
    """All prompt ids are the text's plus tokens + a wrapper of 1 (the BOS) at every size."""
    geometry = deepseek_vl_v2_model.geometry
    text = deepseek_vl_v2_model.text_only("<image>")
    wrappers = set()
    for width, height in SIZES:
        _, total, _ = deepseek_vl_v2_model.count(picture(width, height))
        layout = geometry.layout(width, height)
        wrappers.add(total - text - layout.tokens - layout.extra_tokens)
    assert wrappers == {1}


def test_views_equal_the_pixel_values(deepseek_vl_v2_model):
    """The global view plus the grid's tiles equal the processor's pixel_values and images_spatial_crop."""
    geometry = deepseek_vl_v2_model.geometry
    _, _, inputs = deepseek_vl_v2_model.count(picture(1024, 768))
    cols, rows = (side // 384 for side in geometry.layout(1024, 768).size)
    assert inputs["images_spatial_crop"].tolist() == [[[cols, rows]]]
    assert inputs["pixel_values"].shape[1:] == (1 + cols * rows, 3, 384, 384)
    assert geometry.layout(1024, 768).patches == (1 + cols * rows) * 27 * 27


def test_a_smaller_image_gets_fewer_tiles(deepseek_vl_v2_model):
    """Shrinking a photo to a third drops it from a 3x2 grid to one tile: fewer tokens, as planned."""
    geometry = deepseek_vl_v2_model.geometry
    assert geometry.resizable
    assert geometry.layout(1024, 768).size == (1152, 768)
    assert geometry.layout(341, 256).size == (384, 384)
    assert deepseek_vl_v2_model.count(picture(341, 256))[0] == geometry.layout(341, 256).tokens == 210 + 1 + 14 * 15


def test_greedy_generate_gives_text(deepseek_vl_v2_model):
    """mlx_vlm.generate on an image runs and returns text."""
    import mlx_vlm

    result = mlx_vlm.generate(
        deepseek_vl_v2_model.model, deepseek_vl_v2_model.processor, deepseek_vl_v2_model.prompt,
        image=[picture(300, 200)], max_tokens=8, temperature=0, verbose=False,
    )  # fmt: skip
    assert result.text
