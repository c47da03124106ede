"""Molmo: overlapping 336-px crops (up to ``max_crops``) plus a global view, pooled 2x2.

The processor picks the smallest grid of crops whose 224-px windows (24 patches less
the 4-patch overlap margins on each side) hold the image, less the 112-px margins,
without shrinking it — or, when every grid would shrink it, the grid that shrinks it
least — then resizes and pads the image to that grid. The global view is 12x12 = 144
``<im_patch>`` tokens; the crops together are ``(8 * rows + 4) x (8 * columns + 4)``
more. Every row of tokens ends in an ``<im_col>`` (the size-dependent extra tokens);
``<im_start>`` / ``<im_end>`` around each of the two parts are the constant wrapper.
A smaller image gets fewer crops.
"""

from __future__ import annotations

from dataclasses import dataclass

from guards.families import register
from guards.families.base import Checkpoint, Geometry, Layout

__all__ = ["MolmoGeometry"]


@register("molmo")
@dataclass(frozen=True)
class MolmoGeometry(Geometry):
    """Crop budget, crop side, patch side, overlap margins and the global view's token grid."""

    max_crops: int = 12
    crop: int = 336
    patch_size: int = 14
    margins: tuple[int, int] = (4, 4)
    global_tokens: tuple[int, int] = (12, 12)

    family = "molmo"

    @classmethod
    def from_checkpoint(cls, checkpoint: Checkpoint) -> MolmoGeometry:
        return cls(
            max_crops=int(checkpoint.setting("max_crops", default=12)),
            crop=int((checkpoint.setting("base_image_input_size", default=[336, 336]))[0]),
            patch_size=int(checkpoint.setting("image_patch_size", default=14)),
            margins=tuple(checkpoint.setting("overlap_margins", default=[4, 4])),
            global_tokens=(
                int(checkpoint.setting("image_token_length_w", default=12)),
                int(checkpoint.setting("image_token_length_h", default=12)),
            ),
        )

    @property
    def window_patches(self) -> int:
        return self.crop // self.patch_size - sum(self.margins)

    def tiling(self, width: int, height: int) -> tuple[int, int]:
        """(rows, columns) of crops: the processor's ``select_tiling``."""
        margin = self.patch_size * sum(self.margins)
        window = self.window_patches * self.patch_size
        h, w = height - margin, width - margin
        tilings = sorted(
            (
                (i, j)
                for i in range(1, self.max_crops + 1)
                for j in range(1, self.max_crops + 1)
                if i * j <= self.max_crops
            ),
            key=lambda t: (t[0] * t[1], t[0]),
        )
        scales = [min(i * window / h if h else float("inf"), j * window / w if w else float("inf")) for i, j in tilings]
        if all(scale < 1 for scale in scales):
            return tilings[max(range(len(scales)), key=lambda k: (scales[k], -k))]
        return tilings[min(range(len(scales)), key=lambda k: (scales[k] if scales[k] >= 1 else 10e9, k))]

    def layout(self, width: int, height: int) -> Layout:
        rows, columns = self.tiling(width, height)
        margin = sum(self.margins)
        token_rows = (rows * self.window_patches + margin + 1) // 2
        token_columns = (columns * self.window_patches + margin + 1) // 2
        global_w, global_h = self.global_tokens
        side = self.crop // self.patch_size
        return Layout(
            size=(
                columns * self.window_patches * self.patch_size + margin * self.patch_size,
                rows * self.window_patches * self.patch_size + margin * self.patch_size,
            ),
            tokens=global_w * global_h + token_rows * token_columns,
            patches=(rows * columns + 1) * side * side,
            extra_tokens=global_h + token_rows,
        )
