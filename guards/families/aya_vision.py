"""Aya Vision: 364-px tiles on the grid closest to the image's aspect ratio, plus a thumbnail.

The processor (transformers' GotOcr2 image processor with ``crop_to_patches``) picks,
among grids of ``min_patches``..``max_patches`` tiles, the one whose columns/rows ratio
is closest to the image's; on a tie it takes the larger grid while the image's area
exceeds half the grid's pixel area. It resizes the image to that grid and adds a
364-px thumbnail when there is more than one tile. Every tile is 13x13 = 169
``<|IMG_PATCH|>`` tokens (14-px patches, 2x2 pixel shuffle) after a ``TILE_<i>``
marker (``TILE_GLOBAL`` for the thumbnail); the markers of the numbered tiles are the
size-dependent extra tokens. The grid follows the aspect ratio, so a smaller image
gets fewer tiles only where the ratio ties (e.g. near-square images). ``max_patches``
cannot be lowered per call: mlx-vlm 0.7.10's ``prepare_inputs`` forwards only
options the processor names in its signature (and Qwen's pixel bounds).
"""

from __future__ import annotations

from dataclasses import dataclass

from guards.families import register
from guards.families.base import Checkpoint, Geometry, Layout

__all__ = ["AyaVisionGeometry"]


@register("aya_vision")
@dataclass(frozen=True)
class AyaVisionGeometry(Geometry):
    """Tile side, tile-count bounds, patch side and pixel-shuffle factor.

    ``tile_marker_tokens(i)`` is how many tokens ``TILE_<i>`` takes: ``TILE`` and ``_``
    and one per digit by default (the worker can measure it with the real tokenizer).
    """

    tile: int = 364
    min_tiles: int = 1
    max_tiles: int = 12
    patch_size: int = 14
    downsample: int = 2

    family = "aya_vision"

    @classmethod
    def from_checkpoint(cls, checkpoint: Checkpoint) -> AyaVisionGeometry:
        size = checkpoint.setting("size", default={}) or {}
        return cls(
            tile=int(size.get("height", 364)),
            min_tiles=int(checkpoint.setting("min_patches", default=1)),
            max_tiles=int(checkpoint.setting("max_patches", "max_splits_per_img", default=12)),
            patch_size=int(checkpoint.section("vision_config").get("patch_size", 14)),
            downsample=int(checkpoint.config.get("downsample_factor", 2)),
        )

    def tile_marker_tokens(self, index: int) -> int:
        return 2 + len(str(index))

    def grid(self, width: int, height: int) -> tuple[int, int]:
        """(columns, rows): the processor's ``get_optimal_tiled_canvas``."""
        arrangements = sorted(
            (
                (columns, rows)
                for columns in range(1, self.max_tiles + 1)
                for rows in range(1, self.max_tiles + 1)
                if self.min_tiles <= columns * rows <= self.max_tiles
            ),
            key=lambda grid: grid[0] * grid[1],
        )
        ratio, area = width / height, width * height
        best, best_diff = (1, 1), float("inf")
        for columns, rows in arrangements:
            diff = abs(ratio - columns / rows)
            if diff < best_diff:
                best, best_diff = (columns, rows), diff
            elif diff == best_diff and area > 0.5 * self.tile * self.tile * columns * rows:
                best = (columns, rows)
        return best

    def layout(self, width: int, height: int) -> Layout:
        columns, rows = self.grid(width, height)
        tiles = columns * rows + (1 if columns * rows > 1 else 0)
        per_tile = (self.tile // (self.patch_size * self.downsample)) ** 2
        markers = sum(self.tile_marker_tokens(i) for i in range(1, tiles))
        return Layout(
            size=(columns * self.tile, rows * self.tile),
            tokens=tiles * per_tile,
            patches=tiles * (self.tile // self.patch_size) ** 2,
            extra_tokens=markers,
        )
