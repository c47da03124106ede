"""Gemma 3: every image (and every pan-and-scan crop) becomes one 896-px view of 256 tokens.

The image processor resizes each view to ``size`` (896 x 896, aspect not kept); the
SigLIP tower's 64 x 64 patches are average-pooled to ``image_seq_length`` (256)
tokens. Pan-and-scan (``do_pan_and_scan`` in the preprocessor config; off in
google/gemma-3-*-it) adds 2 to ``pan_and_scan_max_num_crops`` crops of an image whose
sides differ by ``pan_and_scan_min_ratio_to_activate`` or more, each a full view with
its own ``<start_of_image>``...``<end_of_image>`` and a caption around them.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from guards.families import register
from guards.families.base import Checkpoint, Geometry, Layout

__all__ = ["Gemma3Geometry", "pan_and_scan_crops"]


def pan_and_scan_crops(width: int, height: int, *, min_crop: int, max_crops: int, min_ratio: float) -> int:
    """How many crops transformers' ``Gemma3ImageProcessor.pan_and_scan`` cuts (0: none)."""
    long_side, short_side = max(width, height), min(width, height)
    if long_side / short_side < min_ratio:
        return 0
    crops = min(math.floor(long_side / min_crop), math.floor(long_side / short_side + 0.5))
    crops = min(max_crops, max(2, crops))
    if min(math.ceil(long_side / crops), short_side) < min_crop:
        return 0
    return crops


@register("gemma3")
@dataclass(frozen=True)
class Gemma3Geometry(Geometry):
    """Fixed 896-px views; a smaller image buys nothing unless pan-and-scan is on (fewer crops).

    ``crop_caption_tokens`` and ``crop_separator_tokens`` are what the processor's
    "Here is the original image ... and here are some crops to help you see better ..."
    caption and the spaces between the crops' markers take in the tokenizer (measured
    like ``wrapper_tokens``; the defaults are an estimate for Gemma's tokenizer).
    """

    view: tuple[int, int] = (896, 896)
    tokens_per_view: int = 256
    patches_per_view: int = 4096
    pan_and_scan: bool = False
    min_crop: int = 256
    max_crops: int = 4
    min_ratio: float = 1.2
    crop_caption_tokens: int = 18
    crop_separator_tokens: int = 1

    family = "gemma3"

    @property
    def resizable(self) -> bool:  # type: ignore[override]
        return self.pan_and_scan

    @classmethod
    def from_checkpoint(cls, checkpoint: Checkpoint) -> Gemma3Geometry:
        size = checkpoint.setting("size", default={}) or {}
        vision = checkpoint.section("vision_config")
        image_size = int(vision.get("image_size", 896))
        patch = int(vision.get("patch_size", 14))
        tokens = checkpoint.setting("image_seq_length", "mm_tokens_per_image", default=256)
        return cls(
            view=(int(size.get("width", image_size)), int(size.get("height", image_size))),
            tokens_per_view=int(tokens),
            patches_per_view=(image_size // patch) ** 2,
            pan_and_scan=bool(checkpoint.setting("do_pan_and_scan", default=False)),
            min_crop=int(checkpoint.setting("pan_and_scan_min_crop_size", default=256)),
            max_crops=int(checkpoint.setting("pan_and_scan_max_num_crops", default=4)),
            min_ratio=float(checkpoint.setting("pan_and_scan_min_ratio_to_activate", default=1.2)),
        )

    def crops(self, width: int, height: int) -> int:
        """Pan-and-scan crops of an image of this size (0 when pan-and-scan is off)."""
        if not self.pan_and_scan:
            return 0
        return pan_and_scan_crops(
            width, height, min_crop=self.min_crop, max_crops=self.max_crops, min_ratio=self.min_ratio
        )

    def layout(self, width: int, height: int) -> Layout:
        crops = self.crops(width, height)
        extra = 0
        if crops:
            # Each crop is wrapped like the image itself; the caption and separators come once.
            extra = crops * self.wrapper_tokens + self.crop_caption_tokens + (crops - 1) * self.crop_separator_tokens
        views = 1 + crops
        return Layout(
            size=self.view,
            tokens=views * self.tokens_per_view,
            patches=views * self.patches_per_view,
            extra_tokens=extra,
        )
