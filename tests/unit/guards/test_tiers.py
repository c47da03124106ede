"""RAM tiers and the default budget."""

from __future__ import annotations

import pytest

from guards import DEFAULT_TIERS, GiB, MemoryReading, Tier, default_budget, tier_for


def test_linux_box_with_23_4_gib_lands_below_24():
    """A machine reporting 23.4 GiB gets the smallest tier (512 px, 3 min, 4 GiB headroom)."""
    tier = tier_for(int(23.4 * GiB))
    assert (tier.name, tier.max_image_side, tier.idle_timeout_s, tier.headroom_bytes) == ("<24GiB", 512, 180, 4 * GiB)


def test_24_gb_mac_lands_in_24_to_32_tier():
    """A "24 GB" Mac reports exactly 24 GiB and gets the 24-32 GiB tier (1024 px, 5 min, 8 GiB headroom)."""
    tier = tier_for(25769803776)
    assert (tier.name, tier.max_image_side, tier.idle_timeout_s, tier.headroom_bytes) == (
        "24-32GiB",
        1024,
        300,
        8 * GiB,
    )


def test_32_gib_gets_1280_px():
    """32 GiB starts images at 1280 px."""
    assert tier_for(32 * GiB).max_image_side == 1280


def test_64_gib_mac_lands_in_top_tier():
    """A 64 GiB Mac gets 1536 px, 10 min idle timeout and 20 GiB headroom."""
    tier = tier_for(64 * GiB)
    assert (tier.name, tier.max_image_side, tier.idle_timeout_s, tier.headroom_bytes) == ("64GiB+", 1536, 600, 20 * GiB)


def test_just_below_64_gib_stays_in_32_tier():
    """One byte under 64 GiB is still the 32-64 GiB tier."""
    assert tier_for(64 * GiB - 1).name == "32-64GiB"


@pytest.mark.parametrize("gib", [16, 8, 4])
def test_small_machines_get_512_px(gib):
    """16, 8 and 4 GiB machines all start images at 512 px."""
    assert tier_for(gib * GiB).max_image_side == 512


def test_custom_tiers_table_is_used():
    """A tiers table passed in replaces the defaults."""
    tiers = (Tier("big", 100, 2048, 60, 10), Tier("small", 0, 256, 30, 1))
    assert tier_for(150, tiers).name == "big" and tier_for(99, tiers).name == "small"


def test_tiers_without_a_zero_floor_refuse_small_machines():
    """A table that covers no tier for the given memory raises ValueError."""
    with pytest.raises(ValueError, match="no tier"):
        tier_for(GiB, (Tier("big", 8 * GiB, 512, 60, 0),))


def test_default_tiers_are_ordered_from_largest():
    """DEFAULT_TIERS lists tiers from the most memory to the least, ending at zero."""
    minimums = [tier.min_total_bytes for tier in DEFAULT_TIERS]
    assert minimums == sorted(minimums, reverse=True) and minimums[-1] == 0


def reading(total_gib: float, available_gib: float) -> MemoryReading:
    return MemoryReading("metal", int(total_gib * GiB), int(available_gib * GiB))


def test_budget_keeps_tier_headroom_free():
    """A 64 GiB machine with everything free gets 64 - 20 = 44 GiB."""
    assert default_budget(reading(64, 64), tier_for(64 * GiB)) == 44 * GiB


def test_budget_on_24_gib_mac_is_16_gib():
    """A 24 GiB machine keeps 8 GiB free and gets 16 GiB."""
    assert default_budget(reading(24, 24), tier_for(24 * GiB)) == 16 * GiB


def test_budget_never_exceeds_available_memory():
    """Memory used by others is not counted: the budget is at most what is available."""
    assert default_budget(reading(64, 30), tier_for(64 * GiB)) == 30 * GiB


def test_budget_floor_is_a_quarter_of_memory():
    """On a 4 GiB machine the headroom would leave nothing; the floor keeps 1 GiB."""
    assert default_budget(reading(4, 4), tier_for(4 * GiB)) == 1 * GiB


def test_every_tier_lets_requests_ask_for_more_than_it_starts_at():
    """Each default tier's ceiling (detail "high") is above its starting side."""
    for tier in DEFAULT_TIERS:
        assert tier.ceiling_side > tier.max_image_side


def test_a_tier_without_a_ceiling_allows_its_starting_side():
    """ceiling_image_side 0: requests may ask for no more than the tier's side."""
    assert Tier("t", 0, 640, 60, 0).ceiling_side == 640
