"""LLaVA-1.5: one 336-px CLIP view, 576 image tokens whatever the image.

The CLIP image processor resizes the shorter side to ``size.shortest_edge`` and
centre-crops ``crop_size`` (so a very long image loses its ends); the processor
writes one ``<image>`` per patch of the crop, plus ``num_additional_image_tokens``
(the CLS) unless the ``default`` feature strategy drops it. A smaller image buys nothing.
"""

from __future__ import annotations

from dataclasses import dataclass

from guards.families import register
from guards.families.base import Checkpoint, Geometry, Layout

__all__ = ["LlavaGeometry", "base_tokens", "crop_side"]


def crop_side(checkpoint: Checkpoint) -> int:
    """The side of the square view the CLIP image processor produces."""
    crop = checkpoint.setting("crop_size", default=None)
    if isinstance(crop, dict):
        return int(crop.get("height", crop.get("shortest_edge", 336)))
    if crop is not None:
        return int(crop)
    return int(checkpoint.section("vision_config").get("image_size", 336))


def base_tokens(checkpoint: Checkpoint, side: int) -> tuple[int, int]:
    """(tokens, patches) of one square view: the processor's count for the 336-px view."""
    patch = int(checkpoint.setting("patch_size", default=None) or checkpoint.section("vision_config").get("patch_size", 14))
    patches = (side // patch) ** 2
    tokens = patches + int(checkpoint.setting("num_additional_image_tokens", default=0))
    if checkpoint.setting("vision_feature_select_strategy", default="default") == "default":
        tokens -= 1
    return tokens, patches


@register("llava")
@dataclass(frozen=True)
class LlavaGeometry(Geometry):
    """Fixed resolution: the same tokens for every image."""

    side: int = 336
    tokens: int = 576
    patches: int = 576

    family = "llava"
    resizable = False

    @classmethod
    def from_checkpoint(cls, checkpoint: Checkpoint) -> LlavaGeometry:
        side = crop_side(checkpoint)
        tokens, patches = base_tokens(checkpoint, side)
        return cls(side=side, tokens=tokens, patches=patches)

    def layout(self, width: int, height: int) -> Layout:
        return Layout(size=(self.side, self.side), tokens=self.tokens, patches=self.patches)
