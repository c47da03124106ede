"""data: URIs: strict header, base64 and size checks, and payload-free errors."""

from __future__ import annotations

import base64
from collections.abc import Callable

import pytest

from mmserve.errors import ImageError
from mmserve.media import MediaLoader, MediaPolicy

pytestmark = pytest.mark.anyio

PARAM = "messages[0].content[1].image_url"


async def load(url: str, policy: MediaPolicy | None = None) -> object:
    loader = MediaLoader(policy or MediaPolicy(remote_enabled=False))
    try:
        return await loader.load(url, param=PARAM)
    finally:
        await loader.aclose()


async def test_png_data_uri_decodes(png: bytes, data_uri: Callable[..., str]) -> None:
    """A well-formed PNG data URI gives an RGB image with the hash of its bytes."""
    import hashlib

    decoded = await load(data_uri(png))
    assert (decoded.format, decoded.width, decoded.height) == ("PNG", 4, 3)
    assert decoded.sha256 == hashlib.sha256(png).hexdigest()


async def test_jpg_alias_and_upper_case_header_are_accepted(png: bytes, data_uri: Callable[..., str]) -> None:
    """Media types are case-insensitive and image/jpg is a common alias; the bytes decide the format."""
    decoded = await load(data_uri(png, "IMAGE/JPG").replace("data:", "DATA:"))
    assert decoded.format == "PNG"


@pytest.mark.parametrize("mime", ["text/plain", "image/svg+xml", "application/octet-stream", "image/x-icon"])
async def test_wrong_mime_is_refused(png: bytes, data_uri: Callable[..., str], mime: str) -> None:
    """Only image/png|jpeg|webp|gif|bmp|tiff data URIs are accepted."""
    with pytest.raises(ImageError, match="malformed data URI") as caught:
        await load(data_uri(png, mime))
    assert caught.value.param == PARAM


@pytest.mark.parametrize(
    "header",
    ["data:image/png,", "data:image/png;base64", "data:image/png;charset=utf-8;base64,", "data:;base64,", "data:"],
)
async def test_malformed_header_is_refused(header: str) -> None:
    """Missing ;base64, missing comma, extra parameters and empty types are 400."""
    with pytest.raises(ImageError, match="malformed data URI"):
        await load(header + "iVBORw0KGgo=")


@pytest.mark.parametrize("payload", ["@@@@", "iVBORw0KGgo", "iVBO Rw0K", "iVBORw0KGgo=\n", "iVBORw0K_-8="])
async def test_bad_base64_is_refused(payload: str) -> None:
    """Non-alphabet characters, missing padding, whitespace and url-safe base64 are 400."""
    with pytest.raises(ImageError, match="not valid base64"):
        await load("data:image/png;base64," + payload)


async def test_oversized_payload_is_refused_before_decoding() -> None:
    """The base64 length is checked first: an over-long invalid payload reports size, not base64."""
    with pytest.raises(ImageError, match="larger than 100 bytes"):
        await load("data:image/png;base64," + "!" * 1_000, MediaPolicy(remote_enabled=False, max_bytes=100))


async def test_valid_base64_of_garbage_cannot_be_decoded(data_uri: Callable[..., str]) -> None:
    """Well-formed base64 of non-image bytes is 'could not decode image'."""
    with pytest.raises(ImageError, match="could not decode image"):
        await load(data_uri(b"hello world, definitely not a png"))


@pytest.mark.parametrize("corrupt", ["mime", "base64", "bytes"])
async def test_errors_never_contain_the_payload(png: bytes, corrupt: str) -> None:
    """Neither the base64 payload nor the data URI appears in any error message."""
    payload = base64.b64encode(b"Z" * 600).decode("ascii")
    url = {
        "mime": f"data:text/html;base64,{payload}",
        "base64": f"data:image/png;base64,{payload}%%",
        "bytes": f"data:image/png;base64,{payload}",
    }[corrupt]
    with pytest.raises(ImageError) as caught:
        await load(url)
    rendered = str(caught.value.envelope())
    assert payload[:40] not in rendered
    assert url[:30] not in rendered
