"""Qwen2-VL and Qwen2.5-VL: dynamic patches on a 28-px grid, merged 2x2 (``guards.vision``)."""

from __future__ import annotations

from dataclasses import dataclass

from guards.families import register
from guards.families.base import Checkpoint, Geometry, Layout
from guards.vision import MAX_ASPECT_RATIO, VisionSpec, smart_resize

__all__ = ["QwenGeometry"]


@register("qwen2_vl", "qwen2_5_vl")
@dataclass(frozen=True)
class QwenGeometry(Geometry):
    """Sides rounded to multiples of ``patch * merge`` within a pixel range; one token per merged cell."""

    spec: VisionSpec = VisionSpec()

    family = "qwen2_vl"
    max_aspect_ratio = MAX_ASPECT_RATIO

    @classmethod
    def from_checkpoint(cls, checkpoint: Checkpoint) -> QwenGeometry:
        return cls(VisionSpec.from_processor_config(checkpoint.image_settings))

    def layout(self, width: int, height: int) -> Layout:
        resized = smart_resize(width, height, self.spec)
        patches = (resized[0] // self.spec.patch_size) * (resized[1] // self.spec.patch_size)
        return Layout(size=resized, tokens=patches // self.spec.merge_size**2, patches=patches)

    def snap(self, width: int, height: int) -> tuple[int, int]:
        return smart_resize(width, height, self.spec)
