"""Pixtral and Mistral 3 (Mistral Small 3.1, Magistral Small): dynamic patches, a row break per row.

The processor scales an image down (never up) to fit ``size.longest_edge`` on both
sides (flooring each side), then rounds each side *up* to a whole number of cells of
``patch_size * spatial_merge_size`` pixels. Each cell is one ``[IMG]`` token; rows are
separated by ``[IMG_BREAK]`` and the image ends with ``[IMG_END]`` (the constant wrapper).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

from guards.families import register
from guards.families.base import Checkpoint, Geometry, Layout

__all__ = ["PixtralGeometry"]


def _side(value) -> int:
    """A patch size given as an int or as ``{"height": h, "width": w}`` (the real preprocessor's)."""
    if isinstance(value, Mapping):
        return int(value.get("height") or value.get("width"))
    return int(value)


@register("pixtral", "mistral3")
@dataclass(frozen=True)
class PixtralGeometry(Geometry):
    """``longest_edge`` caps both sides; ``patch_size`` pixels per patch; ``merge`` x ``merge`` patches per token."""

    longest_edge: int = 1024
    patch_size: int = 16
    merge: int = 1

    family = "pixtral"

    @classmethod
    def from_checkpoint(cls, checkpoint: Checkpoint) -> PixtralGeometry:
        """Read the settings where mlx-vlm 0.7.10's Pixtral / Mistral 3 processors read them.

        Mistral 3 takes the patch from ``vision_config.patch_size`` and the merge from
        config.json's ``spatial_merge_size``; Pixtral takes both from processor_config.json.
        """
        size = checkpoint.image_settings.get("size") or {}
        if isinstance(size, Mapping):
            longest = size.get("longest_edge") or max(size.get("height", 1024), size.get("width", 1024))
        else:
            longest = size
        processor = checkpoint.processor
        if checkpoint.model_type == "mistral3":
            patch = checkpoint.section("vision_config").get("patch_size") or processor.get("patch_size") or 16
            merge = checkpoint.config.get("spatial_merge_size") or processor.get("spatial_merge_size") or 1
        else:
            patch = processor.get("patch_size") or 16
            merge = processor.get("spatial_merge_size") or 1
        return cls(longest_edge=int(longest), patch_size=_side(patch), merge=int(merge))

    @property
    def cell(self) -> int:
        """Pixels per image token along a side: ``patch_size * merge``."""
        return self.patch_size * self.merge

    def _resize(self, width: int, height: int) -> tuple[int, int]:
        if width < 1 or height < 1:
            raise ValueError(f"image size must be positive, got {width}x{height}")
        ratio = max(height / self.longest_edge, width / self.longest_edge)
        if ratio > 1:
            height = int(math.floor(height / ratio))
            width = int(math.floor(width / ratio))
        cell = self.cell
        return ((width - 1) // cell + 1) * cell, ((height - 1) // cell + 1) * cell

    def layout(self, width: int, height: int) -> Layout:
        resized = self._resize(width, height)
        columns, rows = resized[0] // self.cell, resized[1] // self.cell
        patches = (resized[0] // self.patch_size) * (resized[1] // self.patch_size)
        return Layout(size=resized, tokens=columns * rows, patches=patches, extra_tokens=rows - 1)

    def snap(self, width: int, height: int) -> tuple[int, int]:
        return self._resize(width, height)
