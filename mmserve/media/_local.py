"""Images read from the server's disk, only from inside the configured media root."""

from __future__ import annotations

import os
import stat
from pathlib import Path
from urllib.parse import unquote, urlsplit

import anyio.to_thread

from mmserve.errors import ImageError, ImageSourceForbiddenError

__all__ = ["LocalFileSource"]


class LocalFileSource:
    """Reads ``file:///abs/path`` URLs and paths relative to the media root.

    The path is resolved (symlinks included) before it is compared with the
    resolved root, so ``..``, symlinks pointing out and sibling directories that
    share the root's prefix are all refused.
    """

    def __init__(self, media_root: Path | None, max_bytes: int) -> None:
        self._root = Path(os.path.realpath(media_root)) if media_root is not None else None
        self._max_bytes = max_bytes

    async def fetch(self, url: str, *, param: str) -> bytes:
        """The bytes of the local file ``url`` names; refused outside the media root."""
        if self._root is None:
            raise ImageSourceForbiddenError(f"{param}: local image files are not enabled on this server", param=param)
        return await anyio.to_thread.run_sync(self._read, self._root, url, param)

    def _read(self, root: Path, url: str, param: str) -> bytes:
        path = self._resolve(root, url, param)
        try:
            # O_NOFOLLOW: a final component swapped for a symlink after the check is not followed.
            # O_NONBLOCK: opening a FIFO must not hang the worker thread.
            fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
        except FileNotFoundError:
            raise ImageError(f"{param}: image file not found", param=param) from None
        except OSError:
            raise ImageError(f"{param}: image file cannot be read", param=param) from None
        try:
            info = os.fstat(fd)
            if not stat.S_ISREG(info.st_mode):
                raise ImageSourceForbiddenError(f"{param}: image path is not a regular file", param=param)
            if info.st_size > self._max_bytes:
                raise ImageError(f"{param}: image is larger than {self._max_bytes} bytes", param=param)
            with os.fdopen(fd, "rb", closefd=False) as file:
                data = file.read(self._max_bytes + 1)
        finally:
            os.close(fd)
        if len(data) > self._max_bytes:
            raise ImageError(f"{param}: image is larger than {self._max_bytes} bytes", param=param)
        return data

    def _resolve(self, root: Path, url: str, param: str) -> Path:
        raw = self._path_of(url, param)
        if "\x00" in raw:
            raise ImageSourceForbiddenError(f"{param}: invalid image path", param=param)
        resolved = Path(os.path.realpath(root / raw))
        if not resolved.is_relative_to(root):
            raise ImageSourceForbiddenError(f"{param}: image path is outside the media root", param=param)
        return resolved

    @staticmethod
    def _path_of(url: str, param: str) -> str:
        if not url.lower().startswith("file:"):
            return url  # a plain path, relative to the root unless absolute
        parts = urlsplit(url)
        if parts.netloc not in ("", "localhost") or parts.query or parts.fragment:
            raise ImageSourceForbiddenError(f"{param}: only file:///absolute/path URLs are accepted", param=param)
        path = unquote(parts.path)
        if not path.startswith("/"):
            raise ImageSourceForbiddenError(f"{param}: only file:///absolute/path URLs are accepted", param=param)
        return path
