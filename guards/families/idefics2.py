"""Idefics2: 64 perceiver latents per view; with splitting, four quarters plus the whole.

The processor (transformers' Idefics2 image processor) cuts the image into its four
quarters (at ``w // 2``, ``h // 2``) and keeps the whole when ``do_image_splitting``,
then resizes every view on its own: the longer side down to ``longest_edge`` (980) if
it is longer, keeping the aspect ratio (truncated), then each side up to at least
``shortest_edge`` (378). Views are padded to the largest and the SigLIP tower runs over
all of their 14-px patches. Every view is ``image_seq_len`` tokens whatever its size,
so shrinking saves encoder work (patches) but no tokens; ``<fake_token_around_image>``
separators are a constant wrapper. The processor takes no per-call image options.
"""

from __future__ import annotations

from dataclasses import dataclass

from guards.families import register
from guards.families.base import Checkpoint, Geometry, Layout

__all__ = ["Idefics2Geometry"]


@register("idefics2")
@dataclass(frozen=True)
class Idefics2Geometry(Geometry):
    """Resize bounds, splitting, tokens per view and the tower's patch side."""

    longest_edge: int = 980
    shortest_edge: int = 378
    splitting: bool = True
    view_tokens: int = 64
    patch_size: int = 14

    family = "idefics2"

    @classmethod
    def from_checkpoint(cls, checkpoint: Checkpoint) -> Idefics2Geometry:
        size = checkpoint.setting("size", default={}) or {}
        return cls(
            longest_edge=int(size.get("longest_edge", 980)),
            shortest_edge=int(size.get("shortest_edge", 378)),
            splitting=bool(checkpoint.setting("do_image_splitting", default=True)),
            view_tokens=int(checkpoint.setting("image_seq_len", default=64)),
            patch_size=int(checkpoint.section("vision_config").get("patch_size", 14)),
        )

    def resize(self, width: int, height: int) -> tuple[int, int]:
        """One view's size after the processor's resize."""
        ratio = width / height
        if width >= height and width > self.longest_edge:
            width, height = self.longest_edge, int(self.longest_edge / ratio)
        elif height > width and height > self.longest_edge:
            width, height = int(self.longest_edge * ratio), self.longest_edge
        return max(width, self.shortest_edge), max(height, self.shortest_edge)

    def views(self, width: int, height: int) -> list[tuple[int, int]]:
        """Every view's size after resizing: the four quarters, then the whole."""
        whole = self.resize(width, height)
        if not self.splitting:
            return [whole]
        mid_w, mid_h = width // 2, height // 2
        quarters = [(w, h) for h in (mid_h, height - mid_h) for w in (mid_w, width - mid_w)]
        return [self.resize(w, h) for w, h in quarters] + [whole]

    def snap(self, width: int, height: int) -> tuple[int, int]:
        """The processor's resize of the whole, which it then leaves as it is."""
        return self.resize(width, height)

    def layout(self, width: int, height: int) -> Layout:
        views = self.views(width, height)
        padded_w, padded_h = max(w for w, _ in views), max(h for _, h in views)
        grid = (padded_w // self.patch_size) * (padded_h // self.patch_size)
        return Layout(size=views[-1], tokens=len(views) * self.view_tokens, patches=len(views) * grid)
