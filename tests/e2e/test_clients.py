"""The batch clients (caption, ocr) against a real `mmserve serve` on the tiny models."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from PIL import Image, ImageDraw

from mmserve.clients import caption, ocr
from tests.conftest import free_port
from tests.e2e._proxy import Proxy

pytestmark = pytest.mark.slow

FAST = {"max_tokens": 8, "progress": False}


def make_image(path: Path, size: tuple[int, int], shade: int, mode: str = "RGB") -> Path:
    """A small picture with a label, saved in the format its suffix names."""
    image = Image.new(mode, size, (shade, 120, 255 - shade) if mode == "RGB" else 255)
    ImageDraw.Draw(image).text((8, 8), f"{path.stem} {shade}", fill=(0, 0, 0) if mode == "RGB" else 0)
    path.parent.mkdir(parents=True, exist_ok=True)
    image.save(path)
    return path


def make_page(text: str, size: tuple[int, int] = (300, 400)) -> Image.Image:
    page = Image.new("L", size, 255)
    ImageDraw.Draw(page).text((20, 20), text, fill=0)
    return page


def lines(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def dead_url() -> str:
    """An API root nobody listens on: any request to it fails."""
    return f"http://127.0.0.1:{free_port()}/v1"


@pytest.fixture(scope="module")
def api(server) -> str:
    return f"{server.base_url}/v1"


@pytest.fixture(scope="module")
def folder(tmp_path_factory) -> Path:
    """Six small images of different sizes and formats, one in a subfolder."""
    root = tmp_path_factory.mktemp("images")
    names = ["a.png", "b.jpg", "c.webp", "d.bmp", "e.gif", "sub/f.png"]
    for i, name in enumerate(names):
        make_image(root / name, (64 + 16 * i, 48 + 8 * i), 40 * i)
    (root / "notes.txt").write_text("not an image")
    return root


@pytest.fixture(scope="module")
def captioned(api, folder, tmp_path_factory) -> tuple[Path, caption.Summary]:
    """The folder captioned once; tests copy the journal before changing anything."""
    out = tmp_path_factory.mktemp("captions") / "captions.jsonl"
    return out, caption.caption(folder, out=out, base_url=api, **FAST)


def test_caption_folder_writes_one_line_per_image_with_guard_report(captioned, folder):
    """Captioning a folder writes one successful line per image, with the server's size report."""
    out, summary = captioned
    records = lines(out)
    assert summary.exit_code == 0 and summary.done == 6
    assert len(records) == 6
    for record in records:
        assert record["error"] is None and isinstance(record["caption"], str) and record["caption"]
        assert record["finish_reason"] in ("stop", "length") and record["usage"]["completion_tokens"] <= 8
        with Image.open(record["path"]) as image:
            assert record["mmserve"]["images"][0]["original"] == list(image.size)
        assert record["mmserve"]["route"] == "vision"
    assert {Path(r["path"]).relative_to(folder).as_posix() for r in records} == {
        "a.png",
        "b.jpg",
        "c.webp",
        "d.bmp",
        "e.gif",
        "sub/f.png",
    }


def test_caption_rerun_skips_done_images_without_contacting_the_server(captioned, folder, tmp_path, capsys):
    """A re-run skips every image already done: it succeeds even with no server, and the journal is unchanged."""
    out = tmp_path / "captions.jsonl"
    shutil.copy(captioned[0], out)
    before = out.read_bytes()
    code = caption.main([str(folder), "-o", str(out), "--base-url", dead_url(), "--retries", "0"])
    assert code == 0
    assert out.read_bytes() == before
    assert "0 done, 6 skipped" in capsys.readouterr().err


def test_caption_truncated_last_line_is_dropped_and_that_image_redone(captioned, folder, api, tmp_path):
    """A last line cut short by a crash is ignored on resume and only that image is captioned again."""
    out = tmp_path / "captions.jsonl"
    content = captioned[0].read_text().splitlines(keepends=True)
    cut = content[-1]
    out.write_text("".join(content[:-1]) + cut[: len(cut) // 2])
    summary = caption.caption(folder, out=out, base_url=api, **FAST)
    assert (summary.done, summary.skipped) == (1, 5)
    records = lines(out)  # every line parses
    assert len(records) == 6
    assert records[-1]["path"] == json.loads(cut)["path"] and records[-1]["error"] is None


def test_caption_corrupt_image_is_a_permanent_failure_and_the_run_goes_on(api, tmp_path, capsys):
    """An undecodable image gets the server's 400 envelope, is not retried, and the others are captioned; exit 1."""
    make_image(tmp_path / "in" / "good1.png", (80, 60), 10)
    (tmp_path / "in" / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"not really a png" * 8)
    make_image(tmp_path / "in" / "good2.jpg", (60, 80), 200)
    out = tmp_path / "captions.jsonl"
    code = caption.main([str(tmp_path / "in"), "-o", str(out), "--base-url", api, "--max-tokens", "8", "-q"])
    assert code == 1
    records = {Path(r["path"]).name: r for r in lines(out)}
    broken = records["broken.png"]
    assert broken["status"] == 400 and broken["permanent"] is True and broken["attempts"] == 1
    assert broken["error"]["error"]["code"] == "invalid_image"
    assert set(broken["error"]["error"]) == {"message", "type", "param", "code"}
    assert broken["caption"] is None
    assert records["good1.png"]["error"] is None and records["good2.jpg"]["error"] is None
    assert "broken.png" in capsys.readouterr().err


def test_caption_earlier_permanent_failure_is_retried_only_with_retry_failed(api, tmp_path):
    """A re-run leaves a permanently failed image alone unless retry_failed is set."""
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "broken.png").write_bytes(b"garbage")
    out = tmp_path / "captions.jsonl"
    assert caption.caption(tmp_path / "in", out=out, base_url=api, **FAST).failed == 1
    again = caption.caption(tmp_path / "in", out=out, base_url=api, **FAST)
    assert (again.failed_before, again.failed, again.exit_code) == (1, 0, 1)
    assert len(lines(out)) == 1
    forced = caption.caption(tmp_path / "in", out=out, base_url=api, retry_failed=True, **FAST)
    assert forced.failed == 1 and len(lines(out)) == 2


class OverloadedProxy(Proxy):
    """Answers the first ``refusals`` requests with 503 + Retry-After, then forwards to the server."""

    def __init__(self, upstream: str, refusals: int) -> None:
        self.refusals = refusals
        self.seen = 0
        super().__init__(upstream)  # serves from here on

    def intercept(self, body: bytes) -> tuple[int, dict, dict] | None:
        if not body:  # GET /v1/models and the like
            return None
        self.seen += 1
        if self.seen > self.refusals:
            return None
        return (
            503,
            {"Retry-After": "1"},
            {"message": "busy", "type": "server_overloaded", "param": None, "code": "overloaded"},
        )


def test_caption_overload_is_retried_after_retry_after(server, tmp_path):
    """503 with Retry-After is retried after the advised wait, and the image then succeeds."""
    make_image(tmp_path / "in" / "one.png", (64, 64), 90)
    proxy = OverloadedProxy(server.base_url, refusals=2)
    try:
        summary = caption.caption(tmp_path / "in", out=tmp_path / "c.jsonl", base_url=proxy.url, **FAST)
    finally:
        proxy.close()
    (record,) = lines(tmp_path / "c.jsonl")
    assert record["error"] is None and record["attempts"] == 3
    assert record["elapsed_s"] >= 2.0  # two waits of at least Retry-After: 1
    assert summary.retries == 2 and summary.exit_code == 0


@pytest.fixture(scope="module")
def tiff(tmp_path_factory) -> Path:
    """A 3-page multi-frame TIFF."""
    path = tmp_path_factory.mktemp("docs") / "letter.tiff"
    pages = [make_page(f"Letter page {n}: dear reader") for n in (1, 2, 3)]
    pages[0].save(path, save_all=True, append_images=pages[1:])
    return path


@pytest.fixture(scope="module")
def tiff_ocr(api, tiff, tmp_path_factory) -> tuple[Path, ocr.OcrSummary]:
    out = tmp_path_factory.mktemp("ocr") / "ocr.jsonl"
    return out, ocr.ocr(tiff, out=out, base_url=api, **FAST)


def test_ocr_multiframe_tiff_writes_pages_in_order_and_a_text_file(tiff_ocr, tiff):
    """Each TIFF frame is a page: lines for pages 1..3 in order, and letter.txt joins them with form feeds."""
    out, summary = tiff_ocr
    records = lines(out)
    assert summary.exit_code == 0
    assert [(r["page"], r["frame"], r["pages"]) for r in records] == [(1, 0, 3), (2, 1, 3), (3, 2, 3)]
    assert all(r["document"] == str(tiff) and r["error"] is None and r["original"] == [300, 400] for r in records)
    text = (out.parent / "letter.txt").read_text()
    assert text == "\f".join(r["text"] for r in records)
    assert summary.texts == [str(out.parent / "letter.txt")]


def test_ocr_rerun_skips_done_pages_without_contacting_the_server(tiff_ocr, tiff, tmp_path):
    """An OCR re-run skips finished pages (no server needed) and still writes the document's text."""
    out = tmp_path / "ocr.jsonl"
    shutil.copy(tiff_ocr[0], out)
    summary = ocr.ocr(tiff, out=out, base_url=dead_url(), retries=0, progress=False)
    assert (summary.skipped, summary.done, summary.exit_code) == (3, 0, 0)
    assert out.read_bytes() == tiff_ocr[0].read_bytes()
    assert (tmp_path / "letter.txt").read_text() == (tiff_ocr[0].parent / "letter.txt").read_text()


def test_ocr_folder_pages_go_in_natural_order(api, tmp_path):
    """A folder's page files are pages in natural order (page2 before page10) and make report.txt."""
    (tmp_path / "report").mkdir()
    for n in (10, 2, 1):
        make_page(f"Report page {n}").save(tmp_path / "report" / f"page{n}.png")
    out = tmp_path / "out" / "ocr.jsonl"
    summary = ocr.ocr(tmp_path / "report", out=out, base_url=api, **FAST)
    records = lines(out)
    assert [Path(r["source"]).name for r in records] == ["page1.png", "page2.png", "page10.png"]
    assert [r["page"] for r in records] == [1, 2, 3] and all(r["frame"] is None for r in records)
    assert (tmp_path / "out" / "report.txt").read_text().count("\f") == 2
    assert summary.exit_code == 0


def test_ocr_large_page_is_reported_resized_and_warned_about(api, tmp_path, capsys):
    """A 2000x2600 scan is recorded with resized < original, and a legibility warning goes to stderr."""
    make_page("A big scan with small print", (2000, 2600)).save(tmp_path / "scan.png")
    out = tmp_path / "ocr.jsonl"
    # 3000 px: above every RAM tier's ceiling (2048), so the warning fires on any machine.
    args = [
        str(tmp_path / "scan.png"),
        "-o",
        str(out),
        "--base-url",
        api,
        "--max-tokens",
        "8",
        "-q",
        "--warn-below",
        "3000",
        "--image-side",
        "600",  # asks the server for no more than 600 px: quick on the CPU
    ]
    code = ocr.main(args)
    (record,) = lines(out)
    assert code == 0
    assert record["original"] == [2000, 2600]
    assert max(record["resized"]) < 2600 and record["resized"] == record["mmserve"]["images"][0]["resized"]
    assert any("shrank it from 2000x2600" in w for w in record["warnings"])
    assert "shrank it from 2000x2600" in capsys.readouterr().err


def test_ocr_document_with_a_failed_page_gets_no_text_file(api, tmp_path):
    """If any page fails, its document's text file is not written and the run exits 1."""
    (tmp_path / "doc").mkdir()
    make_page("page one").save(tmp_path / "doc" / "1.png")
    (tmp_path / "doc" / "2.png").write_bytes(b"\x89PNG\r\n\x1a\ntruncated")
    summary = ocr.ocr(tmp_path / "doc", out=tmp_path / "ocr.jsonl", base_url=api, **FAST)
    records = lines(tmp_path / "ocr.jsonl")
    assert [(r["page"], r["status"]) for r in records] == [(1, 200), (2, 400)]
    assert not (tmp_path / "doc.txt").exists()
    assert summary.incomplete == [str(tmp_path / "doc")] and summary.exit_code == 1
