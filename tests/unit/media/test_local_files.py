"""Local files: only inside the media root, with no way out of it."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from mmserve.errors import ImageError, ImageSourceForbiddenError
from mmserve.media import MediaLoader, MediaPolicy

pytestmark = pytest.mark.anyio

PARAM = "messages[0].content[0].image_url"


@pytest.fixture
def root(tmp_path: Path, png: bytes) -> Path:
    """A media root holding ok.png, with a secret.png beside it and a media-evil/ sibling."""
    media = tmp_path / "media"
    media.mkdir()
    (media / "ok.png").write_bytes(png)
    (tmp_path / "secret.png").write_bytes(png)
    (tmp_path / "media-evil").mkdir()
    (tmp_path / "media-evil" / "x.png").write_bytes(png)
    return media


async def load(url: str, media_root: Path | None, **policy: object) -> object:
    loader = MediaLoader(MediaPolicy(remote_enabled=False, media_root=media_root, **policy))
    try:
        return await loader.load(url, param=PARAM)
    finally:
        await loader.aclose()


async def test_file_url_inside_root_loads(root: Path) -> None:
    """file:///abs/path inside the root decodes."""
    decoded = await load((root / "ok.png").as_uri(), root)
    assert decoded.format == "PNG"


async def test_relative_path_inside_root_loads(root: Path) -> None:
    """A plain relative path is taken relative to the root."""
    decoded = await load("ok.png", root)
    assert decoded.width == 4


async def test_local_files_are_refused_without_a_root(root: Path) -> None:
    """With no media root, file: URLs and paths are 400."""
    with pytest.raises(ImageSourceForbiddenError, match="not enabled"):
        await load((root / "ok.png").as_uri(), None)


async def test_dot_dot_traversal_is_refused(root: Path) -> None:
    """../ out of the root is refused even though the file exists."""
    with pytest.raises(ImageSourceForbiddenError, match="outside the media root"):
        await load("../secret.png", root)


async def test_encoded_traversal_in_file_url_is_refused(root: Path) -> None:
    """Percent-encoded ../ in a file URL is decoded, then refused."""
    with pytest.raises(ImageSourceForbiddenError, match="outside the media root"):
        await load(f"file://{root}/%2e%2e/secret.png", root)


async def test_symlink_escape_is_refused(root: Path) -> None:
    """A symlink inside the root pointing outside it is refused."""
    (root / "link.png").symlink_to(root.parent / "secret.png")
    with pytest.raises(ImageSourceForbiddenError, match="outside the media root"):
        await load("link.png", root)


async def test_symlink_within_root_is_followed(root: Path) -> None:
    """A symlink that stays inside the root is fine."""
    (root / "alias.png").symlink_to(root / "ok.png")
    assert (await load("alias.png", root)).format == "PNG"


async def test_sibling_with_root_prefix_is_refused(root: Path) -> None:
    """/x/media-evil is not inside /x/media although the string starts the same."""
    with pytest.raises(ImageSourceForbiddenError, match="outside the media root"):
        await load((root.parent / "media-evil" / "x.png").as_uri(), root)


async def test_absolute_path_outside_root_is_refused(root: Path) -> None:
    """A plain absolute path outside the root is refused."""
    with pytest.raises(ImageSourceForbiddenError, match="outside the media root"):
        await load(str(root.parent / "secret.png"), root)


async def test_file_url_with_remote_host_is_refused(root: Path) -> None:
    """file://host/path (a network share) is refused."""
    with pytest.raises(ImageSourceForbiddenError, match="file:///"):
        await load("file://fileserver/share/ok.png", root)


async def test_missing_file_is_a_400(root: Path) -> None:
    """A path inside the root that does not exist is a 400, not a 500."""
    with pytest.raises(ImageError, match="not found") as caught:
        await load("nope.png", root)
    assert caught.value.status_code == 400


async def test_file_over_the_byte_cap_is_refused(root: Path) -> None:
    """The size cap applies to local files."""
    with pytest.raises(ImageError, match="larger than 10 bytes"):
        await load("ok.png", root, max_bytes=10)


async def test_directory_is_refused(root: Path) -> None:
    """The root itself (a directory) is not an image file."""
    with pytest.raises(ImageSourceForbiddenError, match="not a regular file"):
        await load(".", root)


async def test_fifo_is_refused_without_hanging(root: Path) -> None:
    """A named pipe inside the root is refused instead of blocking the reader."""
    os.mkfifo(root / "pipe.png")
    with pytest.raises(ImageSourceForbiddenError, match="not a regular file"):
        await load("pipe.png", root)
