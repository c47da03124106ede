"""The guard's token counts equal what mlx-vlm's real Qwen2.5-VL image processor produces."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from PIL import Image

pytest.importorskip("mlx_vlm")
from mlx_vlm.models.qwen3_vl.processing_qwen3_vl import Qwen3VLImageProcessor

from guards import (
    AspectRatioError,
    VisionSpec,
    patches,
    plan_image,
    resize,
    smart_resize,
    vision_tokens,
)

SPEC = VisionSpec()
SMALL_SPEC = VisionSpec(min_pixels=56 * 56, max_pixels=14 * 14 * 4 * 1280)  # the processor class's defaults

# Processed for real: tiny, grid-exact, odd, extreme-aspect, large and over-max_pixels sizes.
PROCESSED_SIZES = [
    (1, 1), (2, 3), (13, 27), (27, 13), (28, 28), (29, 29), (41, 42), (42, 70), (56, 56), (57, 29),
    (100, 80), (224, 224), (333, 777), (448, 448), (640, 480), (1001, 999), (199, 1), (1, 200),
    (200, 1), (4000, 400), (300, 6000), (6000, 30), (1344, 1344), (1792, 1792), (2550, 3300),
    (3584, 3584), (4000, 4000),
]  # fmt: skip
SWEEP_SIDES = [1, 2, 7, 14, 15, 27, 28, 29, 41, 42, 43, 55, 56, 69, 70, 71, 97, 111, 224, 225, 255,
               333, 447, 448, 500, 511, 512, 767, 1000, 1023, 1024, 1500, 2047, 3000, 3583, 3584, 3600,
               5000, 8191]  # fmt: skip


def processor(spec: VisionSpec) -> Qwen3VLImageProcessor:
    return Qwen3VLImageProcessor(
        patch_size=spec.patch_size,
        merge_size=spec.merge_size,
        temporal_patch_size=spec.temporal_patch_size,
        min_pixels=spec.min_pixels,
        max_pixels=spec.max_pixels,
    )


def processed(spec: VisionSpec, image: Image.Image) -> np.ndarray:
    """(grid_t, grid_h, grid_w) of one image, as the processor computes it on real pixels."""
    return np.asarray(processor(spec)(image)["image_grid_thw"])[0]


@pytest.mark.parametrize(("width", "height"), PROCESSED_SIZES)
def test_tokens_match_the_processor_on_real_images(width, height):
    """vision_tokens equals image_grid_thw.prod() // merge**2 from processing a real PIL image."""
    grid = processed(SPEC, Image.new("RGB", (width, height), (120, 30, 200)))
    assert vision_tokens(width, height, SPEC) == int(grid.prod()) // SPEC.merge_size**2
    assert patches(width, height, SPEC) == int(grid.prod())


@pytest.mark.parametrize(("width", "height"), [(1, 1), (333, 777), (4000, 400), (300, 6000), (1792, 1792)])
def test_resized_size_matches_the_processor_grid(width, height):
    """smart_resize gives the size the processor resizes to: grid times patch size."""
    _, grid_h, grid_w = processed(SPEC, Image.new("RGB", (width, height)))
    assert smart_resize(width, height, SPEC) == (grid_w * 14, grid_h * 14)


@pytest.mark.parametrize("spec", [SPEC, SMALL_SPEC], ids=["checkpoint", "class-defaults"])
def test_sweep_matches_num_image_tokens(spec):
    """Over a sweep of sizes (and two pixel limits) the token count equals the processor's own estimate."""
    reference = processor(spec)
    for width, height in itertools.product(SWEEP_SIDES, repeat=2):
        if max(width, height) / min(width, height) > 200:
            continue
        assert vision_tokens(width, height, spec) == reference.num_image_tokens(height, width), (width, height)


def test_small_spec_matches_real_processing():
    """With the class-default pixel limits, a large image is counted as the processor counts it."""
    grid = processed(SMALL_SPEC, Image.new("RGB", (2550, 3300)))
    assert vision_tokens(2550, 3300, SMALL_SPEC) == int(grid.prod()) // 4


@pytest.mark.parametrize(("width", "height"), [(201, 1), (1, 201), (7000, 30)])
def test_aspect_refusals_agree(width, height):
    """Both refuse aspect ratios above 200: the processor with ValueError, the guard with AspectRatioError."""
    with pytest.raises(ValueError, match="aspect ratio"):
        processor(SPEC)(Image.new("RGB", (width, height)))
    with pytest.raises(AspectRatioError):
        smart_resize(width, height, SPEC)


@pytest.mark.parametrize(
    ("width", "height", "side"), [(4000, 3000, 1024), (300, 6000, 768), (2550, 3300, 512), (6000, 30, 512)]
)
def test_planned_image_is_not_resized_again(width, height, side):
    """An image resized to the plan goes through the processor unchanged, with the planned tokens."""
    planned = plan_image(width, height, max_side=side, spec=SPEC)
    image = resize(Image.new("RGB", (width, height), (10, 200, 10)), planned.resized)
    _, grid_h, grid_w = processed(SPEC, image)
    assert (grid_w * 14, grid_h * 14) == planned.resized
    assert grid_h * grid_w == planned.patches and grid_h * grid_w // 4 == planned.tokens
