"""Calibration of the vision cost curve from a few measured image encodes.

The vision worker encodes a handful of square images (``calibration_sizes``),
measures each one's extra peak memory with ``mx.reset_peak_memory`` /
``mx.get_peak_memory``, and fits ``c0 + c1*p + c2*p**2`` with ``Calibration.fit``.
Nothing here imports mlx; the measuring happens in the worker.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from guards.cost import VisionCost, fit_vision_cost
from guards.vision import VisionSpec, smart_resize

__all__ = ["Calibration", "calibration_sizes"]


def calibration_sizes(
    snap: VisionSpec | Callable[[int, int], tuple[int, int]],
    max_side: int,
    *,
    min_side: int = 224,
    count: int = 5,
) -> list[tuple[int, int]]:
    """Square sizes to measure, from ``min_side`` to ``max_side`` in geometric steps.

    ``snap`` gives the size the guard sends an image at (a family geometry's
    ``snap``; a ``VisionSpec`` means Qwen's ``smart_resize``), so the measured image
    is exactly the one planned. The largest is the tier's max side, the most the
    server will run; the fit needs at least three sizes where sizes differ in cost.
    """
    if isinstance(snap, VisionSpec):
        spec = snap

        def snap(width: int, height: int) -> tuple[int, int]:
            return smart_resize(width, height, spec)

    if count < 3:
        raise ValueError(f"count must be at least 3 to fit three coefficients, got {count}")
    if min_side < 1 or max_side < min_side:
        raise ValueError(f"need 1 <= min_side <= max_side, got {min_side} and {max_side}")
    sizes: list[tuple[int, int]] = []
    for index in range(count):
        side = round(min_side * (max_side / min_side) ** (index / (count - 1)))
        size = snap(side, side)
        if size not in sizes:
            sizes.append(size)
    return sizes


@dataclass(frozen=True)
class Calibration:
    """Measured samples ``(width, height, patches, peak_extra_bytes)`` and the curve fitted to them.

    ``max_rel_error`` is the largest ``|estimate - measured| / measured`` over the
    samples; ``safe_cost()`` lifts the curve so no sample is above it.
    """

    samples: tuple[tuple[int, int, int, int], ...]
    cost: VisionCost
    max_rel_error: float

    @classmethod
    def fit(cls, samples: Sequence[Sequence[int]]) -> Calibration:
        """Fit the cost curve to ``(width, height, patches, peak_extra_bytes)`` samples.

        Bare ``(patches, peak_extra_bytes)`` pairs are accepted too (width and height 0).
        """
        rows = tuple(tuple(int(x) for x in (row if len(row) == 4 else (0, 0, *row))) for row in samples)
        if any(len(row) != 4 for row in rows):
            raise ValueError("samples must be (width, height, patches, bytes) or (patches, bytes)")
        if len({p for _, _, p, _ in rows}) == 1:  # a fixed-resolution family: every image costs the same
            cost = VisionCost(float(max(b for *_, b in rows)), 0.0, 0.0)
        else:
            cost = fit_vision_cost([(p, b) for _, _, p, b in rows])
        errors = [abs(cost.bytes_for(p) - b) / b for _, _, p, b in rows]
        return cls(samples=rows, cost=cost, max_rel_error=max(errors))

    def safe_cost(self, *, up_to_patches: int | None = None) -> VisionCost:
        """The fitted curve scaled up just enough to cover every measured sample.

        Where the guard plans beyond the largest measured image (``up_to_patches``), the
        curve is lifted further by how far a fit without the largest sample fell short of
        it: extrapolating is never trusted to be closer than it was inside the range.
        """
        worst = max(b / self.cost.bytes_for(p) for _, _, p, b in self.samples)
        return self.cost.scaled(max(1.0, worst) * self.extrapolation_margin(up_to_patches))

    def extrapolation_margin(self, up_to_patches: int | None) -> float:
        """1.0 within the measured range; beyond it, the shortfall of the fit without the top sample."""
        top = max(p for _, _, p, _ in self.samples)
        if up_to_patches is None or up_to_patches <= top:
            return 1.0
        rest = [(p, b) for _, _, p, b in self.samples if p < top]
        if len({p for p, _ in rest}) < 2:
            return 1.25  # too few sizes to learn from: a fixed margin
        measured = max(b for _, _, p, b in self.samples if p == top)
        return max(1.0, measured / fit_vision_cost(rest).bytes_for(top))

    def as_dict(self) -> dict:
        """A JSON-ready dict, to send from the worker or keep on disk."""
        return {
            "samples": [list(row) for row in self.samples],
            "cost": {"c0": self.cost.c0, "c1": self.cost.c1, "c2": self.cost.c2},
            "max_rel_error": self.max_rel_error,
        }

    @classmethod
    def from_dict(cls, data: dict) -> Calibration:
        """Rebuild a calibration written by ``as_dict``."""
        cost = VisionCost(**{k: float(v) for k, v in data["cost"].items()})
        error = float(data["max_rel_error"])
        if not math.isfinite(error) or error < 0:
            raise ValueError(f"max_rel_error must be finite and non-negative, got {error}")
        return cls(
            samples=tuple(tuple(int(x) for x in row) for row in data["samples"]),  # type: ignore[misc]
            cost=cost,
            max_rel_error=error,
        )
