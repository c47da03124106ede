"""Vision tokens by the processor's own rules (Qwen2-VL / Qwen2.5-VL family).

``smart_resize`` replicates ``_smart_resize_image`` of mlx-vlm 0.7.10's
``Qwen3VLImageProcessor`` (used for qwen2.5-vl with ``patch_size=14``) exactly:
round each side to a multiple of ``patch_size * merge_size``, then scale down to
``max_pixels`` (floor) or up to ``min_pixels`` (ceil), and refuse aspect ratios
above 200. Python's ``round`` (half to even) is part of that contract.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

from guards.errors import AspectRatioError

__all__ = ["MAX_ASPECT_RATIO", "VisionSpec", "patches", "smart_resize", "vision_tokens"]

MAX_ASPECT_RATIO = 200


@dataclass(frozen=True)
class VisionSpec:
    """The image processor's geometry. Defaults: the Qwen2.5-VL checkpoints' values."""

    patch_size: int = 14
    merge_size: int = 2
    temporal_patch_size: int = 2
    min_pixels: int = 3136
    max_pixels: int = 12845056

    def __post_init__(self) -> None:
        for name in ("patch_size", "merge_size", "temporal_patch_size", "min_pixels", "max_pixels"):
            if getattr(self, name) < 1:
                raise ValueError(f"VisionSpec.{name} must be positive")
        if self.min_pixels > self.max_pixels:
            raise ValueError("VisionSpec.min_pixels must not exceed max_pixels")

    @property
    def factor(self) -> int:
        """Side lengths are multiples of this: ``patch_size * merge_size`` (28 for Qwen2.5-VL)."""
        return self.patch_size * self.merge_size

    @classmethod
    def from_processor_config(cls, config: Mapping, *, default_patch_size: int = 14) -> VisionSpec:
        """Build a spec from a checkpoint's ``preprocessor_config.json`` dict.

        Reads keys the way mlx-vlm 0.7.10 does (``size.shortest_edge`` /
        ``size.longest_edge``, overridden by ``min_pixels`` / ``max_pixels``); keys
        that are absent take the processor class's defaults (56*56 and
        14*14*4*1280), not the Qwen2.5-VL checkpoint values.
        """
        size = config.get("size") or {}
        min_pixels = 56 * 56
        max_pixels = 14 * 14 * 4 * 1280
        if size.get("shortest_edge") is not None:
            min_pixels = size["shortest_edge"]
        if size.get("longest_edge") is not None:
            max_pixels = size["longest_edge"]
        if config.get("min_pixels") is not None:
            min_pixels = config["min_pixels"]
        if config.get("max_pixels") is not None:
            max_pixels = config["max_pixels"]
        return cls(
            patch_size=int(config.get("patch_size", default_patch_size)),
            merge_size=int(config.get("merge_size", 2)),
            temporal_patch_size=int(config.get("temporal_patch_size", 2)),
            min_pixels=int(min_pixels),
            max_pixels=int(max_pixels),
        )


def _check_size(width: int, height: int) -> None:
    if width < 1 or height < 1:
        raise ValueError(f"image size must be positive, got {width}x{height}")


def smart_resize(width: int, height: int, spec: VisionSpec = VisionSpec()) -> tuple[int, int]:
    """Return the ``(width, height)`` the processor resizes an image of this size to.

    Raises AspectRatioError when the longer side is more than 200 times the shorter.
    """
    _check_size(width, height)
    if max(height, width) / min(height, width) > MAX_ASPECT_RATIO:
        raise AspectRatioError(width, height, MAX_ASPECT_RATIO)
    factor = spec.factor
    h_bar = round(height / factor) * factor
    w_bar = round(width / factor) * factor
    if h_bar * w_bar > spec.max_pixels:
        beta = math.sqrt((height * width) / spec.max_pixels)
        h_bar = max(factor, math.floor(height / beta / factor) * factor)
        w_bar = max(factor, math.floor(width / beta / factor) * factor)
    elif h_bar * w_bar < spec.min_pixels:
        beta = math.sqrt(spec.min_pixels / (height * width))
        h_bar = math.ceil(height * beta / factor) * factor
        w_bar = math.ceil(width * beta / factor) * factor
    return w_bar, h_bar


def patches(width: int, height: int, spec: VisionSpec = VisionSpec()) -> int:
    """Patches the vision encoder attends over for one image (before merging)."""
    resized_w, resized_h = smart_resize(width, height, spec)
    return (resized_h // spec.patch_size) * (resized_w // spec.patch_size)


def vision_tokens(width: int, height: int, spec: VisionSpec = VisionSpec()) -> int:
    """Language-model tokens one image becomes: patches / merge_size**2."""
    return patches(width, height, spec) // spec.merge_size**2
