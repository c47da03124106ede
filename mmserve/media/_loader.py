"""The front door of image intake: pick the source for a URL, fetch, decode, cache."""

from __future__ import annotations

import hashlib
import re
from collections import OrderedDict
from collections.abc import Callable
from typing import Generic, TypeVar

import anyio
import anyio.to_thread

from mmserve.errors import ImageError, ImageSourceForbiddenError, InvalidRequestError
from mmserve.media._data import DataURISource
from mmserve.media._decode import DecodedImage, decode_image, raise_pillow_pixel_limit
from mmserve.media._fetch import HTTPSource
from mmserve.media._local import LocalFileSource
from mmserve.media._policy import MediaPolicy

__all__ = ["MediaLoader"]

V = TypeVar("V")

_SCHEME = re.compile(r"([a-zA-Z][a-zA-Z0-9+.\-]*):")
# Decoding holds a full-size bitmap per thread; a few at a time bounds peak memory.
_DECODE_THREADS = 4


class MediaLoader:
    """Turns OpenAI ``image_url`` values into decoded RGB images under a ``MediaPolicy``.

    Accepts ``data:image/...;base64,`` URIs, ``http(s)://`` URLs and, when the
    policy has a media root, ``file:///abs/path`` URLs and root-relative paths.
    Every error is an ``ImageError`` subclass (400) whose ``param`` is the one
    given for the image. Decoded images are cached by the SHA-256 of their bytes,
    and a data URI sent again (a page asked another question) is known by its text:
    neither its base64 nor its hash is computed again.
    """

    def __init__(self, policy: MediaPolicy, *, cache_items: int = 64, data_uri_chars: int = 64 << 20) -> None:
        self._policy = policy
        self._data = DataURISource(policy.max_bytes)
        self._http = HTTPSource(policy)
        self._local = LocalFileSource(policy.media_root, policy.max_bytes)
        self._cache: _LRU[DecodedImage] = _LRU(cache_items)  # by the SHA-256 of the bytes
        self._data_uris: _LRU[str] = _LRU(data_uri_chars, size=len)  # data URI text -> SHA-256
        self._decoding: dict[str, anyio.Event] = {}
        self._limiter: anyio.CapacityLimiter | None = None
        raise_pillow_pixel_limit(policy.max_pixels)

    async def load(self, url: str, *, param: str) -> DecodedImage:
        """Fetch and decode one image; errors carry ``param`` and never the payload."""
        is_data = _scheme(url) == "data"
        if is_data and (digest := self._data_uris.get(url)) is not None:
            cached = self._cache.get(digest)
            if cached is not None:
                return cached
        data = await self._fetch(url, param=param)
        image = await self._decode(data, param=param)
        if is_data:
            self._data_uris.put(url, image.sha256)
        return image

    async def load_all(self, items: list[tuple[str, str]]) -> list[DecodedImage]:
        """Load ``(url, param)`` pairs concurrently, in order.

        The image count is checked before anything is fetched; a URL given twice
        is fetched once. The first failure cancels the rest and is raised.
        """
        if len(items) > self._policy.max_images:
            raise InvalidRequestError(
                f"too many images: {len(items)} given, at most {self._policy.max_images} per request",
                param=items[self._policy.max_images][1],
            )
        first_param: dict[str, str] = {}
        for url, param in items:
            first_param.setdefault(url, param)
        loaded: dict[str, DecodedImage] = {}
        failures: list[Exception] = []

        async def load_one(url: str, param: str) -> None:
            try:
                loaded[url] = await self.load(url, param=param)
            except Exception as exc:  # noqa: BLE001 - recorded and re-raised after the group
                failures.append(exc)
                group.cancel_scope.cancel()

        async with anyio.create_task_group() as group:
            for url, param in first_param.items():
                group.start_soon(load_one, url, param)
        if failures:
            raise failures[0]
        return [loaded[url] for url, _ in items]

    async def aclose(self) -> None:
        """Release the HTTP client; call once on shutdown."""
        await self._http.aclose()

    async def _fetch(self, url: str, *, param: str) -> bytes:
        if not url:
            raise ImageError(f"{param}: image URL is empty", param=param)
        scheme = _scheme(url)
        if scheme == "data":
            return await self._data.fetch(url, param=param)
        if scheme in ("http", "https"):
            return await self._http.fetch(url, param=param)
        if scheme in ("file", None):
            return await self._local.fetch(url, param=param)
        raise ImageSourceForbiddenError(
            f"{param}: image URL scheme {scheme[:16]!r} is not allowed; use data:, http: or https:", param=param
        )

    async def _decode(self, data: bytes, *, param: str) -> DecodedImage:
        digest = await anyio.to_thread.run_sync(_sha256, data)
        while True:
            cached = self._cache.get(digest)
            if cached is not None:
                return cached
            pending = self._decoding.get(digest)
            if pending is None:
                break
            # The same bytes are being decoded for another part: wait, then reuse (or retry if that failed).
            await pending.wait()
        done = self._decoding[digest] = anyio.Event()
        try:
            if self._limiter is None:
                self._limiter = anyio.CapacityLimiter(_DECODE_THREADS)
            image = await anyio.to_thread.run_sync(
                lambda: decode_image(data, sha256=digest, max_pixels=self._policy.max_pixels, param=param),
                limiter=self._limiter,
            )
            self._cache.put(digest, image)
            return image
        finally:
            del self._decoding[digest]
            done.set()


def _scheme(url: str) -> str | None:
    """The URL's scheme in lower case; ``None`` for a bare path."""
    match = _SCHEME.match(url)
    return match.group(1).lower() if match else None


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


class _LRU(Generic[V]):
    """A least-recently-used map whose entries' sizes (``size`` of the key) sum to at most ``limit``."""

    def __init__(self, limit: int, size: Callable[[str], int] = lambda key: 1) -> None:
        self._limit = limit
        self._size = size
        self._total = 0
        self._items: OrderedDict[str, V] = OrderedDict()

    def get(self, key: str) -> V | None:
        value = self._items.get(key)
        if value is not None:
            self._items.move_to_end(key)
        return value

    def put(self, key: str, value: V) -> None:
        if key in self._items:
            self._items[key] = value
            self._items.move_to_end(key)
            return
        if self._size(key) > self._limit:
            return
        self._items[key] = value
        self._total += self._size(key)
        while self._total > self._limit:
            evicted, _ = self._items.popitem(last=False)
            self._total -= self._size(evicted)
