"""EXIF-aware, aspect-preserving resizing.

``fit_size`` is the arithmetic (never scales up); ``resize`` applies a size with a
high-quality filter. Apply ``exif_upright`` before measuring an image: a phone
photo stored sideways has its width and height swapped until then.
"""

from __future__ import annotations

import math

from PIL import Image, ImageOps

__all__ = ["exif_upright", "fit_size", "resize", "upright_size"]

# Pillow first reduces by an integer factor (fast, box filter) while the image is
# more than this many times the target, then finishes with LANCZOS.
REDUCING_GAP = 3.0

# EXIF orientations 5-8 rotate by 90 degrees: width and height swap.
_SWAPPING_ORIENTATIONS = {5, 6, 7, 8}
_ORIENTATION_TAG = 0x0112


def fit_size(
    width: int,
    height: int,
    *,
    max_side: int,
    max_pixels: int | None = None,
    min_side: int = 1,
) -> tuple[int, int]:
    """Scale ``(width, height)`` down so the longer side is at most ``max_side``.

    With ``max_pixels`` the area is capped too. The aspect ratio is kept and the
    size never grows. ``min_side`` wins over both caps: the shorter side stays at
    least ``min(min_side, original shorter side)``, so very thin images keep their
    aspect ratio by keeping a longer long side.
    """
    if width < 1 or height < 1:
        raise ValueError(f"image size must be positive, got {width}x{height}")
    if max_side < 1:
        raise ValueError(f"max_side must be positive, got {max_side}")
    if max_pixels is not None and max_pixels < 1:
        raise ValueError(f"max_pixels must be positive, got {max_pixels}")
    scale = min(1.0, max_side / max(width, height))
    if max_pixels is not None:
        scale = min(scale, math.sqrt(max_pixels / (width * height)))
    short = min(width, height)
    scale = min(1.0, max(scale, min(min_side, short) / short))
    if scale >= 1.0:
        return width, height
    return (
        min(width, max(1, round(width * scale))),
        min(height, max(1, round(height * scale))),
    )


def resize(image: Image.Image, size: tuple[int, int]) -> Image.Image:
    """Resize to ``size`` with LANCZOS; returns ``image`` itself when the size already matches.

    Palette and 1-bit images are converted to RGB(A) first, since Pillow would
    otherwise resize them with nearest-neighbour.
    """
    width, height = size
    if width < 1 or height < 1:
        raise ValueError(f"target size must be positive, got {width}x{height}")
    if image.size == (width, height):
        return image
    if image.mode in ("P", "1"):
        image = image.convert("RGBA" if "transparency" in image.info else "RGB")
    return image.resize((width, height), Image.Resampling.LANCZOS, reducing_gap=REDUCING_GAP)


def upright_size(image: Image.Image) -> tuple[int, int]:
    """Width and height after EXIF orientation, read from the header without decoding pixels."""
    try:
        orientation = image.getexif().get(_ORIENTATION_TAG, 1)
    except Exception:  # noqa: BLE001 - a broken EXIF block must not make an image unusable
        orientation = 1
    width, height = image.size
    return (height, width) if orientation in _SWAPPING_ORIENTATIONS else (width, height)


def exif_upright(image: Image.Image) -> Image.Image:
    """Return the image turned as its EXIF orientation says (the image itself if already upright)."""
    upright = ImageOps.exif_transpose(image)
    return image if upright is None else upright
