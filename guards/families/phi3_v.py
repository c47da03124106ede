"""Phi-3 / Phi-3.5-vision: HD tiles of 336 px plus a global view, 144 tokens each.

The processor scales an image (up or down) to the widest grid of 336-px tiles that
keeps its aspect ratio within ``num_crops`` tiles, pads to whole tiles, and adds the
whole image at 336x336. Each view becomes 12x12 = 144 tokens after a 2x2 merge of
the 24x24 patches; a learnt separator ends every row of 12 tokens across the tile
grid (12 per tile row, plus 12 for the global view's rows) and one more sits between
the tiles and the global view. All of these are image-token positions (negative ids).
The tile grid depends on the aspect ratio only, so a smaller image buys nothing, and
the processor takes no per-call options.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from guards.families import register
from guards.families.base import Checkpoint, Geometry, Layout

__all__ = ["Phi3VisionGeometry"]

TILE = 336
PATCH = 14


@register("phi3_v")
@dataclass(frozen=True)
class Phi3VisionGeometry(Geometry):
    """``num_crops`` bounds the tile grid; ``tile_tokens`` is each view's merged tokens (144)."""

    num_crops: int = 4
    tile_tokens: int = 144

    family = "phi3_v"
    resizable = False

    @property
    def max_aspect_ratio(self) -> float:  # a thinner image resizes to zero rows
        return float(self.num_crops * TILE)

    @classmethod
    def from_checkpoint(cls, checkpoint: Checkpoint) -> Phi3VisionGeometry:
        return cls(
            num_crops=int(checkpoint.setting("num_crops", default=4)),
            tile_tokens=int(checkpoint.setting("num_img_tokens", default=144)),
        )

    def tiled_size(self, width: int, height: int) -> tuple[int, int]:
        """The padded HD size: the widest ``scale`` tiles across with ``scale * rows <= num_crops``."""
        transposed = width < height
        if transposed:
            width, height = height, width
        ratio = width / height
        scale = 1
        while scale * math.ceil(scale / ratio) <= self.num_crops:
            scale += 1
        scale -= 1
        new_width = int(scale * TILE)
        new_height = int(new_width / ratio)
        size = (math.ceil(new_width / TILE) * TILE, math.ceil(new_height / TILE) * TILE)
        return (size[1], size[0]) if transposed else size

    def layout(self, width: int, height: int) -> Layout:
        size = self.tiled_size(width, height)
        columns, rows = size[0] // TILE, size[1] // TILE
        side = math.isqrt(self.tile_tokens)  # tokens per row of a view
        tokens = (rows * columns + 1) * self.tile_tokens + 1 + (rows + 1) * side
        patches = (rows * columns + 1) * (TILE // PATCH) ** 2
        return Layout(size=size, tokens=tokens, patches=patches)
