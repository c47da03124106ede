"""LLaVA-NeXT (LLaVA-1.6): anyres tiles of a 336-px CLIP tower, a base view, newline tokens.

The image processor picks the grid resolution of ``image_grid_pinpoints`` that keeps
most of the image's pixels and wastes least (``select_best_resolution``), resizes the
image into it keeping the aspect ratio, pads it and cuts it into 336-px tiles, plus a
336-px view of the whole. The processor counts the base view's 576 tokens, the tiles'
24 x 24 features each with the padded rows (or columns) cut off, and one newline
feature per remaining row, all as ``<image>`` tokens. A smaller image can choose a
smaller grid (2 tiles instead of 4 once the image fits 336 x 672 pixels) and loses padding
features; below that it gains only the unpadding.
"""

from __future__ import annotations

from dataclasses import dataclass

from guards.families import register
from guards.families.base import Checkpoint, Geometry, Layout
from guards.families.llava import base_tokens, crop_side

__all__ = ["LlavaNextGeometry", "select_best_resolution"]

DEFAULT_PINPOINTS = ((336, 672), (672, 336), (672, 672), (1008, 336), (336, 1008))


def select_best_resolution(height: int, width: int, pinpoints) -> tuple[int, int]:
    """transformers' ``select_best_resolution``: the (height, width) pinpoint to resize into."""
    best, best_effective, best_wasted = None, 0, float("inf")
    for pin_height, pin_width in pinpoints:
        scale = min(pin_width / width, pin_height / height)
        effective = min(int(width * scale) * int(height * scale), width * height)
        wasted = pin_width * pin_height - effective
        if effective > best_effective or (effective == best_effective and wasted < best_wasted):
            best, best_effective, best_wasted = (pin_height, pin_width), effective, wasted
    return best


@register("llava_next")
@dataclass(frozen=True)
class LlavaNextGeometry(Geometry):
    """Tiles by best-fit grid; tokens = base view + unpadded tile features + one newline per row."""

    side: int = 336
    patch: int = 14
    base: int = 576
    pinpoints: tuple[tuple[int, int], ...] = DEFAULT_PINPOINTS

    family = "llava_next"

    @classmethod
    def from_checkpoint(cls, checkpoint: Checkpoint) -> LlavaNextGeometry:
        side = crop_side(checkpoint)
        base, _ = base_tokens(checkpoint, side)
        patch = int(checkpoint.setting("patch_size", default=None) or checkpoint.section("vision_config").get("patch_size", 14))
        pinpoints = checkpoint.setting("image_grid_pinpoints", default=DEFAULT_PINPOINTS)
        return cls(side=side, patch=patch, base=base, pinpoints=tuple(tuple(int(v) for v in p) for p in pinpoints))

    def grid(self, width: int, height: int) -> tuple[int, int]:
        """(rows, columns) of tiles for an image of this size."""
        best_height, best_width = select_best_resolution(height, width, self.pinpoints)
        return best_height // self.side, best_width // self.side

    def layout(self, width: int, height: int) -> Layout:
        rows, cols = self.grid(width, height)
        per_side = self.side // self.patch
        feature_rows, feature_cols = rows * per_side, cols * per_side
        # The processor's _get_unpadded_features: cut the padding the aspect-preserving resize left.
        if width / height > feature_cols / feature_rows:
            kept = int(round(height * (feature_cols / width), 7))
            feature_rows -= (feature_rows - kept) // 2 * 2
        else:
            kept = int(round(width * (feature_rows / height), 7))
            feature_cols -= (feature_cols - kept) // 2 * 2
        tokens = self.base + feature_rows * feature_cols + feature_rows
        views = 1 + rows * cols
        return Layout(size=(cols * self.side, rows * self.side), tokens=tokens, patches=views * per_side**2)
