"""PDF pages for the OCR client: counted on open, rendered one at a time with pypdfium2.

PDFium is not thread-safe, so every call into it holds one process-wide lock; the
documents stay open (a few at a time) while their pages are rendered, and a page's
pixels exist only between its rendering and its encoding as PNG.
"""

from __future__ import annotations

import io
import threading
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path

__all__ = ["PdfError", "RenderedPage", "close", "close_all", "page_count", "render_page", "text_layer"]

_LOCK = threading.Lock()
_OPEN: OrderedDict[str, object] = OrderedDict()  # path -> PdfDocument, most recently used last
_KEEP_OPEN = 4


class PdfError(Exception):
    """The PDF cannot be read: encrypted, damaged, or not a PDF. ``code`` says which."""

    def __init__(self, message: str, code: str) -> None:
        super().__init__(message)
        self.code = code


@dataclass(frozen=True)
class RenderedPage:
    png: bytes
    size: tuple[int, int]  # pixels
    points: tuple[float, float]  # the page's size in points (1/72 inch), rotation applied
    dpi: float


def _pdfium():
    try:
        import pypdfium2
    except ImportError:
        raise ImportError("PDF input needs pypdfium2: pip install pypdfium2") from None
    return pypdfium2


def _document(path: str):
    """The open document for ``path`` (call with the lock held)."""
    pdfium = _pdfium()
    document = _OPEN.get(path)
    if document is not None:
        _OPEN.move_to_end(path)
        return document
    try:
        document = pdfium.PdfDocument(path)
    except pdfium.PdfiumError as exc:
        message = str(exc)
        if "password" in message.lower():
            raise PdfError("the PDF is encrypted (password protected)", "encrypted_pdf") from None
        raise PdfError(f"the PDF cannot be read: {message}", "broken_pdf") from None
    _OPEN[path] = document
    while len(_OPEN) > _KEEP_OPEN:
        _, oldest = _OPEN.popitem(last=False)
        oldest.close()
    return document


def close(path: str | Path) -> None:
    """Close ``path`` if it is open (its pages are all rendered)."""
    with _LOCK:
        document = _OPEN.pop(str(path), None)
        if document is not None:
            document.close()


def close_all() -> None:
    """Close every open document (a run is over; a file may change before the next)."""
    with _LOCK:
        while _OPEN:
            _, document = _OPEN.popitem()
            document.close()


def page_count(path: str | Path) -> int:
    """Pages in the PDF; ``PdfError`` when it cannot be opened."""
    with _LOCK:
        count = len(_document(str(path)))
    if count < 1:
        raise PdfError("the PDF has no pages", "broken_pdf")
    return count


def render_page(path: str | Path, index: int, *, side: int, max_dpi: float) -> RenderedPage:
    """Render page ``index`` (0-based) so its longer side is ``side`` px, at most ``max_dpi``."""
    pdfium = _pdfium()
    with _LOCK:
        try:
            page = _document(str(path))[index]
            try:
                width, height = page.get_size()
                scale = min(side / max(width, height), max_dpi / 72.0)
                bitmap = page.render(scale=scale, may_draw_forms=True)
                image = bitmap.to_pil()
            finally:
                page.close()
        except pdfium.PdfiumError as exc:
            raise PdfError(f"page {index + 1} cannot be rendered: {exc}", "broken_pdf") from None
    buffer = io.BytesIO()
    image.save(buffer, format="PNG", optimize=False, compress_level=3)
    return RenderedPage(buffer.getvalue(), image.size, (width, height), round(scale * 72, 1))


def text_layer(path: str | Path, index: int) -> str:
    """The page's embedded text (empty for a scan without a text layer)."""
    pdfium = _pdfium()
    with _LOCK:
        try:
            page = _document(str(path))[index]
            try:
                textpage = page.get_textpage()
                try:
                    text = textpage.get_text_bounded()
                finally:
                    textpage.close()
            finally:
                page.close()
        except pdfium.PdfiumError:
            return ""
    return text.replace("\r\n", "\n").strip()
