"""Pixtral's and Mistral 3's image grid (guards.families.pixtral) against mlx-vlm's processor on tiny checkpoints."""

from __future__ import annotations

import pytest

pytest.importorskip("mlx_vlm")

from ._real_processor import SIZES, Served  # noqa: E402

# family: (patch size, merge, longest edge), sizes of its own, (a size, one at half its sides)
RULES = {
    "pixtral": ((16, 1, 1024), [(16, 2000)], ((1024, 768), (512, 384))),
    "mistral3": ((14, 2, 1540), [(16, 2000), (1540, 1540)], ((1120, 840), (560, 420))),
}


@pytest.fixture(scope="module", params=sorted(RULES))
def pixtral(request, tmp_path_factory) -> Served:
    return Served.write(request.param, tmp_path_factory.mktemp(request.param))


def _rules(served: Served):
    return RULES[served.config["model_type"]]


def test_the_checkpoint_gets_its_familys_rules(pixtral):
    """Pixtral gets 16-px patches, no merging, 1024 px at most; Mistral 3 14-px patches merged 2x2, 1540 px."""
    geometry = pixtral.geometry
    assert (geometry.patch_size, geometry.merge, geometry.longest_edge) == _rules(pixtral)[0]


def test_tokens_equal_the_processor_at_the_limits(pixtral):
    """A one-patch-wide strip and (Mistral 3) an image at the longest edge get the [IMG] ids the processor writes."""
    geometry = pixtral.geometry
    for size in _rules(pixtral)[1]:
        assert geometry.layout(*geometry.snap(*size)).tokens == pixtral.tokens(pixtral.sent(*size)), size


@pytest.mark.parametrize("size", SIZES + [(16, 2000), (1540, 1540)])
def test_snapped_size_is_what_the_processor_sends_to_the_tower(pixtral, size):
    """The snapped size is a fixed point of the processor: the pixels the tower sees have that size."""
    width, height = pixtral.geometry.snap(*size)
    assert tuple(pixtral.sent(*size)["pixel_values"].shape[2:]) == (height, width)
    assert pixtral.geometry.layout(*size) == pixtral.geometry.layout(width, height)


def test_a_smaller_image_gets_fewer_patches(pixtral):
    """Shrinking pays: half the sides, about a quarter of the patches."""
    whole, half = _rules(pixtral)[2]
    assert pixtral.geometry.layout(*half).patches * 4 == pixtral.geometry.layout(*whole).patches
