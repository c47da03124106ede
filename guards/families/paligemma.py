"""PaliGemma / PaliGemma 2: one fixed-size SigLIP view (224, 448 or 896 px), every patch a token.

The image processor resizes to ``size`` without keeping the aspect ratio; the
processor prepends ``image_seq_length`` ``<image>`` tokens ((side / 14)^2: 256, 1024
or 4096), then ``<bos>``, the prompt and a newline. A smaller image buys nothing.
"""

from __future__ import annotations

from dataclasses import dataclass

from guards.families import register
from guards.families.base import Checkpoint, Geometry, Layout

__all__ = ["PaliGemmaGeometry"]


@register("paligemma")
@dataclass(frozen=True)
class PaliGemmaGeometry(Geometry):
    """Fixed resolution: the same tokens for every image."""

    view: tuple[int, int] = (224, 224)
    tokens: int = 256
    patches: int = 256

    family = "paligemma"
    resizable = False

    @classmethod
    def from_checkpoint(cls, checkpoint: Checkpoint) -> PaliGemmaGeometry:
        vision = checkpoint.section("vision_config")
        image_size = int(vision.get("image_size", 224))
        size = checkpoint.setting("size", default={}) or {}
        view = (int(size.get("width", image_size)), int(size.get("height", image_size)))
        patch = int(vision.get("patch_size", 14))
        patches = (view[0] // patch) * (view[1] // patch)
        tokens = checkpoint.setting("image_seq_length", default=None)
        if tokens is None:
            tokens = checkpoint.section("text_config").get("num_image_tokens", patches)
        return cls(view=view, tokens=int(tokens), patches=patches)

    def layout(self, width: int, height: int) -> Layout:
        return Layout(size=self.view, tokens=self.tokens, patches=self.patches)
