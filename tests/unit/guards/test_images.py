"""Aspect-preserving fit, resizing and EXIF orientation."""

from __future__ import annotations

import io

import pytest
from PIL import Image

from guards import exif_upright, fit_size, resize, upright_size


def test_fit_caps_the_longer_side():
    """4000x3000 fit to 1024 becomes 1024x768."""
    assert fit_size(4000, 3000, max_side=1024) == (1024, 768)


def test_fit_never_scales_up():
    """An image smaller than the cap keeps its size."""
    assert fit_size(640, 480, max_side=1024) == (640, 480)


def test_fit_caps_pixels_when_asked():
    """max_pixels caps the area too, keeping the aspect ratio."""
    width, height = fit_size(2000, 1000, max_side=4096, max_pixels=500_000)
    assert width * height <= 500_000 + width + height and abs(width / height - 2) < 0.01


def test_fit_keeps_wide_aspect():
    """4000x400 (10:1) fit to 1024 stays 10:1."""
    assert fit_size(4000, 400, max_side=1024) == (1024, 102)


def test_fit_keeps_tall_aspect():
    """300x6000 (1:20) fit to 1024 stays 1:20."""
    assert fit_size(300, 6000, max_side=1024) == (51, 1024)


def test_min_side_wins_over_max_side_for_thin_images():
    """With min_side, a 6000x30 strip keeps its shape by keeping a longer long side."""
    assert fit_size(6000, 30, max_side=512, min_side=28) == (5600, 28)


def test_min_side_never_scales_up():
    """min_side cannot make an image larger than it was."""
    assert fit_size(600, 10, max_side=100, min_side=28) == (600, 10)


def test_fit_never_returns_a_zero_side():
    """A 3-px side shrinks to 1 px, not 0, and the long side keeps the aspect ratio."""
    assert fit_size(1000, 3, max_side=100) == (333, 1)


def test_fit_rejects_non_positive_sizes():
    """Zero sizes and caps are ValueErrors."""
    with pytest.raises(ValueError):
        fit_size(0, 10, max_side=10)
    with pytest.raises(ValueError):
        fit_size(10, 10, max_side=0)


def test_resize_gives_the_requested_size():
    """resize returns an image of exactly the requested size."""
    image = Image.new("RGB", (4000, 3000), (200, 10, 10))
    assert resize(image, (1036, 756)).size == (1036, 756)


def test_resize_keeps_colour_of_flat_image():
    """A flat colour stays that colour through the LANCZOS downscale."""
    image = Image.new("RGB", (900, 900), (200, 10, 10))
    assert resize(image, (300, 300)).getpixel((150, 150)) == (200, 10, 10)


def test_resize_to_same_size_returns_the_image():
    """Resizing to the current size does no work."""
    image = Image.new("RGB", (56, 56))
    assert resize(image, (56, 56)) is image


def test_resize_converts_palette_images():
    """A palette image is converted to RGB before resizing, not resized nearest-neighbour."""
    image = Image.new("P", (100, 100))
    assert resize(image, (50, 50)).mode == "RGB"


def _rotated_jpeg(width: int, height: int, orientation: int) -> Image.Image:
    exif = Image.Exif()
    exif[0x0112] = orientation
    buffer = io.BytesIO()
    Image.new("RGB", (width, height), (0, 0, 255)).save(buffer, "JPEG", exif=exif)
    buffer.seek(0)
    return Image.open(buffer)


def test_upright_size_swaps_sides_for_rotated_photos():
    """EXIF orientation 6 (rotated 90 degrees) swaps width and height, read from the header."""
    assert upright_size(_rotated_jpeg(400, 300, 6)) == (300, 400)


def test_upright_size_keeps_normal_photos():
    """Orientation 1 keeps the stored size."""
    assert upright_size(_rotated_jpeg(400, 300, 1)) == (400, 300)


def test_exif_upright_turns_the_pixels():
    """exif_upright returns the image turned to its upright size."""
    assert exif_upright(_rotated_jpeg(400, 300, 6)).size == (300, 400)


def test_exif_upright_without_exif_keeps_size():
    """An image without EXIF comes back the same size."""
    assert exif_upright(Image.new("RGB", (40, 30))).size == (40, 30)
