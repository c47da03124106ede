"""LFM2-VL / LFM2.5-VL: one dynamic view of 64-256 tokens, or 512-px tiles plus a thumbnail.

mlx-vlm 0.7.10's own image processor (it replaces transformers', and forces tiling on
with 2-10 tiles and a thumbnail whatever the checkpoint ships) works on 16-px patches
unshuffled 2x2, so on a 32-px grid. An image whose sides rounded to that grid exceed
``max_pixels_tolerance`` x ``max_image_tokens`` cells is resized to the tile grid
closest to its aspect ratio (ties go to the larger grid while the image covers more
than half of it) and cut into 512-px tiles of 256 tokens, each after an
``<|img_row_R_col_C|>`` marker, then a ``<|img_thumbnail|>`` and the thumbnail. Any
other image is one view resized to the 32-px grid within 64..256 tokens (Qwen-style
rounding). Each view is padded to ``max_num_patches`` patches for the tower.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from guards.families import register
from guards.families.base import Checkpoint, Geometry, Layout

__all__ = ["Lfm2VlGeometry"]


@register("lfm2_vl", "lfm2-vl")
@dataclass(frozen=True)
class Lfm2VlGeometry(Geometry):
    """The processor's token budget, tolerance, tile grid bounds and patch settings."""

    patch_size: int = 16
    downsample: int = 2
    min_tokens: int = 64
    max_tokens: int = 256
    tolerance: float = 2.0
    tile: int = 512
    min_tiles: int = 2
    max_tiles: int = 10

    family = "lfm2_vl"

    @classmethod
    def from_checkpoint(cls, checkpoint: Checkpoint) -> Lfm2VlGeometry:
        # Tiling on, 2..10 tiles and the thumbnail are forced by mlx-vlm, not read.
        return cls(
            patch_size=int(checkpoint.setting("encoder_patch_size", default=16)),
            downsample=int(checkpoint.setting("downsample_factor", default=2)),
            min_tokens=int(checkpoint.setting("min_image_tokens", default=64)),
            max_tokens=int(checkpoint.setting("max_image_tokens", default=256)),
            tolerance=float(checkpoint.setting("max_pixels_tolerance", default=2.0)),
            tile=int(checkpoint.setting("tile_size", default=512)),
        )

    @property
    def cell(self) -> int:
        return self.patch_size * self.downsample

    @property
    def view_patches(self) -> int:
        """The padded patch rows of every view (``max_num_patches``)."""
        return max(self.max_tokens * self.downsample**2, (self.tile // self.patch_size) ** 2)

    def resize(self, width: int, height: int) -> tuple[int, int]:
        """One view's size: sides rounded to the 32-px grid, scaled into the token range."""
        cell, unit = self.cell, self.cell**2
        h_bar, w_bar = max(cell, round(height / cell) * cell), max(cell, round(width / cell) * cell)
        if h_bar * w_bar > self.max_tokens * unit:
            beta = math.sqrt(height * width / (self.max_tokens * unit))
            h_bar = max(cell, math.floor(height / beta / cell) * cell)
            w_bar = max(cell, math.floor(width / beta / cell) * cell)
        elif h_bar * w_bar < self.min_tokens * unit:
            beta = math.sqrt(self.min_tokens * unit / (height * width))
            h_bar = math.ceil(height * beta / cell) * cell
            w_bar = math.ceil(width * beta / cell) * cell
        return w_bar, h_bar

    def tiled(self, width: int, height: int) -> bool:
        """Whether the processor cuts this image into tiles."""
        cell = self.cell
        h_bar, w_bar = (
            max(self.patch_size, round(height / cell) * cell),
            max(self.patch_size, round(width / cell) * cell),
        )
        return h_bar * w_bar > self.max_tokens * cell**2 * self.tolerance

    def grid(self, width: int, height: int) -> tuple[int, int]:
        """(columns, rows) of tiles: the closest aspect ratio, ties to the larger grid while it is covered."""
        ratios = sorted(
            {
                (w, h)
                for n in range(self.min_tiles, self.max_tiles + 1)
                for w in range(1, n + 1)
                for h in range(1, n + 1)
                if self.min_tiles <= w * h <= self.max_tiles
            },
            key=lambda grid: grid[0] * grid[1],
        )
        best, best_diff = (1, 1), float("inf")
        for columns, rows in ratios:
            diff = abs(width / height - columns / rows)
            if diff < best_diff:
                best, best_diff = (columns, rows), diff
            elif diff == best_diff and width * height > 0.5 * self.tile * self.tile * columns * rows:
                best = (columns, rows)
        return best

    def snap(self, width: int, height: int) -> tuple[int, int]:
        """A single view is sent at the processor's own size; a tiled image as it is."""
        return (width, height) if self.tiled(width, height) else self.resize(width, height)

    def _tokens(self, width: int, height: int) -> int:
        rows, columns = height // self.patch_size, width // self.patch_size
        return math.ceil(rows / self.downsample) * math.ceil(columns / self.downsample)

    def layout(self, width: int, height: int) -> Layout:
        view = self.resize(width, height)
        if not self.tiled(width, height):
            return Layout(size=view, tokens=self._tokens(*view), patches=self.view_patches)
        columns, rows = self.grid(width, height)
        tiles = columns * rows
        per_tile = self._tokens(self.tile, self.tile)
        return Layout(
            size=(columns * self.tile, rows * self.tile),
            tokens=tiles * per_tile + self._tokens(*view),
            patches=(tiles + 1) * self.view_patches,
            extra_tokens=tiles + 1,  # the row/column markers and the thumbnail marker
        )
