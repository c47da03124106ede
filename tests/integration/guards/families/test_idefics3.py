"""Idefics3's and SmolVLM's tiles (guards.families.idefics3) against mlx-vlm's real processor on tiny checkpoints."""

from __future__ import annotations

import dataclasses

import pytest

pytest.importorskip("mlx_vlm")

from ._real_processor import Served  # noqa: E402

# family: (the tiles of a 1024x768 photo: rows, columns, resized size), the tile side, the patch side
SHAPES = {"idefics3": ((3, 4, (1456, 1092)), 364, 14), "smolvlm": ((3, 4, (2048, 1536)), 512, 16)}


@pytest.fixture(scope="module", params=sorted(SHAPES))
def tiled(request, tmp_path_factory) -> Served:
    return Served.write(request.param, tmp_path_factory.mktemp(request.param))


def test_views_equal_the_pixel_values(tiled):
    """Tiles plus the global view equal the processor's pixel_values views, each one tile square."""
    tiles, side, patch = SHAPES[tiled.config["model_type"]]
    geometry = tiled.geometry
    rows, cols, _ = geometry.tiles(1024, 768)
    assert geometry.tiles(1024, 768) == tiles and geometry.tile == side
    assert tiled.inputs(1024, 768)["pixel_values"].shape[1:] == (rows * cols + 1, 3, side, side)
    assert geometry.layout(1024, 768).patches == 13 * (side // patch) ** 2


def test_a_smaller_image_buys_nothing(tiled):
    """A quarter-size image gets the same tokens: the processor scales every image up to longest_edge."""
    assert not tiled.geometry.resizable
    assert tiled.tokens(tiled.inputs(256, 192)) == tiled.tokens(tiled.inputs(1024, 768))


def test_a_size_option_does_not_reach_the_image_processor(tiled):
    """prepare_inputs(size=...) leaves the count unchanged in mlx-vlm 0.7.10 (it drops the option)."""
    plain = tiled.tokens(tiled.inputs(1024, 768))
    assert tiled.tokens(tiled.inputs(1024, 768, size={"longest_edge": tiled.geometry.tile})) == plain


def test_lowering_the_image_processors_longest_edge_gives_fewer_tiles(tiled):
    """Setting image_processor.size (the only way in 0.7.10) lowers the count to the geometry at that edge."""
    edge = 2 * tiled.geometry.tile
    image_processor = tiled.processor.image_processor
    saved = image_processor.size
    try:
        image_processor.size = {"longest_edge": edge}
        real = tiled.tokens(tiled.inputs(1024, 768, remember=False))
    finally:
        image_processor.size = saved
    assert real == dataclasses.replace(tiled.geometry, longest_edge=edge).layout(1024, 768).tokens
    assert real < tiled.geometry.layout(1024, 768).tokens
