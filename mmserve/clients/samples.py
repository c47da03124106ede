"""Small PDF documents written from scratch, for the examples, the benchmark and the tests.

``write_pdf`` writes pages of real text (Helvetica, so the PDF has a text layer a
``--text-layer`` run can read) at any page size and ``/Rotate``. ``write_invoice``
writes a one-page invoice with known fields, for the JSON-extraction example.
No PDF library is needed: the file is a dozen objects and a cross-reference table.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass, field

__all__ = ["SamplePage", "sample_pages", "write_invoice", "write_pdf"]

LETTER = (612, 792)  # points (1/72 inch)
A4 = (595, 842)


@dataclass(frozen=True)
class SamplePage:
    """One page: its size in points, its ``/Rotate`` (0, 90, 180, 270) and its lines of text."""

    lines: Sequence[str]
    size: tuple[int, int] = LETTER
    rotate: int = 0
    font_size: int = 11
    extra: dict = field(default_factory=dict)


def _escape(text: str) -> str:
    return text.replace("\\", "\\\\").replace("(", "\\(").replace(")", "\\)")


def _content(page: SamplePage) -> bytes:
    width, height = page.size
    leading = page.font_size * 1.4
    ops = ["BT", f"/F1 {page.font_size} Tf", f"{leading:.1f} TL", f"54 {height - 72} Td"]
    for line in page.lines:
        ops.append(f"({_escape(line)}) Tj T*")
    ops.append("ET")
    return "\n".join(ops).encode("latin-1", "replace")


def write_pdf(path: str | os.PathLike, pages: Sequence[SamplePage]) -> str:
    """Write ``pages`` as a PDF at ``path``; returns the path."""
    objects: list[bytes] = []  # object n is objects[n - 1]
    objects.append(b"")  # 1: catalog, filled below
    objects.append(b"")  # 2: page tree, filled below
    objects.append(b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica /Encoding /WinAnsiEncoding >>")  # 3
    kids = []
    for page in pages:
        stream = _content(page)
        objects.append(b"<< /Length %d >>\nstream\n" % len(stream) + stream + b"\nendstream")
        content_id = len(objects)
        width, height = page.size
        rotate = f" /Rotate {page.rotate}" if page.rotate else ""
        objects.append(
            f"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 {width} {height}]{rotate} "
            f"/Resources << /Font << /F1 3 0 R >> >> /Contents {content_id} 0 R >>".encode()
        )
        kids.append(len(objects))
    objects[0] = b"<< /Type /Catalog /Pages 2 0 R >>"
    objects[1] = f"<< /Type /Pages /Kids [{' '.join(f'{k} 0 R' for k in kids)}] /Count {len(kids)} >>".encode()
    out = bytearray(b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n")
    offsets = []
    for number, body in enumerate(objects, start=1):
        offsets.append(len(out))
        out += b"%d 0 obj\n" % number + body + b"\nendobj\n"
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    for offset in offsets:
        out += b"%010d 00000 n \n" % offset
    out += b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (len(objects) + 1, xref)
    with open(path, "wb") as file:
        file.write(out)
    return str(path)


def sample_pages(count: int, *, title: str = "Report", size: tuple[int, int] = LETTER) -> list[SamplePage]:
    """``count`` pages of numbered paragraphs, each page saying its number."""
    pages = []
    for number in range(1, count + 1):
        lines = [f"{title} - page {number} of {count}", ""]
        for paragraph in range(1, 9):
            lines.append(f"{number}.{paragraph} The quarterly figures for region {paragraph} were reviewed")
            lines.append(f"and found in order; totals carried to page {min(number + 1, count)}.")
        pages.append(SamplePage(lines, size=size))
    return pages


INVOICE_FIELDS = {
    "invoice_number": "INV-2026-0042",
    "date": "2026-11-30",
    "seller": "Northwind Traders Ltd",
    "buyer": "Contoso Research GmbH",
    "currency": "EUR",
    "total": 1234.50,
}


def write_invoice(path: str | os.PathLike, fields: dict | None = None) -> str:
    """A one-page invoice whose fields (``INVOICE_FIELDS`` by default) a model should extract."""
    f = {**INVOICE_FIELDS, **(fields or {})}
    lines = [
        f"INVOICE {f['invoice_number']}",
        f"Date: {f['date']}",
        "",
        f"From: {f['seller']}",
        f"To: {f['buyer']}",
        "",
        "Item                         Qty    Price",
        "Sensor module                  3   300.00",
        "Calibration service            1   334.50",
        "",
        f"Total due: {f['total']:.2f} {f['currency']}",
    ]
    return write_pdf(path, [SamplePage(lines, size=A4, font_size=14)])
