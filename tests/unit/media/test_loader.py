"""MediaLoader: scheme dispatch, image count, de-duplication and the decoded-image cache."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterator

import pytest
from PIL import Image

import mmserve.media._loader as loader_module
from mmserve.errors import ImageError, ImageSourceForbiddenError, InvalidRequestError
from mmserve.media import DecodedImage, MediaLoader, MediaPolicy

pytestmark = pytest.mark.anyio

PARAM = "messages[0].content[1].image_url"


@pytest.fixture
def decodes(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[str]]:
    """Records the sha256 of every decode the loader runs."""
    calls: list[str] = []
    real = loader_module.decode_image

    def counting(data: bytes, **kwargs: object) -> DecodedImage:
        calls.append(str(kwargs["sha256"]))
        return real(data, **kwargs)

    monkeypatch.setattr(loader_module, "decode_image", counting)
    yield calls


@pytest.fixture
async def loader() -> AsyncIterator[MediaLoader]:
    media = MediaLoader(MediaPolicy(remote_enabled=False), cache_items=2)
    yield media
    await media.aclose()


@pytest.mark.parametrize(
    "url",
    ["ftp://example.com/a.png", "gopher://example.com/", "javascript:alert(1)", "ws://example.com/a", "blob:abc"],
)
async def test_other_schemes_are_refused(loader: MediaLoader, url: str) -> None:
    """Only data:, http(s): and (with a root) file: are accepted."""
    with pytest.raises(ImageSourceForbiddenError, match="scheme") as caught:
        await loader.load(url, param=PARAM)
    assert (caught.value.status_code, caught.value.param) == (400, PARAM)


async def test_empty_url_is_refused(loader: MediaLoader) -> None:
    """An empty image_url.url is a 400."""
    with pytest.raises(ImageError, match="empty"):
        await loader.load("", param=PARAM)


async def test_remote_urls_are_refused_when_remote_is_disabled(loader: MediaLoader) -> None:
    """remote_enabled=False refuses http(s) before any lookup."""
    with pytest.raises(ImageSourceForbiddenError, match="disabled"):
        await loader.load("https://example.com/cat.png", param=PARAM)


async def test_too_many_images_are_refused_before_any_work(
    png: bytes, data_uri: Callable[..., str], decodes: list[str]
) -> None:
    """Nine images against a cap of eight is a 400 naming the ninth, with nothing decoded."""
    loader = MediaLoader(MediaPolicy(remote_enabled=False, max_images=8))
    items = [(data_uri(png), f"messages[0].content[{index}].image_url") for index in range(9)]
    with pytest.raises(InvalidRequestError, match="too many images") as caught:
        await loader.load_all(items)
    assert caught.value.param == "messages[0].content[8].image_url"
    assert not isinstance(caught.value, ImageError)
    assert decodes == []
    await loader.aclose()


async def test_load_all_keeps_order_and_repeats(
    loader: MediaLoader, encode: Callable[..., bytes], data_uri: Callable[..., str]
) -> None:
    """Results line up with the items, repeated URLs included."""
    red = data_uri(encode(Image.new("RGB", (1, 1), (255, 0, 0))))
    blue = data_uri(encode(Image.new("RGB", (2, 1), (0, 0, 255))))
    images = await loader.load_all([(red, "a"), (blue, "b"), (red, "c")])
    assert [image.width for image in images] == [1, 2, 1]
    assert images[0] is images[2]


async def test_identical_bytes_under_different_urls_are_decoded_once(
    loader: MediaLoader, png: bytes, data_uri: Callable[..., str], decodes: list[str]
) -> None:
    """Two spellings of the same bytes in one request decode once, concurrently."""
    images = await loader.load_all([(data_uri(png), "a"), (data_uri(png, "image/PNG"), "b")])
    assert len(decodes) == 1
    assert images[0] is images[1]


async def test_repeated_bytes_across_requests_come_from_the_cache(
    loader: MediaLoader, png: bytes, data_uri: Callable[..., str], decodes: list[str]
) -> None:
    """A second request with the same image does not decode it again."""
    await loader.load(data_uri(png), param="a")
    await loader.load(data_uri(png), param="b")
    assert len(decodes) == 1


async def test_a_data_uri_sent_again_is_known_by_its_text(
    png: bytes, data_uri: Callable[..., str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The same data URI in a later request is neither base64-decoded nor hashed again; the
    index of URI texts is bounded in characters, and what falls out of it is hashed again."""
    hashed: list[bytes] = []
    real = loader_module._sha256
    monkeypatch.setattr(loader_module, "_sha256", lambda data: hashed.append(data) or real(data))
    url, other = data_uri(png), data_uri(png, "image/PNG")
    loader = MediaLoader(MediaPolicy(remote_enabled=False), data_uri_chars=len(url) + len(other) - 1)
    first = await loader.load(url, param="a")
    again = await loader.load("".join(url), param="b")  # an equal text, not the same object
    assert again is first and len(hashed) == 1
    await loader.load(other, param="c")  # the same bytes spelled otherwise: hashed, then it evicts ``url``
    await loader.load(url, param="d")
    assert len(hashed) == 3
    await loader.aclose()


async def test_cache_evicts_the_least_recently_used(
    loader: MediaLoader, encode: Callable[..., bytes], data_uri: Callable[..., str], decodes: list[str]
) -> None:
    """With room for two, a third image evicts the oldest, which then decodes again."""
    urls = [data_uri(encode(Image.new("RGB", (1, 1), (value, 0, 0)))) for value in (1, 2, 3)]
    for url in [urls[0], urls[1], urls[2], urls[1], urls[0]]:
        await loader.load(url, param=PARAM)
    assert len(decodes) == 4


async def test_load_all_raises_the_failing_parts_error(
    loader: MediaLoader, png: bytes, data_uri: Callable[..., str]
) -> None:
    """One bad image fails the whole batch with that image's param."""
    items = [
        (data_uri(png), "messages[0].content[0].image_url"),
        ("data:image/png;base64,@@", "messages[0].content[1].image_url"),
    ]
    with pytest.raises(ImageError) as caught:
        await loader.load_all(items)
    assert caught.value.param == "messages[0].content[1].image_url"


async def test_failed_decode_is_not_cached(loader: MediaLoader, data_uri: Callable[..., str]) -> None:
    """A bad image fails each time with the param of the request that sent it."""
    url = data_uri(b"not an image")
    for param in ("first", "second"):
        with pytest.raises(ImageError, match="could not decode image") as caught:
            await loader.load(url, param=param)
        assert caught.value.param == param


async def test_loader_lifts_pillows_pixel_limit_to_the_policy() -> None:
    """Images the policy accepts never trip Pillow's lower default bomb warning."""
    loader = MediaLoader(MediaPolicy(remote_enabled=False, max_pixels=200_000_000))
    assert Image.MAX_IMAGE_PIXELS is not None and Image.MAX_IMAGE_PIXELS >= 200_000_000
    await loader.aclose()
