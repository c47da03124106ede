"""Images inline in the request as ``data:image/<type>;base64,<payload>`` URIs."""

from __future__ import annotations

import base64
import binascii
import re

import anyio.to_thread

from mmserve.errors import ImageError

__all__ = ["DataURISource"]

_HEADER = re.compile(r"data:image/(png|jpeg|jpg|webp|gif|bmp|tiff);base64", re.IGNORECASE)
# The comma must come within this many characters; the header is never longer.
_MAX_HEADER = 64
_SHAPE = "data:image/<png|jpeg|webp|gif|bmp|tiff>;base64,<payload>"


class DataURISource:
    """Decodes base64 data URIs, refusing anything but the image types we open."""

    def __init__(self, max_bytes: int) -> None:
        self._max_bytes = max_bytes
        # Base64 carries 3 bytes per 4 characters; anything longer cannot fit the cap.
        self._max_chars = 4 * ((max_bytes + 2) // 3)

    async def fetch(self, url: str, *, param: str) -> bytes:
        """The decoded bytes of the data URI ``url``; ``ImageError`` if malformed or too large."""
        payload = self._payload(url, param=param)
        return await anyio.to_thread.run_sync(self._decode, payload, param)

    def _payload(self, url: str, *, param: str) -> str:
        comma = url.find(",", 0, _MAX_HEADER)
        if comma < 0 or not _HEADER.fullmatch(url, 0, comma):
            raise ImageError(f"{param}: malformed data URI; expected {_SHAPE}", param=param)
        payload = url[comma + 1 :]
        if len(payload) > self._max_chars:
            raise ImageError(f"{param}: image is larger than {self._max_bytes} bytes", param=param)
        return payload

    def _decode(self, payload: str, param: str) -> bytes:
        try:
            data = base64.b64decode(payload, validate=True)
        except (binascii.Error, ValueError):
            raise ImageError(f"{param}: data URI payload is not valid base64", param=param) from None
        if len(data) > self._max_bytes:
            raise ImageError(f"{param}: image is larger than {self._max_bytes} bytes", param=param)
        return data
