"""Bytes to an RGB picture, refusing what Pillow should never be asked to open.

Only the formats we support are tried, the pixel count is read from the header
and checked before any pixel data is decoded, and every mode Pillow may return
is brought to 8-bit RGB the way a viewer would show it.
"""

from __future__ import annotations

import io
from dataclasses import dataclass

from PIL import Image, ImageOps

from mmserve.errors import ImageError

__all__ = ["SUPPORTED_FORMATS", "DecodedImage", "decode_image", "raise_pillow_pixel_limit"]

SUPPORTED_FORMATS = ("PNG", "JPEG", "WEBP", "GIF", "BMP", "TIFF")

_WHITE = (255, 255, 255)
_ALPHA_MODES = frozenset({"RGBA", "RGBa", "LA", "La", "PA"})
_SIXTEEN_BIT_MODES = frozenset({"I;16", "I;16L", "I;16B", "I;16N"})


@dataclass(frozen=True)
class DecodedImage:
    """A decoded image, ready for the vision model.

    ``image`` is RGB with EXIF orientation applied (first frame of an
    animation); it may be shared through the cache, so treat it as read-only.
    ``width``/``height`` are after orientation; ``sha256`` is of the source
    bytes; ``format`` is Pillow's name for the source format ("PNG", "JPEG", ...).
    """

    image: Image.Image
    width: int
    height: int
    sha256: str
    format: str


def raise_pillow_pixel_limit(max_pixels: int) -> None:
    """Lift Pillow's process-wide bomb limit to at least ``max_pixels``.

    Our own header check enforces ``max_pixels`` exactly; Pillow's lower default
    would otherwise warn about, or refuse, images the policy accepts.
    """
    if Image.MAX_IMAGE_PIXELS is not None and Image.MAX_IMAGE_PIXELS < max_pixels:
        Image.MAX_IMAGE_PIXELS = max_pixels


def decode_image(data: bytes, *, sha256: str, max_pixels: int, param: str) -> DecodedImage:
    """Decode ``data`` to RGB; ``ImageError`` naming ``param`` if it cannot or must not be.

    Blocking and CPU-bound: call it from a worker thread.
    """
    try:
        with Image.open(io.BytesIO(data), formats=SUPPORTED_FORMATS) as opened:
            width, height = opened.size
            if width * height > max_pixels:
                raise _too_many_pixels(max_pixels, param)
            source_format = opened.format or "unknown"
            opened.load()
            image = _to_rgb(_oriented(opened))
    except ImageError:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        # Pillow's own checks (GIF frames, TIFF tiles) and, under warnings-as-errors, its warning.
        raise _too_many_pixels(max_pixels, param) from None
    except Exception as exc:
        # Untrusted bytes can fail anywhere inside a plugin; every such failure is the client's image.
        raise ImageError(f"{param}: could not decode image", param=param) from exc
    return DecodedImage(image=image, width=image.width, height=image.height, sha256=sha256, format=source_format)


def _too_many_pixels(max_pixels: int, param: str) -> ImageError:
    return ImageError(f"{param}: image has more than {max_pixels} pixels", param=param)


def _oriented(image: Image.Image) -> Image.Image:
    try:
        return ImageOps.exif_transpose(image)
    except Exception:  # noqa: BLE001 - any EXIF failure means "keep the stored orientation"
        # A damaged EXIF block should not cost a decodable picture; keep it as stored.
        return image.copy()


def _to_rgb(image: Image.Image) -> Image.Image:
    if image.mode in _SIXTEEN_BIT_MODES or image.mode in ("I", "F"):
        return _to_eight_bit(image).convert("RGB")
    if image.mode == "P" or "transparency" in image.info:
        image = image.convert("RGBA") if "transparency" in image.info else image.convert("RGB")
    if image.mode in _ALPHA_MODES:
        rgba = image.convert("RGBA")
        background = Image.new("RGB", rgba.size, _WHITE)
        background.paste(rgba, mask=rgba.getchannel("A"))
        return background
    return image.convert("RGB")


def _to_eight_bit(image: Image.Image) -> Image.Image:
    """Map high-bit-depth grayscale onto 0..255 instead of letting convert("L") clip it."""
    if image.mode in _SIXTEEN_BIT_MODES:
        image = image.convert("I")
        low, high = 0.0, 65535.0
    else:
        low, high = image.getextrema()
        if image.mode == "I" and low >= 0 and high <= 65535:
            low, high = 0.0, 65535.0  # 16-bit samples stored as 32-bit
        elif image.mode == "F" and low >= 0 and high <= 1:
            low, high = 0.0, 1.0  # normalised floats
    scale = 255 / (high - low) if high > low else 0.0
    # Half a step of offset rounds to nearest instead of truncating.
    return image.point(lambda value: value * scale - low * scale + 0.5).convert("L")
