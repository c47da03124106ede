"""The fitted cost curve predicts real mlx peak memory of a Qwen2.5-VL vision tower.

Measures the tiny synth model's vision encoder on the CPU backend the way the
vision worker does (peak memory over a pass, above what was active before it).
"""

from __future__ import annotations

import pytest

pytest.importorskip("mlx_vlm")
import mlx.core as mx
import numpy as np
from PIL import Image

from guards import Calibration, VisionSpec, calibration_sizes, patches


def measure_vision_peak(model, processor, width: int, height: int) -> tuple[int, int]:
    """(patches, extra peak bytes) of one vision-encoder pass on a width x height image."""
    from mlx_vlm.utils import prepare_inputs

    pixels = np.random.default_rng(0).integers(0, 256, size=(height, width, 3), dtype=np.uint8)
    inputs = prepare_inputs(processor, images=[Image.fromarray(pixels)], prompts="<|image_pad|>")
    tower = model.vision_tower
    pixel_values = inputs["pixel_values"].astype(tower.patch_embed.proj.weight.dtype)
    grid = inputs["image_grid_thw"]
    mx.eval(pixel_values, grid)
    mx.clear_cache()  # freed-but-cached buffers would hide new allocations
    base = mx.get_active_memory()
    mx.reset_peak_memory()
    features = tower(pixel_values, grid, output_hidden_states=False)
    mx.eval(features)
    extra = mx.get_peak_memory() - base
    count = int(np.prod(np.array(grid.tolist()[0])))
    del features
    mx.clear_cache()
    return count, int(extra)


@pytest.fixture(scope="module")
def vision_model(models):
    from mlx_vlm import load

    model, processor = load(str(models / "vision"))
    ip = processor.image_processor
    spec = VisionSpec(ip.patch_size, ip.merge_size, ip.temporal_patch_size, ip.min_pixels, ip.max_pixels)
    return model, processor, spec


@pytest.fixture(scope="module")
def calibration(vision_model) -> Calibration:
    model, processor, spec = vision_model
    sizes = calibration_sizes(spec, 512)
    measure_vision_peak(model, processor, *sizes[0])  # warm-up
    return Calibration.fit([(w, h, *measure_vision_peak(model, processor, w, h)) for w, h in sizes])


def test_measured_patches_match_the_guard(vision_model, calibration):
    """The patch count the worker measures is the one the guard computes."""
    spec = vision_model[2]
    assert all(p == patches(w, h, spec) for w, h, p, _ in calibration.samples)


def test_fit_matches_its_samples(calibration):
    """On real measurements the fit is within 25 % of every calibration sample."""
    assert calibration.max_rel_error < 0.25


@pytest.mark.parametrize(("width", "height"), [(392, 588), (600, 300), (256, 700)])
def test_fit_predicts_sizes_it_was_not_fitted_on(vision_model, calibration, width, height):
    """Non-square sizes inside the calibrated range are predicted within 25 %."""
    model, processor, _ = vision_model
    count, measured = measure_vision_peak(model, processor, width, height)
    assert calibration.cost.bytes_for(count) == pytest.approx(measured, rel=0.25)


def test_a_fixed_resolution_is_measured_once(tmp_path):
    """LLaVA 1.5 sends every image at 336 px: the calibration measures that one cost (after
    its warm-up run) and gives it to every size, instead of measuring each size again."""
    from mmserve.engines.vision import VisionEngine
    from mmserve.synth.families import FAMILIES

    FAMILIES["llava"].write(tmp_path, 0)
    engine = VisionEngine(str(tmp_path))
    measured = []
    measure = engine._measure
    engine._measure = lambda width, height: measured.append((width, height)) or measure(width, height)
    rows = engine.calibrate(1024)
    assert len(rows) > 2 and len({tuple(row[2:]) for row in rows}) == 1
    assert len(measured) == 3  # the warm-up, then the first size twice (its second run is timed)
