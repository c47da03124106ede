"""DeepSeek-VL2: a global view plus local tiles on the candidate resolution that fits the image best.

The processor (mlx-vlm's ``DeepseekVLV2Processor``) picks among ``candidate_resolutions``
(grids of ``image_size``-px tiles) the one that keeps most of the image's pixels when
the image is scaled to fit it (never counting more than the image has), then the one
wasting least; it pads the image onto that grid and cuts the tiles, and pads the whole
image onto one global view. With ``h = ceil(image_size / patch / downsample)`` features
a side, the prompt repeats the image token ``h * (h + 1)`` times for the global view
(a newline feature per row), once for the view separator, and
``rows * h * (cols * h + 1)`` times for the tiles: all of them are image-token ids.

A smaller image fits a smaller grid, so shrinking buys tiles; mlx-vlm tiles only
requests with at most two images (more get the global view and one tile each).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from guards.families import register
from guards.families.base import Checkpoint, Geometry, Layout

__all__ = ["DeepseekVL2Geometry"]

CANDIDATES = ((384, 384),)


@register("deepseek_vl_v2")
@dataclass(frozen=True)
class DeepseekVL2Geometry(Geometry):
    """Global view + the best candidate grid of tiles; newline and separator features are image tokens."""

    candidates: tuple[tuple[int, int], ...] = CANDIDATES
    patch_size: int = 14
    downsample_ratio: int = 2

    family = "deepseek_vl_v2"

    @classmethod
    def from_checkpoint(cls, checkpoint: Checkpoint) -> DeepseekVL2Geometry:
        candidates = checkpoint.setting("candidate_resolutions") or CANDIDATES
        projector = checkpoint.section("projector_config")
        return cls(
            candidates=tuple((int(w), int(h)) for w, h in candidates),
            patch_size=int(checkpoint.setting("patch_size") or checkpoint.section("vision_config").get("patch_size", 14)),
            downsample_ratio=int(checkpoint.processor.get("downsample_ratio") or projector.get("downsample_ratio", 2)),
        )

    @property
    def tile(self) -> int:
        return self.candidates[0][0]

    def best_resolution(self, width: int, height: int) -> tuple[int, int]:
        """The candidate (width, height) ``select_best_resolution`` picks for the image."""
        best, best_effective, best_wasted = self.candidates[0], 0, float("inf")
        for cand_w, cand_h in self.candidates:
            scale = min(cand_w / width, cand_h / height)
            effective = min(int(width * scale) * int(height * scale), width * height)
            wasted = cand_w * cand_h - effective
            if effective > best_effective or (effective == best_effective and wasted < best_wasted):
                best, best_effective, best_wasted = (cand_w, cand_h), effective, wasted
        return best

    def layout(self, width: int, height: int) -> Layout:
        grid_w, grid_h = self.best_resolution(width, height)
        cols, rows = grid_w // self.tile, grid_h // self.tile
        side = math.ceil((self.tile // self.patch_size) / self.downsample_ratio)
        tokens = side * (side + 1) + 1 + (rows * side) * (cols * side + 1)
        views = 1 + rows * cols
        return Layout(size=(grid_w, grid_h), tokens=tokens, patches=views * (self.tile // self.patch_size) ** 2)
