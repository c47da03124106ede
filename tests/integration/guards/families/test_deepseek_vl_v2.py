"""DeepSeek-VL2's tiles (guards.families.deepseek_vl_v2) against mlx-vlm's real processor on a tiny checkpoint."""

from __future__ import annotations

import pytest

pytest.importorskip("mlx_vlm")

from ._real_processor import Served  # noqa: E402


@pytest.fixture(scope="module")
def deepseek_vl_v2(tmp_path_factory) -> Served:
    return Served.write("deepseek_vl_v2", tmp_path_factory.mktemp("deepseek_vl_v2"))


def test_two_by_two_tiles_are_1023_tokens(deepseek_vl_v2):
    """A 2x2 grid is 14*15 global + 1 separator + 28*29 local = 1023 image tokens, as the real model card says."""
    geometry = deepseek_vl_v2.geometry
    assert geometry.best_resolution(700, 700) == (768, 768)
    assert geometry.layout(700, 700).tokens == 1023 == deepseek_vl_v2.tokens(deepseek_vl_v2.inputs(700, 700))


def test_views_equal_the_pixel_values(deepseek_vl_v2):
    """The global view plus the grid's tiles equal the processor's pixel_values and images_spatial_crop."""
    geometry = deepseek_vl_v2.geometry
    inputs = deepseek_vl_v2.inputs(1024, 768)
    cols, rows = (side // 384 for side in geometry.layout(1024, 768).size)
    assert inputs["images_spatial_crop"].tolist() == [[[cols, rows]]]
    assert inputs["pixel_values"].shape[1:] == (1 + cols * rows, 3, 384, 384)
    assert geometry.layout(1024, 768).patches == (1 + cols * rows) * 27 * 27


def test_a_smaller_image_gets_fewer_tiles(deepseek_vl_v2):
    """Shrinking a photo to a third drops it from a 3x2 grid to one tile: fewer tokens, as planned."""
    geometry = deepseek_vl_v2.geometry
    assert geometry.resizable
    assert geometry.layout(1024, 768).size == (1152, 768)
    assert geometry.layout(341, 256).size == (384, 384)
    real = deepseek_vl_v2.tokens(deepseek_vl_v2.inputs(341, 256))
    assert real == geometry.layout(341, 256).tokens == 210 + 1 + 14 * 15
