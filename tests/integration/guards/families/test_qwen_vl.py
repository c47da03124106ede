"""Qwen2-VL's, Qwen2.5-VL's and Qwen3-VL's patch grid against mlx-vlm's processor on tiny checkpoints.

Qwen2-VL and Qwen2.5-VL use ``guards.families.qwen2_vl``, Qwen3-VL ``guards.families.qwen3_vl``.
"""

from __future__ import annotations

import pytest

pytest.importorskip("mlx_vlm")

from ._real_processor import SIZES, Served  # noqa: E402

# family: (patch size, merge, min pixels, max pixels), (a size, one at half its sides), (below the minimum, at it)
RULES = {
    "qwen2_vl": ((14, 2, 3136, 12845056), ((1120, 840), (560, 420)), ((20, 20), (56, 56))),
    "qwen2_5_vl": ((14, 2, 3136, 12845056), ((1120, 840), (560, 420)), ((20, 20), (56, 56))),
    "qwen3_vl": ((16, 2, 65536, 16777216), ((1024, 768), (512, 384)), ((100, 100), (256, 256))),
}


@pytest.fixture(scope="module", params=sorted(RULES))
def qwen(request, tmp_path_factory) -> Served:
    return Served.write(request.param, tmp_path_factory.mktemp(request.param))


def _rules(served: Served):
    return RULES[served.config["model_type"]]


def test_the_checkpoint_gets_its_familys_rules(qwen):
    """Qwen2/2.5-VL get 14-px patches, Qwen3-VL 16-px ones, merged 2x2, with the real pixel range."""
    spec = qwen.geometry.spec
    assert (spec.patch_size, spec.merge_size, spec.min_pixels, spec.max_pixels) == _rules(qwen)[0]


def test_a_one_patch_wide_strip_gets_the_processors_tokens(qwen):
    """A 16x2000 strip, scaled up to the minimum width, gets the <|image_pad|> ids the processor writes."""
    geometry = qwen.geometry
    assert geometry.layout(*geometry.snap(16, 2000)).tokens == qwen.tokens(qwen.sent(16, 2000))


@pytest.mark.parametrize("size", SIZES + [(16, 2000)])
def test_snapped_size_is_the_grid_the_tower_sees(qwen, size):
    """The snapped size is the processor's grid (``image_grid_thw`` x patch size), and patches are its cells."""
    _, rows, columns = qwen.sent(*size)["image_grid_thw"][0].tolist()
    layout = qwen.geometry.layout(*qwen.geometry.snap(*size))
    patch = _rules(qwen)[0][0]
    assert layout.size == (columns * patch, rows * patch)
    assert layout.patches == rows * columns


def test_a_smaller_image_gets_fewer_patches(qwen):
    """Shrinking pays above the minimum pixels: half the sides, a quarter of the patches."""
    whole, half = _rules(qwen)[1]
    assert qwen.geometry.layout(*half).patches * 4 == qwen.geometry.layout(*whole).patches


def test_below_the_minimum_the_processor_scales_up(qwen):
    """Shrinking below the minimum pixels saves nothing: the processor scales the image up again."""
    below, minimum = _rules(qwen)[2]
    assert qwen.geometry.layout(*below).patches == qwen.geometry.layout(*minimum).patches
