"""Shared helpers for the media unit tests: encoders and data URIs built with Pillow."""

from __future__ import annotations

import base64
import io
from collections.abc import Callable

import pytest
from PIL import Image


def _encode(image: Image.Image, image_format: str = "PNG", **params: object) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, image_format, **params)
    return buffer.getvalue()


def _data_uri(data: bytes, mime: str = "image/png") -> str:
    return f"data:{mime};base64,{base64.b64encode(data).decode('ascii')}"


@pytest.fixture
def encode() -> Callable[..., bytes]:
    """``encode(image, "PNG", **save_params) -> bytes``."""
    return _encode


@pytest.fixture
def data_uri() -> Callable[..., str]:
    """``data_uri(bytes, mime="image/png") -> str``."""
    return _data_uri


@pytest.fixture
def png() -> bytes:
    """A small opaque RGB PNG."""
    return _encode(Image.new("RGB", (4, 3), (10, 20, 30)))
