"""The family registry, the plan with a family's geometry, and the per-request counts where none is trusted."""

from __future__ import annotations

import pytest

from guards import Calibration, ImageRequest, ModelMemory, VisionCost, plan_image, plan_request
from guards.families import Checkpoint, Measured, families, geometry_for

QWEN = {"config": {"model_type": "qwen2_5_vl"}, "preprocessor": {"min_pixels": 3136, "max_pixels": 12845056}}
GEMMA = {
    "config": {"model_type": "gemma3", "mm_tokens_per_image": 256, "vision_config": {"image_size": 896}},
    "preprocessor": {"size": {"height": 896, "width": 896}, "image_seq_length": 256},
    "processor": {"image_seq_length": 256},
}
MODEL = ModelMemory(weights_bytes=1 << 30, kv_bytes_per_token=1024, context_length=32768, vision=VisionCost(1e6, 0, 0))


def test_every_family_named_in_the_issue_has_a_geometry():
    """Each vision family mmserve serves is found by its checkpoint's model_type."""
    named = {"qwen2_vl", "qwen2_5_vl", "qwen3_vl", "gemma3", "paligemma", "llava", "llava_next", "pixtral"}
    named |= {"mistral3", "idefics3", "smolvlm", "internvl_chat", "deepseek_vl_v2"}
    assert named <= set(families())


def test_an_unknown_family_has_no_geometry():
    """A model_type without a module gets None, for the server to count with the processor."""
    assert geometry_for({"config": {"model_type": "no_such_family"}}) is None


def test_the_wrapper_is_part_of_every_images_prompt_tokens():
    """The tokens a processor adds around each image are planned with it."""
    geometry = geometry_for(GEMMA).with_wrapper(6)
    planned = plan_image(1000, 800, max_side=1024, spec=geometry)
    assert (planned.tokens, planned.prompt_tokens) == (256, 262)


def test_a_fixed_resolution_family_is_sent_as_it_came():
    """A smaller image buys nothing for Gemma 3, so the guard does not shrink it and says so."""
    planned = plan_image(3000, 2000, max_side=512, spec=geometry_for(GEMMA))
    assert planned.resized == (3000, 2000) and planned.resizable is False and planned.seen == (896, 896)


def test_a_dynamic_family_is_fitted_to_the_max_side_and_snapped():
    """A Qwen image is fitted to the max side, then put on the processor's 28-px grid."""
    planned = plan_image(3000, 2000, max_side=1024, spec=geometry_for(Checkpoint(**QWEN)))
    assert max(planned.resized) <= 1036 and all(side % 28 == 0 for side in planned.resized)


def test_measured_counts_plan_the_prompt_without_a_geometry():
    """Where no geometry is trusted, the processor's counts for the sent size make the prompt."""
    measured = Measured(images={(3000, 2000): ((1024, 683), 700, 712)})
    plan = plan_request(
        text_tokens=20,
        images=[ImageRequest(3000, 2000)],
        max_tokens=10,
        model=MODEL,
        spec=measured,
        budget_bytes=8 << 30,
        held_bytes=0,
        max_image_side=1024,
    )
    (image,) = plan.images
    assert image.resized == (1024, 683) and plan.prompt_tokens == 20 + 712


def test_a_fixed_family_calibrates_to_a_constant():
    """Samples that all have the same patches give a flat cost at their largest measurement."""
    calibration = Calibration.fit([(896, 896, 4096, 100), (1000, 1000, 4096, 120), (2000, 2000, 4096, 110)])
    assert calibration.cost == VisionCost(120.0, 0.0, 0.0)


def test_planning_past_the_measured_range_adds_the_extrapolation_shortfall():
    """Beyond the largest measured image the curve is lifted by how far a fit without it fell short."""
    samples = [(0, 0, 100, 1_000), (0, 0, 400, 4_000), (0, 0, 900, 9_000), (0, 0, 1600, 40_000)]
    calibration = Calibration.fit(samples)
    assert calibration.extrapolation_margin(1600) == 1.0
    margin = calibration.extrapolation_margin(3000)
    assert margin > 2.0
    beyond = calibration.safe_cost(up_to_patches=3000).bytes_for(3000)
    assert beyond == pytest.approx(calibration.safe_cost().bytes_for(3000) * margin, abs=1)
