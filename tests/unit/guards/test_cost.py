"""KV size, the vision cost curve and its fit."""

from __future__ import annotations

import random

import pytest

from guards import (
    DEFAULT_VISION_COST,
    GiB,
    KVLayout,
    KVWindow,
    ModelMemory,
    VisionCost,
    fit_vision_cost,
    kv_bytes_per_token,
    replicas_that_fit,
)

# The shared/gpu README: Qwen2.5-VL-3B, float32 vision tower, extra peak over weights.
README = [(1024, 2.5), (9216, 6.4), (16384, 19.0)]


def test_kv_bytes_per_token_counts_keys_and_values():
    """Qwen2.5-VL-3B (36 layers, 2 KV heads, head_dim 128, bf16) takes 36,864 bytes per token."""
    assert kv_bytes_per_token(36, 2, 128, 2) == 36864


def test_kv_bytes_per_token_rejects_zero():
    """A zero dimension is a ValueError."""
    with pytest.raises(ValueError, match="num_kv_heads"):
        kv_bytes_per_token(36, 0, 128, 2)


def test_model_memory_kv_bytes_scales_with_tokens():
    """ModelMemory.kv_bytes is per-token bytes times tokens."""
    model = ModelMemory(weights_bytes=GiB, kv_bytes_per_token=1000, context_length=4096)
    assert model.kv_bytes(300) == 300_000


def test_vision_cost_is_quadratic_in_patches():
    """bytes_for evaluates c0 + c1*p + c2*p**2."""
    assert VisionCost(100.0, 2.0, 0.5).bytes_for(10) == 100 + 20 + 50


def test_vision_cost_of_no_image_is_zero():
    """Zero patches cost nothing, not c0."""
    assert VisionCost(100.0, 0.0, 0.0).bytes_for(0) == 0


def test_vision_cost_rejects_negative_coefficients():
    """A negative coefficient is a ValueError."""
    with pytest.raises(ValueError, match="c1"):
        VisionCost(1.0, -1.0, 1.0)


def test_fit_recovers_exact_coefficients():
    """Noise-free samples give back the coefficients they were made from."""
    truth = VisionCost(2e9, 3e4, 60.0)
    samples = [(p, truth.bytes_for(p)) for p in (256, 1024, 4096, 9216, 16384)]
    fitted = fit_vision_cost(samples)
    assert fitted.c0 == pytest.approx(truth.c0, rel=1e-6)
    assert fitted.c1 == pytest.approx(truth.c1, rel=1e-4)
    assert fitted.c2 == pytest.approx(truth.c2, rel=1e-6)


def test_fit_on_noisy_samples_is_within_25_percent():
    """With +-10 % measurement noise, estimates stay within 25 % inside the calibrated range."""
    truth = VisionCost(1.5e9, 1e5, 64.0)
    rng = random.Random(7)
    grid = [256, 576, 1024, 2304, 4096, 6400, 9216, 12544, 16384]
    samples = [(p, int(truth.bytes_for(p) * rng.uniform(0.9, 1.1))) for p in grid]
    fitted = fit_vision_cost(samples)
    for p in range(256, 16385, 97):
        assert fitted.bytes_for(p) == pytest.approx(truth.bytes_for(p), rel=0.25)


def test_fit_keeps_coefficients_non_negative():
    """The README's three points want a negative c1; the fit drops it to zero instead."""
    fitted = fit_vision_cost([(p, int(gb * 1e9)) for p, gb in README])
    assert min(fitted.c0, fitted.c1, fitted.c2) >= 0 and fitted.c1 == 0


def test_fit_minimises_relative_error():
    """A small sample and a huge one are fitted equally well in relative terms."""
    fitted = fit_vision_cost([(p, int(gb * 1e9)) for p, gb in README])
    for p, gb in README:
        assert fitted.bytes_for(p) == pytest.approx(gb * 1e9, rel=0.15)


def test_fit_needs_two_distinct_patch_counts():
    """One patch count cannot fix a curve: ValueError."""
    with pytest.raises(ValueError, match="two or more"):
        fit_vision_cost([(1024, 10**9), (1024, 2 * 10**9)])


def test_fit_rejects_non_positive_samples():
    """Zero or negative bytes are a ValueError."""
    with pytest.raises(ValueError, match="positive"):
        fit_vision_cost([(1024, 0), (4096, 10**9)])


@pytest.mark.parametrize("unit", [10**9, 2**30])
def test_default_cost_covers_every_readme_point(unit):
    """The default curve is at or above each README measurement, read as GB or GiB."""
    for p, size in README:
        assert DEFAULT_VISION_COST.bytes_for(p) >= size * unit


def test_default_cost_overshoots_by_at_most_a_third():
    """The default is conservative but not wildly so: at most +33 % over the README points."""
    for p, gb in README:
        assert DEFAULT_VISION_COST.bytes_for(p) <= 1.33 * gb * 1e9


def test_replicas_fill_half_the_budget_at_most():
    """Copies are added while everything resident stays within half the budget."""
    fit = lambda wanted, resident: replicas_that_fit(  # noqa: E731
        wanted, replica_bytes=2 * GiB, resident_bytes=resident, budget_bytes=20 * GiB
    )
    assert fit(4, 2 * GiB) == 4  # 8 GiB resident in all
    assert fit(4, 5 * GiB) == 3  # a vision model besides the first copy: 9 GiB
    assert fit(2, 9 * GiB) == 1  # a second copy would make 11 GiB
    assert fit(1, 0) == 1


def test_one_copy_runs_whatever_the_memory():
    """The first copy is never refused here: whether it fits is the request plans' business."""
    assert replicas_that_fit(4, replica_bytes=30 * GiB, resident_bytes=30 * GiB, budget_bytes=20 * GiB) == 1


def test_replicas_reject_nonsense():
    """Asking for no copy at all, or negative sizes, is a ValueError."""
    with pytest.raises(ValueError, match="wanted"):
        replicas_that_fit(0, replica_bytes=1, resident_bytes=1, budget_bytes=1)
    with pytest.raises(ValueError, match="non-negative"):
        replicas_that_fit(2, replica_bytes=-1, resident_bytes=1, budget_bytes=1)


def test_kv_layout_rounds_up_to_the_allocation_step():
    """A cache that allocates 256 tokens at a time holds 512 tokens' worth at 311 tokens."""
    layout = KVLayout(bytes_per_token=100, step=256)
    assert layout.kv_bytes(311) == 512 * 100
    assert layout.kv_bytes(512) == 512 * 100
    assert layout.kv_bytes(0) == 0


def test_kv_layout_bounds_sliding_windows_and_adds_fixed_state():
    """Window layers stop growing at their window; fixed state is paid once per sequence."""
    layout = KVLayout(bytes_per_token=10, per_sequence_bytes=5000, windows=(KVWindow(512, 50),), step=256)
    assert layout.kv_bytes(256) == 5000 + 10 * 256 + 50 * 511
    assert layout.kv_bytes(4096) == 5000 + 10 * 4096 + 50 * 512
    assert KVLayout.from_dict(layout.as_dict()) == layout


def test_kv_layout_tokens_for_is_the_inverse_of_kv_bytes():
    """tokens_for(bytes) is the longest sequence whose cache fits those bytes."""
    layout = KVLayout(bytes_per_token=10, per_sequence_bytes=5000, windows=(KVWindow(512, 50),), step=256)
    for capacity in (5000, 20000, 100_000, 1_000_000):
        tokens = layout.tokens_for(capacity)
        assert tokens == -1 or layout.kv_bytes(tokens) <= capacity
        assert layout.kv_bytes(max(tokens + 1, 1)) > capacity
    assert layout.tokens_for(33110) == 256
    constant = KVLayout(bytes_per_token=0, per_sequence_bytes=100)
    assert constant.tokens_for(99) == -1 and constant.tokens_for(100) > 10**9


def test_model_memory_plans_with_its_layout():
    """A ModelMemory with a layout prices the cache by it, not by the flat per-token figure."""
    layout = KVLayout(bytes_per_token=10, windows=(KVWindow(100, 90),))
    model = ModelMemory(weights_bytes=GiB, kv_bytes_per_token=100, context_length=4096, kv_layout=layout)
    assert model.kv_bytes(1000) == 10 * 1000 + 90 * 100
