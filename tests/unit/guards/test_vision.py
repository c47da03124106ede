"""smart_resize and token counts by the Qwen2.5-VL processor's rules."""

from __future__ import annotations

import itertools

import pytest

from guards import AspectRatioError, VisionSpec, patches, smart_resize, vision_tokens

SPEC = VisionSpec()
SIZES = [
    (w, h)
    for w, h in itertools.product([1, 13, 14, 15, 27, 28, 41, 42, 70, 97, 224, 333, 640, 1023, 1792, 4000], repeat=2)
    if max(w, h) / min(w, h) <= 200
]


def test_spec_defaults_are_qwen2_5_vl():
    """The default spec is patch 14, merge 2, temporal 2, 3136..12845056 pixels."""
    assert (SPEC.patch_size, SPEC.merge_size, SPEC.temporal_patch_size, SPEC.min_pixels, SPEC.max_pixels) == (
        14, 2, 2, 3136, 12845056,
    )  # fmt: skip
    assert SPEC.factor == 28


def test_grid_sizes_are_kept():
    """A size already on the 28-px grid within the pixel limits is not changed."""
    assert smart_resize(448, 336) == (448, 336)


def test_28_square_grows_to_min_pixels():
    """28x28 is under min_pixels (3136), so it is scaled up to 56x56: 4 tokens."""
    assert smart_resize(28, 28) == (56, 56) and vision_tokens(28, 28) == 4


def test_1x1_becomes_56_square():
    """A 1x1 image becomes 56x56, as the processor does."""
    assert smart_resize(1, 1) == (56, 56)


def test_rounding_is_half_to_even():
    """Sides at exactly half a cell round to even multiples, as Python's round does."""
    assert smart_resize(70, 448)[0] == 56 and smart_resize(42, 448)[0] == 56


def test_large_image_is_capped_at_max_pixels():
    """An 8000x8000 image is scaled down to at most max_pixels."""
    width, height = smart_resize(8000, 8000)
    assert width * height <= SPEC.max_pixels and width == height


@pytest.mark.parametrize(("width", "height"), SIZES)
def test_sides_are_multiples_of_the_factor(width, height):
    """Every resized side is a positive multiple of patch_size * merge_size."""
    w, h = smart_resize(width, height)
    assert w % 28 == 0 and h % 28 == 0 and w >= 28 and h >= 28


@pytest.mark.parametrize(("width", "height"), SIZES)
def test_smart_resize_is_idempotent(width, height):
    """Resizing a resized size changes nothing, so the processor will not resize again."""
    size = smart_resize(width, height)
    assert smart_resize(*size) == size


@pytest.mark.parametrize(("width", "height"), [(4000, 400), (300, 6000), (2550, 3300), (1792, 1792)])
def test_tokens_are_patches_over_merge_squared(width, height):
    """Language-model tokens are the patch count divided by merge_size**2."""
    w, h = smart_resize(width, height)
    assert patches(width, height) == (w // 14) * (h // 14)
    assert vision_tokens(width, height) == patches(width, height) // 4


def test_1792_square_is_16384_patches():
    """1792x1792 is 128x128 patches, 4096 tokens."""
    assert patches(1792, 1792) == 16384 and vision_tokens(1792, 1792) == 4096


def test_aspect_ratio_above_200_is_refused():
    """201:1 raises AspectRatioError, which is also a ValueError like the processor's."""
    with pytest.raises(AspectRatioError, match="200:1"):
        smart_resize(201, 1)
    assert issubclass(AspectRatioError, ValueError)


def test_aspect_ratio_of_exactly_200_is_accepted():
    """200:1 is still allowed."""
    assert smart_resize(5600, 28) == (5600, 28)


def test_non_positive_size_is_refused():
    """A zero side is a ValueError, not a division by zero."""
    with pytest.raises(ValueError, match="positive"):
        smart_resize(0, 10)


def test_custom_spec_changes_the_grid():
    """A patch-16 spec works on a 32-px grid."""
    spec = VisionSpec(patch_size=16, min_pixels=32 * 32, max_pixels=1024 * 1024)
    assert smart_resize(100, 50, spec) == (96, 64)


def test_spec_from_processor_config_reads_size_keys():
    """shortest_edge / longest_edge give the pixel limits; min_pixels / max_pixels override them."""
    config = {
        "patch_size": 14,
        "merge_size": 2,
        "size": {"shortest_edge": 100, "longest_edge": 5000},
        "max_pixels": 9000,
    }
    spec = VisionSpec.from_processor_config(config)
    assert (spec.min_pixels, spec.max_pixels) == (100, 9000)


def test_spec_from_empty_config_uses_processor_class_defaults():
    """Missing keys take the processor class's defaults, not the checkpoint's."""
    spec = VisionSpec.from_processor_config({})
    assert (spec.patch_size, spec.min_pixels, spec.max_pixels) == (14, 3136, 1003520)


def test_spec_rejects_min_above_max():
    """min_pixels above max_pixels is a ValueError."""
    with pytest.raises(ValueError, match="min_pixels"):
        VisionSpec(min_pixels=10, max_pixels=5)
