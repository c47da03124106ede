"""Llama 3.2 Vision (Mllama): one ``<|image|>`` token in the prompt; tiles read by cross-attention.

The processor picks the canvas of 560-px tiles (at most ``max_image_tiles``, in the
arrangements 1x1 .. 4x1) that needs the smallest upscale, or failing that the least
downscale (the smaller canvas on a tie), resizes the image to fit it (sides clipped
between one tile and the canvas, aspect kept) and pads. The prompt holds a single
``<|image|>`` id per image whatever the size; the encoder runs over every tile slot
(``max_image_tiles``, padded) of 1600 patches plus a class token, and its output enters
the text model through cross-attention, not the prompt: the KV memory it costs is
``tiles x 1601`` per cross-attention layer, which ``tokens`` does not express.
Fewer tiles come only from a smaller image; the processor takes no per-call options
through ``prepare_inputs``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from guards.families import register
from guards.families.base import Checkpoint, Geometry, Layout

__all__ = ["MllamaGeometry"]


@register("mllama")
@dataclass(frozen=True)
class MllamaGeometry(Geometry):
    """Tile side, tile budget and patch side."""

    tile: int = 560
    max_tiles: int = 4
    patch_size: int = 14

    family = "mllama"

    @classmethod
    def from_checkpoint(cls, checkpoint: Checkpoint) -> MllamaGeometry:
        size = checkpoint.setting("size", default={}) or {}
        vision = checkpoint.section("vision_config")
        return cls(
            tile=int(size.get("height", vision.get("image_size", 560))),
            max_tiles=int(checkpoint.setting("max_image_tiles", default=vision.get("max_num_tiles", 4))),
            patch_size=int(vision.get("patch_size", 14)),
        )

    def canvas(self, width: int, height: int) -> tuple[int, int]:
        """(width, height) of the tile canvas the processor chooses."""
        canvases = [
            (w * self.tile, h * self.tile)
            for w in range(1, self.max_tiles + 1)
            for h in range(1, self.max_tiles + 1)
            if w * h <= self.max_tiles
        ]
        scales = [min(cw / width, ch / height) for cw, ch in canvases]
        upscales = [s for s in scales if s >= 1]
        chosen = min(upscales) if upscales else max(scales)
        return min((c for c, s in zip(canvases, scales) if s == chosen), key=lambda c: c[0] * c[1])

    def layout(self, width: int, height: int) -> Layout:
        canvas_w, canvas_h = self.canvas(width, height)
        target_w = min(max(width, self.tile), canvas_w)
        target_h = min(max(height, self.tile), canvas_h)
        if target_w / width < target_h / height:
            size = (target_w, min(math.floor(height * target_w / width) or 1, target_h))
        else:
            size = (min(math.floor(width * target_h / height) or 1, target_w), target_h)
        per_tile = (self.tile // self.patch_size) ** 2 + 1
        return Layout(size=size, tokens=1, patches=self.max_tiles * per_tile)

    def tiles(self, width: int, height: int) -> int:
        """Real (unpadded) tiles: what the cross-attention K/V covers, ``tiles x 1601`` positions."""
        canvas_w, canvas_h = self.canvas(width, height)
        return (canvas_w // self.tile) * (canvas_h // self.tile)
