"""Gemma 3n: every image is resized to 768x768 (no crops) and becomes 256 soft tokens.

The MobileNet-v5 tower downsamples 32-fold to a 24x24 grid, which its fusion adapter
pools to 16x16 = 256 tokens. The size is fixed, so a smaller image buys nothing; the
processor wraps the tokens in ``\\n\\n<start_of_image>`` ... ``<end_of_image>\\n\\n``
(a constant wrapper).
"""

from __future__ import annotations

from dataclasses import dataclass

from guards.families import register
from guards.families.base import Checkpoint, Geometry, Layout

__all__ = ["Gemma3nGeometry"]

DOWNSAMPLE = 32  # the tower's stride: stem and four stages, 2 each


@register("gemma3n")
@dataclass(frozen=True)
class Gemma3nGeometry(Geometry):
    """``size`` is the processor's fixed square; ``tokens`` the soft tokens per image."""

    size: tuple[int, int] = (768, 768)
    tokens: int = 256

    family = "gemma3n"
    resizable = False

    @classmethod
    def from_checkpoint(cls, checkpoint: Checkpoint) -> Gemma3nGeometry:
        size = checkpoint.setting("size", default={}) or {}
        tokens = checkpoint.setting("image_seq_length", "vision_soft_tokens_per_image", default=256)
        return cls(size=(int(size.get("width", 768)), int(size.get("height", 768))), tokens=int(tokens))

    def layout(self, width: int, height: int) -> Layout:
        grid = (self.size[0] // DOWNSAMPLE) * (self.size[1] // DOWNSAMPLE)
        return Layout(size=self.size, tokens=self.tokens, patches=grid)
