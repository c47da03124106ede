"""Qwen3-VL: Qwen2-VL's rule on a 32-px grid (16-px patches merged 2x2) between 256x256 and 4096x4096 pixels.

The processor rounds each side to a multiple of 32, then scales the area down to
``size.longest_edge`` pixels or up to ``size.shortest_edge`` pixels (the real
checkpoints: 16777216 and 65536); one token per 32x32 cell, wrapped in
``<|vision_start|>`` ... ``<|vision_end|>``. mlx-vlm's processor reads the patch size
with a default of 16 where Qwen2-VL's defaults to 14.
"""

from __future__ import annotations

from dataclasses import dataclass

from guards.families import register
from guards.families.base import Checkpoint
from guards.families.qwen2_vl import QwenGeometry
from guards.vision import VisionSpec

__all__ = ["Qwen3Geometry"]


@register("qwen3_vl", "qwen3_vl_moe")
@dataclass(frozen=True)
class Qwen3Geometry(QwenGeometry):
    """Qwen2-VL's geometry with Qwen3-VL's defaults."""

    spec: VisionSpec = VisionSpec(patch_size=16, min_pixels=65536, max_pixels=16777216)

    family = "qwen3_vl"

    @classmethod
    def from_checkpoint(cls, checkpoint: Checkpoint) -> Qwen3Geometry:
        return cls(VisionSpec.from_processor_config(checkpoint.image_settings, default_patch_size=16))
