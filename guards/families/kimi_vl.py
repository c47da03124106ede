"""Kimi-VL: native-resolution 14-px patches, merged 2x2, within a patch budget.

mlx-vlm 0.7.10's processor scales an image down (never up) when it has more than
``in_token_limit`` whole 14-px patches, by ``sqrt(limit / patches)`` with the sides
truncated, then center-crops each side to a multiple of 28 (the merged cell). One
``<|media_pad|>`` token per merged cell. It always uses the defaults (14 px, 4096
patches, 2x2): it reads them from config.json's ``vision_config`` as attributes of a
plain dict, which never has them, and a checkpoint's preprocessor settings are ignored.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from guards.families import register
from guards.families.base import Checkpoint, Geometry, Layout

__all__ = ["KimiVLGeometry"]


@register("kimi_vl")
@dataclass(frozen=True)
class KimiVLGeometry(Geometry):
    """The processor's constants: patch side, patch budget and merge kernel."""

    patch_size: int = 14
    in_token_limit: int = 4096
    merge: tuple[int, int] = (2, 2)

    family = "kimi_vl"

    @classmethod
    def from_checkpoint(cls, checkpoint: Checkpoint) -> KimiVLGeometry:
        return cls()  # see the module docstring: mlx-vlm 0.7.10 ignores the checkpoint's values

    @property
    def max_aspect_ratio(self) -> float:
        """Beyond this a side reaches 512 patches within the budget, which the processor refuses."""
        return 512**2 / self.in_token_limit

    def snap(self, width: int, height: int) -> tuple[int, int]:
        """The processor's own scale and crop, so that it changes nothing more."""
        patch = self.patch_size
        if (width // patch) * (height // patch) > self.in_token_limit:
            scale = math.sqrt(self.in_token_limit / ((width // patch) * (height // patch)))
            width, height = int(width * scale), int(height * scale)
        cell_w, cell_h = self.merge[1] * patch, self.merge[0] * patch
        return max(width - width % cell_w, cell_w), max(height - height % cell_h, cell_h)

    def layout(self, width: int, height: int) -> Layout:
        size = self.snap(width, height)
        patches = (size[0] // self.patch_size) * (size[1] // self.patch_size)
        return Layout(size=size, tokens=patches // (self.merge[0] * self.merge[1]), patches=patches)
