"""The clients' pure parts: page ranges, PDF documents found, JSON answers, byte limits, server limits."""

from __future__ import annotations

import io

import pytest
from PIL import Image

from mmserve.clients._transport import ServerInfo, Structured, fit_bytes
from mmserve.clients.ocr import find_documents, markdown, parse_pages
from mmserve.clients.samples import SamplePage, sample_pages, write_pdf


def test_page_ranges_parse_singles_ranges_and_open_ends():
    """ "1-3,7,10-" is pages 1 to 3, 7, and 10 to the end."""
    assert parse_pages("1-3, 7,10-") == [(1, 3), (7, 7), (10, None)]
    assert parse_pages(None) is None


@pytest.mark.parametrize("text", ["0", "3-1", "a", "1-2-3", ""])
def test_bad_page_ranges_are_refused(text):
    """Page 0, a backwards range or text that is not a range is a ValueError (empty: all pages)."""
    if text == "":
        assert parse_pages(text) is None
        return
    with pytest.raises(ValueError, match="page range"):
        parse_pages(text)


def test_pdfs_in_a_folder_are_documents_and_other_files_are_named(tmp_path):
    """A folder with two PDFs, a page image and a note: two PDF documents, one image document, one skip."""
    write_pdf(tmp_path / "b.pdf", sample_pages(3))
    write_pdf(tmp_path / "a.pdf", [SamplePage(["one"])])
    Image.new("L", (40, 40), 255).save(tmp_path / "scan.png")
    (tmp_path / "note.txt").write_text("x")
    skipped: list = []
    documents = find_documents(tmp_path, pages="2-", skipped=skipped)
    assert [(d.name, [p.number for p in d.pages], d.page_total) for d in documents] == [
        (tmp_path.name, [], 1),
        ("a", [], 1),
        ("b", [2, 3], 3),
    ]
    assert [path.endswith("note.txt") for path, _ in skipped] == [True]


def test_a_damaged_pdf_is_a_document_with_an_error(tmp_path):
    """A PDF cut in half is found as a document carrying a broken_pdf error, not an exception."""
    write_pdf(tmp_path / "whole.pdf", sample_pages(2))
    data = (tmp_path / "whole.pdf").read_bytes()
    (tmp_path / "cut.pdf").write_bytes(data[: len(data) // 2])
    (document,) = find_documents(tmp_path / "cut.pdf")
    assert document.pages == [] and document.error["error"]["code"] == "broken_pdf"


def test_markdown_heads_each_page_and_says_why_one_is_missing(tmp_path):
    """Markdown: a title, "## Page N" per page, and a note for a page not transcribed."""
    write_pdf(tmp_path / "r.pdf", sample_pages(2))
    (document,) = find_documents(tmp_path / "r.pdf")
    keys = [(p.document, p.number, p.sha256) for p in document.pages]
    text = markdown(document, {keys[0]: "Hello"}, {keys[1]: "HTTP 500"})
    assert text.splitlines()[0] == "# r"
    assert "## Page 1\n\nHello" in text and "## Page 2" in text and "HTTP 500" in text


@pytest.mark.parametrize(
    ("answer", "expected"),
    [('{"a": 1}', {"a": 1}), ('```json\n{"a": 2}\n```', {"a": 2}), ('Here: {"a": 3} done', {"a": 3})],
)
def test_json_is_found_in_an_answer(answer, expected):
    """Plain JSON, a fenced block, or one object inside text all parse."""
    assert Structured.parse(answer) == (expected, None)


def test_an_answer_without_json_says_so():
    """Random text gives no value and an error."""
    assert Structured.parse("no json here") == (None, "the answer is not JSON")


def test_an_image_over_the_byte_limit_is_re_encoded_under_it():
    """A noisy 600 px PNG over 200 kB comes back as a JPEG under 200 kB."""
    import os

    noise = Image.frombytes("RGB", (600, 600), os.urandom(600 * 600 * 3))
    buffer = io.BytesIO()
    noise.save(buffer, format="PNG")
    assert buffer.tell() > 200_000
    smaller = fit_bytes(buffer.getvalue(), 200_000)
    assert len(smaller) <= 200_000 and smaller[:3] == b"\xff\xd8\xff"


def test_server_limits_give_concurrency_and_byte_limit():
    """Two workers of batch 32 fill 16 requests (the cap); the byte limit is the tighter of image and body."""
    info = ServerInfo(
        max_image_side=1536, max_image_bytes=20_000_000, max_body_bytes=8_000_000, max_batch_size=32, replicas=2
    )
    assert info.concurrency(fallback=2) == 16 and ServerInfo().concurrency(fallback=3) == 3
    assert info.byte_limit() == 8_000_000 * 3 // 4 - 65536
    assert ServerInfo().byte_limit() is None and not ServerInfo().is_mmserve


def test_throttle_halves_on_overload_and_grows_back_on_success():
    """16 in flight, an overload halves the limit; a limit's worth of successes adds one back."""
    import asyncio

    from mmserve.clients._transport import Throttle

    async def scenario() -> list[int]:
        throttle = Throttle(16)
        seen = []
        async with throttle:
            throttle.active = 16  # as if sixteen requests were in flight
            throttle.overloaded()
            seen.append(throttle.limit)
            throttle.active = 1
        for _ in range(8):
            throttle.succeeded()
        seen.append(throttle.limit)
        return seen

    assert asyncio.run(scenario()) == [8, 9]
