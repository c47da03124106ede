"""What image intake may do: sources, caps and the remote allowlist."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from mmserve.media._address import HostAllowlist

__all__ = ["MediaPolicy"]


@dataclass(frozen=True)
class MediaPolicy:
    """Limits for turning an ``image_url`` into pixels.

    ``allow_hosts`` holds host names (matched against the URL's host) and
    addresses or CIDRs (matched against the addresses a host resolves to); they
    open targets that are otherwise refused as non-public. ``timeout_s`` is one
    deadline for a whole fetch, redirects included. ``media_root`` enables local
    files inside it; ``None`` refuses every local path.
    """

    remote_enabled: bool = True
    allow_hosts: tuple[str, ...] = ()
    max_bytes: int = 20_000_000
    timeout_s: float = 10.0
    max_redirects: int = 3
    media_root: Path | None = None
    max_pixels: int = 100_000_000
    max_images: int = 8

    def __post_init__(self) -> None:
        # Settings may hand over a list or a str path; keep the frozen value canonical.
        object.__setattr__(self, "allow_hosts", tuple(self.allow_hosts))
        HostAllowlist.parse(self.allow_hosts)  # a bad entry is a startup error, not a request error
        if self.media_root is not None:
            object.__setattr__(self, "media_root", Path(self.media_root))
        for name in ("max_bytes", "max_pixels"):
            if getattr(self, name) <= 0:
                raise ValueError(f"MediaPolicy.{name} must be positive")
        if self.timeout_s <= 0:
            raise ValueError("MediaPolicy.timeout_s must be positive")
        if self.max_redirects < 0 or self.max_images < 0:
            raise ValueError("MediaPolicy.max_redirects and max_images must not be negative")
