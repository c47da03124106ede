"""Calibration sizes and the Calibration record."""

from __future__ import annotations

import pytest

from guards import (
    Calibration,
    VisionCost,
    VisionSpec,
    calibration_sizes,
    patches,
    smart_resize,
)

SPEC = VisionSpec()


def test_sizes_span_floor_to_max_side():
    """Sizes go from 224 px up to the processor's size for the max side."""
    sizes = calibration_sizes(SPEC, 1024)
    assert sizes[0] == (224, 224) and sizes[-1] == smart_resize(1024, 1024, SPEC)


def test_sizes_are_on_the_processor_grid():
    """Every size is one the processor keeps as is."""
    assert all(smart_resize(*size, SPEC) == size for size in calibration_sizes(SPEC, 768))


def test_sizes_ascend_without_repeats():
    """Sizes strictly increase, so each measurement adds information."""
    sides = [w for w, _ in calibration_sizes(SPEC, 1024, count=7)]
    assert sides == sorted(set(sides))


def test_sizes_are_few():
    """The default is five sizes, to keep start-up cheap."""
    assert len(calibration_sizes(SPEC, 1024)) == 5


def test_sizes_need_three_points():
    """Fewer than three sizes cannot fit three coefficients."""
    with pytest.raises(ValueError, match="at least 3"):
        calibration_sizes(SPEC, 1024, count=2)


def _samples(cost: VisionCost, noise: tuple[float, ...]) -> list[tuple[int, int, int, int]]:
    rows = []
    for (w, h), factor in zip(calibration_sizes(SPEC, 1024), noise):
        p = patches(w, h, SPEC)
        rows.append((w, h, p, int(cost.bytes_for(p) * factor)))
    return rows


def test_fit_reports_max_relative_error():
    """max_rel_error is the worst |estimate - measured| / measured over the samples."""
    calibration = Calibration.fit(_samples(VisionCost(5e8, 0, 64), (1.0, 1.1, 0.95, 1.0, 1.05)))
    worst = max(abs(calibration.cost.bytes_for(p) - b) / b for _, _, p, b in calibration.samples)
    assert calibration.max_rel_error == pytest.approx(worst) and 0 < worst < 0.25


def test_safe_cost_covers_every_sample():
    """safe_cost is never below a measured sample."""
    calibration = Calibration.fit(_samples(VisionCost(5e8, 0, 64), (1.0, 1.1, 0.95, 1.0, 1.05)))
    safe = calibration.safe_cost()
    assert all(safe.bytes_for(p) >= b for _, _, p, b in calibration.samples)


def test_fit_accepts_patch_byte_pairs():
    """(patches, bytes) pairs work too, with width and height recorded as 0."""
    calibration = Calibration.fit([(1024, 10**9), (4096, 2 * 10**9), (9216, 5 * 10**9)])
    assert calibration.samples[0] == (0, 0, 1024, 10**9)


def test_round_trips_through_a_dict():
    """as_dict / from_dict give back an equal calibration."""
    calibration = Calibration.fit(_samples(VisionCost(5e8, 1e4, 64), (1.0, 1.02, 0.99, 1.0, 1.01)))
    assert Calibration.from_dict(calibration.as_dict()) == calibration
