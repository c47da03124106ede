"""Decoding bytes to RGB: bad input, bombs, modes, orientation, animation."""

from __future__ import annotations

import random
import resource
import struct
import time
import zlib
from collections.abc import Callable

import pytest
from PIL import Image

from mmserve.errors import ImageError
from mmserve.media._decode import DecodedImage, decode_image

PARAM = "messages[0].content[1].image_url"
MAX_PIXELS = 100_000_000


def decode(data: bytes, *, max_pixels: int = MAX_PIXELS) -> DecodedImage:
    return decode_image(data, sha256="0" * 64, max_pixels=max_pixels, param=PARAM)


def png_declaring(width: int, height: int) -> bytes:
    """A few hundred bytes of PNG whose header claims ``width`` x ``height`` RGB pixels."""

    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(b"\x00" * 1024))
        + chunk(b"IEND", b"")
    )


def noise(size: tuple[int, int]) -> Image.Image:
    rng = random.Random(0)
    return Image.frombytes("RGB", size, bytes(rng.randrange(256) for _ in range(size[0] * size[1] * 3)))


def test_garbage_bytes_are_refused() -> None:
    """Random bytes give 400 'could not decode image' naming the part."""
    with pytest.raises(ImageError, match="could not decode image") as caught:
        decode(b"this is not an image at all" * 10)
    assert caught.value.param == PARAM
    assert PARAM in caught.value.message
    assert caught.value.status_code == 400


def test_empty_bytes_are_refused() -> None:
    """Zero bytes give 'could not decode image'."""
    with pytest.raises(ImageError, match="could not decode image"):
        decode(b"")


def test_truncated_png_is_refused(encode: Callable[..., bytes]) -> None:
    """A PNG cut in half gives 'could not decode image', not a 500."""
    data = encode(noise((64, 64)), "PNG")
    with pytest.raises(ImageError, match="could not decode image"):
        decode(data[: len(data) // 2])


def test_truncated_jpeg_is_refused(encode: Callable[..., bytes]) -> None:
    """A JPEG cut in half gives 'could not decode image'."""
    data = encode(noise((64, 64)), "JPEG", quality=95)
    with pytest.raises(ImageError, match="could not decode image"):
        decode(data[: len(data) // 2])


def test_huge_declared_png_is_refused_fast_with_flat_memory() -> None:
    """A tiny PNG declaring 40000x40000 is refused in well under a second without allocating it."""
    data = png_declaring(40_000, 40_000)
    rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    started = time.perf_counter()
    with pytest.raises(ImageError, match="more than 100000000 pixels"):
        decode(data)
    assert time.perf_counter() - started < 0.5
    assert resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - rss_before < 50_000  # KiB


def test_pixel_cap_is_checked_from_the_header(encode: Callable[..., bytes]) -> None:
    """An image over the policy's pixel cap is refused even when Pillow would accept it."""
    with pytest.raises(ImageError, match="more than 100 pixels"):
        decode(encode(Image.new("RGB", (20, 20))), max_pixels=100)


def test_pillow_bomb_warning_becomes_a_400(monkeypatch: pytest.MonkeyPatch) -> None:
    """A size in Pillow's warning band is refused as ImageError, never leaked as a warning."""
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 1_000)
    with pytest.raises(ImageError, match="more than 500 pixels"):
        decode(png_declaring(40, 40), max_pixels=500)


def test_rgba_is_composited_over_white(encode: Callable[..., bytes]) -> None:
    """Transparent pixels become white, opaque ones keep their colour."""
    image = Image.new("RGBA", (2, 1), (255, 0, 0, 0))
    image.putpixel((1, 0), (255, 0, 0, 255))
    decoded = decode(encode(image))
    assert decoded.image.mode == "RGB"
    assert decoded.image.getpixel((0, 0)) == (255, 255, 255)
    assert decoded.image.getpixel((1, 0)) == (255, 0, 0)


def test_la_is_composited_over_white(encode: Callable[..., bytes]) -> None:
    """Grayscale with alpha: transparent becomes white, half-transparent black becomes mid-gray."""
    image = Image.new("LA", (2, 1), (0, 0))
    image.putpixel((1, 0), (0, 128))
    decoded = decode(encode(image))
    assert decoded.image.getpixel((0, 0)) == (255, 255, 255)
    assert all(abs(channel - 127) <= 2 for channel in decoded.image.getpixel((1, 0)))


def test_palette_with_transparency_is_composited_over_white(encode: Callable[..., bytes]) -> None:
    """A P image whose transparent index is black shows white there."""
    image = Image.new("P", (2, 1), 0)
    image.putpalette([0, 0, 0, 0, 0, 255] + [0] * 762)
    image.putpixel((1, 0), 1)
    decoded = decode(encode(image, "PNG", transparency=0))
    assert decoded.image.getpixel((0, 0)) == (255, 255, 255)
    assert decoded.image.getpixel((1, 0)) == (0, 0, 255)


def test_palette_without_transparency_is_expanded(encode: Callable[..., bytes]) -> None:
    """An opaque palette image becomes its palette colours in RGB."""
    image = Image.new("P", (1, 1), 1)
    image.putpalette([0, 0, 0, 0, 200, 0] + [0] * 762)
    assert decode(encode(image, "GIF")).image.getpixel((0, 0)) == (0, 200, 0)


def test_sixteen_bit_grayscale_is_scaled_not_clipped(encode: Callable[..., bytes]) -> None:
    """A mid-gray 16-bit PNG becomes about 128, not white."""
    decoded = decode(encode(Image.new("I;16", (2, 2), 32768)))
    assert decoded.image.getpixel((0, 0)) == (128, 128, 128)


def test_eight_bit_grayscale_is_expanded(encode: Callable[..., bytes]) -> None:
    """An L image becomes three equal channels."""
    assert decode(encode(Image.new("L", (1, 1), 77))).image.getpixel((0, 0)) == (77, 77, 77)


def test_exif_orientation_is_applied_before_measuring(encode: Callable[..., bytes]) -> None:
    """A 40x20 JPEG tagged orientation 6 (rotate 90) reports 20x40."""
    exif = Image.Exif()
    exif[0x0112] = 6
    decoded = decode(encode(Image.new("RGB", (40, 20), (0, 128, 0)), "JPEG", exif=exif.tobytes()))
    assert (decoded.width, decoded.height) == (20, 40)
    assert decoded.image.size == (20, 40)


def test_animated_gif_gives_its_first_frame(encode: Callable[..., bytes]) -> None:
    """Only the first frame of an animation is used."""
    frames = [Image.new("RGB", (4, 4), colour) for colour in ((255, 0, 0), (0, 0, 255), (0, 255, 0))]
    data = encode(frames[0], "GIF", save_all=True, append_images=frames[1:], duration=100, loop=0)
    decoded = decode(data)
    assert decoded.format == "GIF"
    assert decoded.image.getpixel((0, 0)) == (255, 0, 0)


def test_cmyk_jpeg_becomes_rgb(encode: Callable[..., bytes]) -> None:
    """A CMYK JPEG is converted to RGB with roughly the right colour."""
    decoded = decode(encode(Image.new("CMYK", (8, 8), (0, 255, 255, 0)), "JPEG", quality=100))
    red, green, blue = decoded.image.getpixel((4, 4))
    assert decoded.image.mode == "RGB"
    assert red > 230 and green < 25 and blue < 25


def test_one_pixel_image_is_accepted(encode: Callable[..., bytes]) -> None:
    """A 1x1 image decodes; resizing is the guard's job."""
    decoded = decode(encode(Image.new("RGB", (1, 1), (1, 2, 3))))
    assert (decoded.width, decoded.height, decoded.image.getpixel((0, 0))) == (1, 1, (1, 2, 3))


def test_extreme_aspect_ratio_is_accepted_under_the_caps(encode: Callable[..., bytes]) -> None:
    """A 10000x1 strip decodes; the guard decides what to do with it."""
    decoded = decode(encode(Image.new("RGB", (10_000, 1))))
    assert (decoded.width, decoded.height) == (10_000, 1)


@pytest.mark.parametrize("image_format", ["PNG", "JPEG", "WEBP", "GIF", "BMP", "TIFF"])
def test_supported_formats_decode_and_report_their_format(encode: Callable[..., bytes], image_format: str) -> None:
    """Each supported format decodes to RGB and reports its name."""
    decoded = decode(encode(Image.new("RGB", (5, 3), (200, 100, 50)), image_format))
    assert (decoded.format, decoded.image.mode, decoded.image.size) == (image_format, "RGB", (5, 3))


def test_ico_is_refused_as_unsupported(encode: Callable[..., bytes]) -> None:
    """ICO decodes fine in Pillow but is not on our list, so it is refused."""
    with pytest.raises(ImageError, match="could not decode image"):
        decode(encode(Image.new("RGB", (16, 16)), "ICO"))


def test_psd_header_is_refused_as_unsupported() -> None:
    """A Photoshop header is not opened."""
    psd = b"8BPS\x00\x01" + b"\x00" * 6 + struct.pack(">HIIHH", 3, 4, 4, 8, 3) + b"\x00" * 64
    with pytest.raises(ImageError, match="could not decode image"):
        decode(psd)


def test_svg_is_refused_as_unsupported() -> None:
    """SVG is text, not a raster format we open."""
    svg = b'<svg xmlns="http://www.w3.org/2000/svg" width="10" height="10"><rect width="10" height="10"/></svg>'
    with pytest.raises(ImageError, match="could not decode image"):
        decode(svg)
