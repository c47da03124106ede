"""Idefics3's geometry in guards equals mlx-vlm's real processor on a tiny Idefics3 checkpoint.

The wrapper (the same for every tiled image): ``\\n\\n`` after the last row of tiles,
``<fake_token_around_image><global-img>`` before the global view, and
``<fake_token_around_image>`` after it.
"""

from __future__ import annotations

import pytest

pytest.importorskip("mlx_vlm")

from mmserve.synth.families import idefics3  # noqa: E402
from tests.integration.guards.families.probe import SIZES, load, picture, synthesize  # noqa: E402


@pytest.fixture(scope="module")
def idefics3_model(tmp_path_factory):
    path = synthesize(idefics3.FAMILY, tmp_path_factory)
    return load(path, idefics3.VOCAB["<image>"])


@pytest.mark.parametrize(("width", "height"), SIZES)
def test_tokens_equal_the_processor(idefics3_model, width, height):
    """The guard's image tokens equal the <image> ids the processor writes for the image as sent."""
    geometry = idefics3_model.geometry
    sent = geometry.snap(width, height)
    real, _, _ = idefics3_model.count(picture(*sent), **geometry.processor_kwargs(*sent))
    assert geometry.layout(*sent).tokens == real


def test_prompt_length_is_text_plus_tokens_extra_and_one_wrapper(idefics3_model):
    """All prompt ids are the text's plus tokens + extra_tokens + a wrapper that is the same at every size."""
    geometry = idefics3_model.geometry
    text = idefics3_model.text_only("<image>")
    wrappers = set()
    for width, height in SIZES:
        _, total, _ = idefics3_model.count(picture(width, height))
        layout = geometry.layout(width, height)
        wrappers.add(total - text - layout.tokens - layout.extra_tokens)
    # "\n\n" (two ids in the synth BPE, one in Llama 3's), <fake_token_around_image>, <global-img>, <fake...>
    assert wrappers == {2 + 3}


def test_views_equal_the_pixel_values(idefics3_model):
    """Tiles plus the global view equal the processor's pixel_values views, each one tile square."""
    geometry = idefics3_model.geometry
    _, _, inputs = idefics3_model.count(picture(1024, 768))
    rows, cols, size = geometry.tiles(1024, 768)
    assert (rows, cols, size) == (3, 4, (1456, 1092))
    assert inputs["pixel_values"].shape[1:] == (rows * cols + 1, 3, geometry.tile, geometry.tile)
    assert geometry.layout(1024, 768).patches == 13 * (364 // 14) ** 2


def test_a_smaller_image_buys_nothing(idefics3_model):
    """A quarter-size image gets the same tokens: the processor scales every image up to longest_edge."""
    geometry = idefics3_model.geometry
    assert not geometry.resizable
    assert idefics3_model.count(picture(256, 192))[0] == idefics3_model.count(picture(1024, 768))[0]


def test_a_size_option_does_not_reach_the_image_processor(idefics3_model):
    """prepare_inputs(size=...) leaves the count unchanged in mlx-vlm 0.7.10 (it drops the option)."""
    plain = idefics3_model.count(picture(1024, 768))[0]
    assert idefics3_model.count(picture(1024, 768), size={"longest_edge": 364})[0] == plain


def test_greedy_generate_gives_text(idefics3_model):
    """mlx_vlm.generate on an image runs and returns text (a wide one: 4 tiles and the global view)."""
    import mlx_vlm

    result = mlx_vlm.generate(
        idefics3_model.model, idefics3_model.processor, idefics3_model.prompt,
        image=[picture(400, 40)], max_tokens=8, temperature=0, verbose=False,
    )  # fmt: skip
    assert result.text


def test_lowering_the_image_processors_longest_edge_gives_fewer_tiles(idefics3_model):
    """Setting image_processor.size (the only way in 0.7.10) lowers the count to the geometry at that edge."""
    import dataclasses

    image_processor = idefics3_model.processor.image_processor
    saved = image_processor.size
    try:
        image_processor.size = {"longest_edge": 728}
        real = idefics3_model.count(picture(1024, 768), remember=False)[0]
    finally:
        image_processor.size = saved
    assert real == dataclasses.replace(idefics3_model.geometry, longest_edge=728).layout(1024, 768).tokens == 5 * 169
