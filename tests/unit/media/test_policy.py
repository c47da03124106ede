"""MediaPolicy validation."""

from __future__ import annotations

from pathlib import Path

import pytest

from mmserve.media import MediaPolicy


def test_defaults_match_the_documented_caps() -> None:
    """The default policy allows remote fetches and caps bytes, pixels, images and redirects."""
    policy = MediaPolicy()
    assert (policy.remote_enabled, policy.max_bytes, policy.max_pixels, policy.max_images, policy.max_redirects) == (
        True,
        20_000_000,
        100_000_000,
        8,
        3,
    )


def test_media_root_given_as_string_becomes_a_path() -> None:
    """Settings may pass the root as a string."""
    assert MediaPolicy(media_root="/srv/media").media_root == Path("/srv/media")  # type: ignore[arg-type]


def test_bad_allow_hosts_entry_fails_at_construction() -> None:
    """A malformed allowlist entry is caught at startup, not per request."""
    with pytest.raises(ValueError, match="allow_hosts"):
        MediaPolicy(allow_hosts=("10.0.0.0/33",))


@pytest.mark.parametrize("field", ["max_bytes", "max_pixels", "timeout_s"])
def test_non_positive_caps_are_rejected(field: str) -> None:
    """Zero or negative byte, pixel and time caps are configuration errors."""
    with pytest.raises(ValueError, match=field):
        MediaPolicy(**{field: 0})
