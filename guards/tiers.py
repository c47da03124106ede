"""RAM tiers: the default policy, chosen by how much memory the machine has.

Thresholds are in GiB (2**30 bytes), which is what machines report: a "24 GB" Mac
has 24 GiB and lands in the 24-32 GiB tier; a Linux box showing 23.4 GiB lands
below it; a 64 GiB Mac lands in the top tier. A "64 GB" Linux server that shows
62.8 GiB lands in the 32-64 tier, which errs on the safe side.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from guards.probe import MemoryReading
from guards.units import GiB

__all__ = ["DEFAULT_TIERS", "Tier", "default_budget", "tier_for"]


@dataclass(frozen=True)
class Tier:
    """Defaults for machines with at least ``min_total_bytes`` of memory.

    ``max_image_side`` is where image plans start (pixels, longest side);
    ``idle_timeout_s`` is how long an idle model stays loaded; ``headroom_bytes``
    is kept free for the OS and other programs. ``ceiling_image_side`` is the most
    a request may ask an image to start at (``detail: "high"``, ``mmserve.max_image_side``);
    0: no more than ``max_image_side``.
    """

    name: str
    min_total_bytes: int
    max_image_side: int
    idle_timeout_s: float
    headroom_bytes: int
    ceiling_image_side: int = 0

    @property
    def ceiling_side(self) -> int:
        """The largest starting side a request may ask for on this tier."""
        return max(self.ceiling_image_side, self.max_image_side)


# Sides from the Qwen2.5-VL-3B calibration (docs/guards.md, "Choosing the sides"): on each
# tier's reference machine (16, 24, 32, 64 GiB) with 4-bit weights, ``max_image_side`` is the
# largest side at which four 2550x3300 pages (2048 tokens out each) fit the default budget
# together, ``ceiling_image_side`` the largest at which one does. Below 24 GiB the start stays
# at 512 px: 8 GiB machines and CPU boxes (where a page's cost is time, not memory) land there.
DEFAULT_TIERS: tuple[Tier, ...] = (
    Tier("64GiB+", 64 * GiB, max_image_side=1536, idle_timeout_s=600, headroom_bytes=20 * GiB, ceiling_image_side=2048),
    Tier(
        "32-64GiB", 32 * GiB, max_image_side=1280, idle_timeout_s=300, headroom_bytes=8 * GiB, ceiling_image_side=2048
    ),
    Tier(
        "24-32GiB", 24 * GiB, max_image_side=1024, idle_timeout_s=300, headroom_bytes=8 * GiB, ceiling_image_side=1792
    ),
    Tier("<24GiB", 0, max_image_side=512, idle_timeout_s=180, headroom_bytes=4 * GiB, ceiling_image_side=1536),
)

# Whatever the headroom says, the budget is never below this share of memory.
BUDGET_FLOOR_FRACTION = 0.25


def tier_for(total_bytes: int, tiers: Sequence[Tier] = DEFAULT_TIERS) -> Tier:
    """Return the tier with the largest ``min_total_bytes`` not above ``total_bytes``."""
    eligible = [tier for tier in tiers if tier.min_total_bytes <= total_bytes]
    if not eligible:
        raise ValueError(f"no tier covers {total_bytes} bytes; give one tier min_total_bytes=0")
    return max(eligible, key=lambda tier: tier.min_total_bytes)


def default_budget(reading: MemoryReading, tier: Tier, *, floor_fraction: float = BUDGET_FLOOR_FRACTION) -> int:
    """Bytes the server may use in all (weights included) when no budget is configured.

    ``min(available, max(total - headroom, floor_fraction * total))``: the tier's
    headroom stays free, the floor keeps small machines usable, and memory that
    is already in use by others is never counted.
    """
    if not 0 <= floor_fraction <= 1:
        raise ValueError(f"floor_fraction must be in [0, 1], got {floor_fraction}")
    total = reading.total_bytes
    cap = max(total - tier.headroom_bytes, int(total * floor_fraction))
    return max(0, min(reading.available_bytes, cap))
