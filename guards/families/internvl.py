"""InternVL 2.5 / 3 (``internvl_chat``, OpenGVLab's format; ``internvl``, the transformers format).

The processor (mlx-vlm's ``dynamic_preprocess``) picks, among the grids of
``image_size``-px tiles with ``min_dynamic_patch`` to ``max_dynamic_patch`` tiles, the one
whose aspect ratio is closest to the image's (on a tie the larger grid when the image's
area is nearer to it), resizes the image to that grid and cuts it; with more than one
tile it adds a thumbnail of the whole image. Every tile and the thumbnail become
``num_image_token`` ``<IMG_CONTEXT>`` tokens (256 for 448-px tiles of 14-px patches
shuffled 2x2), all between one ``<img>`` ... ``</img>`` pair (the wrapper).

The grid depends on the aspect ratio; the size only breaks ties (a square photo gets
2x2 tiles, a square thumbnail 1), and the processor takes no per-request tile limit
in mlx-vlm 0.7.10 (``prepare_inputs`` forwards none of ``max_num`` / ``size``).
"""

from __future__ import annotations

from dataclasses import dataclass

from guards.families import register
from guards.families.base import Checkpoint, Geometry, Layout

__all__ = ["InternVLGeometry"]


def _side(value, default: int) -> int:
    """A size given as an int or a [height, width] list."""
    if isinstance(value, (list, tuple)):
        value = value[0] if value else None
    return int(value) if value is not None else default


@register("internvl_chat", "internvl")
@dataclass(frozen=True)
class InternVLGeometry(Geometry):
    """A grid of ``tile``-px tiles by aspect ratio, ``tokens_per_tile`` each, plus a thumbnail when split."""

    tile: int = 448
    patch_size: int = 14
    tokens_per_tile: int = 256
    min_tiles: int = 1
    max_tiles: int = 12
    thumbnail: bool = True

    family = "internvl"

    @classmethod
    def from_checkpoint(cls, checkpoint: Checkpoint) -> InternVLGeometry:
        config = checkpoint.config
        vision = checkpoint.section("vision_config")
        tile = _side(config.get("force_image_size") or vision.get("image_size"), 448)
        patch = _side(vision.get("patch_size"), 14)
        ratio = float(config.get("downsample_ratio", 0.5))
        tokens = checkpoint.processor.get("num_image_token") or checkpoint.processor.get("image_seq_length")
        if checkpoint.model_type == "internvl_chat" and checkpoint.processor.get("image_size"):
            tile = int(checkpoint.processor["image_size"])
        tokens = int(tokens or int((tile // patch) ** 2 * ratio**2))
        return cls(
            tile=tile,
            patch_size=patch,
            tokens_per_tile=tokens,
            min_tiles=int(config.get("min_dynamic_patch", 1)),
            max_tiles=int(config.get("max_dynamic_patch", 12)),
            thumbnail=bool(config.get("use_thumbnail", True)),
        )

    def grid(self, width: int, height: int) -> tuple[int, int]:
        """(columns, rows) of tiles, chosen exactly as ``find_closest_aspect_ratio`` does."""
        aspect = width / height
        ratios = {
            (i, j)
            for n in range(self.min_tiles, self.max_tiles + 1)
            for i in range(1, n + 1)
            for j in range(1, n + 1)
            if self.min_tiles <= i * j <= self.max_tiles
        }
        area = width * height
        best, best_diff = (1, 1), float("inf")
        for ratio in sorted(ratios, key=lambda r: r[0] * r[1]):
            diff = abs(aspect - ratio[0] / ratio[1])
            if diff < best_diff:
                best, best_diff = ratio, diff
            elif diff == best_diff:
                tile_area = self.tile * self.tile
                if abs(area - tile_area * ratio[0] * ratio[1]) < abs(area - tile_area * best[0] * best[1]):
                    best = ratio
        return best

    def layout(self, width: int, height: int) -> Layout:
        cols, rows = self.grid(width, height)
        views = cols * rows + (1 if self.thumbnail and cols * rows > 1 else 0)
        per_view = (self.tile // self.patch_size) ** 2
        return Layout(
            size=(cols * self.tile, rows * self.tile), tokens=views * self.tokens_per_tile, patches=views * per_view
        )
