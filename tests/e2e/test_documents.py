"""PDF documents through `mmserve ocr`, and the clients' manners, against a real server on the tiny models."""

from __future__ import annotations

import json
import os
import shutil
import time
from pathlib import Path

import httpx
import pytest
from PIL import Image, ImageDraw

from mmserve.clients import caption, ocr
from mmserve.clients.samples import SamplePage, sample_pages, write_pdf
from tests.conftest import free_port, start_server, stop_server
from tests.e2e._proxy import Proxy

pytestmark = pytest.mark.slow

FAST = {"max_tokens": 8, "progress": False}
SIDE = 448  # pages this size keep the tiny model on two CPU cores quick
GRID = 28  # the processor rounds a side up to its grid: a page may come out this much larger
PAGES = {**FAST, "image_side": SIDE}


def lines(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def dead_url() -> str:
    return f"http://127.0.0.1:{free_port()}/v1"


def encrypt(source: Path, target: Path) -> Path:
    pypdf = pytest.importorskip("pypdf")
    writer = pypdf.PdfWriter(clone_from=str(source))
    writer.encrypt("secret")
    with open(target, "wb") as file:
        writer.write(file)
    return target


@pytest.fixture(scope="module")
def api(server) -> str:
    return f"{server.base_url}/v1"


@pytest.fixture(scope="module")
def limits(api) -> dict:
    models = httpx.get(f"{api}/models", timeout=10).json()["data"]
    return next(model["mmserve"] for model in models if "mmserve" in model)


@pytest.fixture(scope="module")
def library(tmp_path_factory) -> Path:
    """Two good PDFs (mixed page sizes, a rotated page), an encrypted one, a truncated one."""
    root = tmp_path_factory.mktemp("library")
    pages = [
        SamplePage(["Report page one", "Total: 42"]),
        SamplePage(["Report page two, landscape"], size=(792, 612)),
        SamplePage(["Report page three, rotated"], rotate=90),
    ]
    write_pdf(root / "report.pdf", pages)
    write_pdf(root / "memo.pdf", sample_pages(2, title="Memo", size=(420, 595)))
    encrypt(root / "memo.pdf", root / "locked.pdf")
    data = (root / "report.pdf").read_bytes()
    (root / "cut.pdf").write_bytes(data[: len(data) // 2])
    return root


@pytest.fixture(scope="module")
def first_run(api, library, tmp_path_factory):
    """The four PDFs through `mmserve ocr` once."""
    out = tmp_path_factory.mktemp("run") / "run.jsonl"
    names = ["report.pdf", "locked.pdf", "memo.pdf", "cut.pdf"]
    summary = ocr.ocr([library / name for name in names], out=out, base_url=api, **PAGES)
    return out, summary


def test_each_pdf_page_gets_a_journal_line_with_document_page_text_and_size(first_run, library, limits):
    """Every page of the readable PDFs has one successful line naming document, 1-based page, text and size sent."""
    out, summary = first_run
    pages = [r for r in lines(out) if r["page"] is not None]
    assert [(Path(r["document"]).name, r["page"]) for r in pages] == [
        ("report.pdf", 1),
        ("report.pdf", 2),
        ("report.pdf", 3),
        ("memo.pdf", 1),
        ("memo.pdf", 2),
    ]
    for record in pages:
        assert record["error"] is None and isinstance(record["text"], str)
        assert max(record["size"]) == SIDE  # rendered at the side asked for
        assert record["original"] == record["size"]  # the server got what was rendered
        assert max(record["resized"]) <= SIDE + GRID
        assert record["tokens"] > 0 and record["render"]["dpi"] > 0
    by_page = {r["page"]: r for r in pages if r["document"].endswith("report.pdf")}
    assert by_page[1]["size"][0] < by_page[1]["size"][1]  # portrait
    assert by_page[2]["size"][0] > by_page[2]["size"][1]  # landscape page
    assert by_page[3]["size"][0] > by_page[3]["size"][1]  # portrait page with /Rotate 90: rendered upright, wide


def test_unreadable_pdfs_are_named_and_the_rest_completes(first_run, library):
    """The encrypted and the truncated PDF are each reported; the others complete; the run exits 1."""
    out, summary = first_run
    assert summary.exit_code == 1
    failed = {Path(r["document"]).name: r for r in lines(out) if r["page"] is None}
    assert set(failed) == {"locked.pdf", "cut.pdf"}
    assert failed["locked.pdf"]["error"]["error"]["code"] == "encrypted_pdf"
    assert failed["cut.pdf"]["error"]["error"]["code"] == "broken_pdf"
    assert sorted(Path(f.split(":")[0]).name for f in summary.failed_documents) == ["cut.pdf", "locked.pdf"]
    assert summary.done == 5 and summary.failed == 0


def test_markdown_per_document_has_every_page_under_a_page_heading(first_run):
    """report.md and memo.md are written beside the journal with each page under "Page N", in order."""
    out, summary = first_run
    records = [r for r in lines(out) if r["page"] is not None]
    for stem, count in (("report", 3), ("memo", 2)):
        text = (out.parent / f"{stem}.md").read_text()
        headings = [line for line in text.splitlines() if line.startswith("## ")]
        assert headings == [f"## Page {n}" for n in range(1, count + 1)]
        for record in records:
            if Path(record["document"]).stem == stem and record["text"].strip():
                assert record["text"].strip() in text
    assert not (out.parent / "locked.md").exists() and not (out.parent / "cut.md").exists()


def test_resumed_run_sends_nothing_already_done(first_run, library, tmp_path):
    """A re-run with no server reachable sends nothing, adds no line, and rewrites the same Markdown."""
    out = tmp_path / "run.jsonl"
    shutil.copy(first_run[0], out)
    before = out.read_bytes()
    names = ["report.pdf", "locked.pdf", "memo.pdf", "cut.pdf"]
    summary = ocr.ocr([library / n for n in names], out=out, base_url=dead_url(), retries=0, progress=False)
    assert (summary.skipped, summary.done, summary.failed) == (5, 0, 0)
    assert summary.exit_code == 1  # the unreadable documents are still unreadable
    assert out.read_bytes() == before
    assert (tmp_path / "report.md").read_text() == (first_run[0].parent / "report.md").read_text()


def test_interrupted_run_resumes_with_only_the_missing_pages(first_run, library, api, tmp_path):
    """After a crash mid-run (two whole lines kept, a third cut short) only the other pages are sent."""
    out = tmp_path / "run.jsonl"
    kept = [line for line in first_run[0].read_text().splitlines(keepends=True) if '"page":null' not in line][:3]
    out.write_text("".join(kept[:2]) + kept[2][:40])
    summary = ocr.ocr([library / "report.pdf", library / "memo.pdf"], out=out, base_url=api, **PAGES)
    assert (summary.skipped, summary.done, summary.exit_code) == (2, 3, 0)
    pages = [(Path(r["document"]).name, r["page"]) for r in lines(out)]
    assert len(pages) == len(set(pages)) == 5


def test_page_ranges_pick_pages_and_keep_their_numbers(api, library, tmp_path):
    """--pages 2-3 sends pages 2 and 3 only; the Markdown has just those pages."""
    out = tmp_path / "run.jsonl"
    args = [str(library / "report.pdf"), "-o", str(out), "--base-url", api, "--max-tokens", "8", "-q", "--pages", "2-"]
    args += ["--image-side", str(SIDE)]
    assert ocr.main(args) == 0
    assert [r["page"] for r in lines(out)] == [2, 3]
    assert "## Page 1" not in (tmp_path / "report.md").read_text()


def test_a_folder_of_pdfs_makes_one_document_per_pdf_and_names_other_files(api, library, tmp_path, capsys):
    """A folder argument: each PDF in it is a document; a stray file is named as skipped."""
    folder = tmp_path / "inbox"
    folder.mkdir()
    shutil.copy(library / "memo.pdf", folder / "a.pdf")
    shutil.copy(library / "memo.pdf", folder / "b.pdf")
    (folder / "notes.txt").write_text("not a page")
    out = tmp_path / "run.jsonl"
    summary = ocr.ocr(folder, out=out, base_url=api, pages="1", **PAGES)
    assert [(Path(r["document"]).name, r["page"]) for r in lines(out)] == [("a.pdf", 1), ("b.pdf", 1)]
    assert summary.exit_code == 0 and (tmp_path / "a.md").exists() and (tmp_path / "b.md").exists()
    assert len(summary.skipped_files) == 1 and "notes.txt" in summary.skipped_files[0]
    assert "notes.txt" in capsys.readouterr().err


def test_text_layer_skip_takes_the_pdf_text_without_asking_the_model(library, tmp_path):
    """--text-layer skip: pages with a text layer need no server and say they came from it."""
    out = tmp_path / "run.jsonl"
    summary = ocr.ocr(library / "memo.pdf", out=out, base_url=dead_url(), text_layer="skip", progress=False)
    records = lines(out)
    assert summary.exit_code == 0 and summary.text_layer_pages == 2
    assert [r["via"] for r in records] == ["text-layer", "text-layer"]
    assert records[0]["text"].startswith("Memo - page 1 of 2")


def test_text_layer_compare_records_both_texts(api, library, tmp_path):
    """--text-layer compare asks the model and records the PDF's own text and their agreement."""
    out = tmp_path / "run.jsonl"
    ocr.ocr(library / "memo.pdf", out=out, base_url=api, text_layer="compare", pages="1", **PAGES)
    (record,) = lines(out)
    assert record["via"] == "model" and record["text_layer"].startswith("Memo - page 1")
    assert 0.0 <= record["text_layer_agreement"] <= 1.0


@pytest.fixture(scope="module")
def bounded(models, tmp_path_factory):
    """A server started with --max-image-side 320: no request may start an image above it."""
    srv = start_server(models, tmp_path_factory.mktemp("bounded"), "--max-image-side", "320")
    yield f"{srv.base_url}/v1"
    stop_server(srv)


def test_client_never_asks_for_more_than_the_servers_max_image_side(bounded, library, tmp_path):
    """Against --max-image-side 320, asking for 20000 px or "max" renders and sends 320 px pages, read at 320."""
    models = httpx.get(f"{bounded}/models", timeout=10).json()["data"]
    limits = next(model["mmserve"] for model in models if "mmserve" in model)
    assert limits["max_image_side"] == limits["image_side"] == 320
    out = tmp_path / "run.jsonl"
    ocr.ocr(library / "report.pdf", out=out, base_url=bounded, image_side=20000, pages="1", **FAST)
    args = [str(library / "report.pdf"), "-o", str(out), "--base-url", bounded, "--pages", "2", "-q"]
    assert ocr.main([*args, "--max-tokens", "8", "--image-side", "max"]) == 0
    for record in lines(out):
        assert max(record["size"]) == 320 and max(record["resized"]) <= 320 + GRID


def test_by_default_pages_are_sent_at_the_side_the_server_starts_at(api, library, limits, tmp_path):
    """With no --image-side, a page is rendered at the server's starting side (image_side in /v1/models)."""
    out = tmp_path / "run.jsonl"
    ocr.ocr(library / "memo.pdf", out=out, base_url=api, pages="1", **FAST)
    (record,) = lines(out)
    assert max(record["size"]) == limits["image_side"] and record["start_side"] == limits["image_side"]


def test_no_server_exits_non_zero_within_20_s_with_one_line(library, tmp_path, capsys):
    """With nothing listening, ocr gives up within 20 s with exit 1 and one line on stderr."""
    started = time.monotonic()
    code = ocr.main([str(library / "memo.pdf"), "-o", str(tmp_path / "r.jsonl"), "--base-url", dead_url()])
    elapsed = time.monotonic() - started
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 1 and elapsed < 20
    assert len(err) == 1 and "cannot reach" in err[0]


def test_openai_base_url_from_the_environment_is_used(api, library, tmp_path, monkeypatch):
    """With no --base-url, OPENAI_BASE_URL names the server."""
    monkeypatch.setenv("OPENAI_BASE_URL", api)
    out = tmp_path / "run.jsonl"
    summary = ocr.ocr(library / "memo.pdf", out=out, pages="1", **PAGES)
    assert summary.exit_code == 0 and lines(out)[0]["error"] is None


def test_caption_shrinks_an_image_over_the_servers_byte_limit(api, limits, tmp_path):
    """A PNG larger than the server's image byte limit is re-encoded smaller and captioned, not refused."""
    side = 2600
    noise = Image.frombytes("RGB", (side, side), os.urandom(side * side * 3))
    path = tmp_path / "in" / "huge.png"
    path.parent.mkdir()
    noise.save(path, compress_level=0)
    assert path.stat().st_size > limits["max_image_bytes"]
    summary = caption.caption(path, out=tmp_path / "c.jsonl", base_url=api, **FAST)
    (record,) = lines(tmp_path / "c.jsonl")
    assert summary.exit_code == 0 and record["error"] is None
    assert record["mmserve"]["images"][0]["original"][0] <= side


def test_caption_heic_photo_is_converted_and_sent(api, tmp_path):
    """A .heic photo is decoded with pillow-heif and captioned."""
    pillow_heif = pytest.importorskip("pillow_heif")
    pillow_heif.register_heif_opener()
    path = tmp_path / "in" / "photo.heic"
    path.parent.mkdir()
    picture = Image.new("RGB", (96, 64), (200, 40, 40))
    ImageDraw.Draw(picture).text((4, 4), "heic", fill=(255, 255, 255))
    picture.save(path, format="HEIF")
    summary = caption.caption(path.parent, out=tmp_path / "c.jsonl", base_url=api, **FAST)
    (record,) = lines(tmp_path / "c.jsonl")
    assert summary.exit_code == 0 and record["error"] is None
    assert record["mmserve"]["images"][0]["original"] == [96, 64]


SCHEMA = {
    "type": "object",
    "properties": {"colour": {"type": "string", "enum": ["red", "green", "blue"]}},
    "required": ["colour"],
    "additionalProperties": False,
}


def test_caption_schema_goes_through_response_format(api, tmp_path):
    """--schema: the server's constrained decoding answers JSON matching the schema, parsed into `json`."""
    folder = tmp_path / "in"
    folder.mkdir()
    Image.new("RGB", (64, 48), (200, 20, 20)).save(folder / "red.png")
    summary = caption.caption(
        folder, out=tmp_path / "c.jsonl", base_url=api, schema=SCHEMA, max_tokens=48, progress=False
    )
    (record,) = lines(tmp_path / "c.jsonl")
    assert summary.exit_code == 0 and record["json_via"] == "response_format"
    assert record["json"]["colour"] in ("red", "green", "blue") and record["json_error"] is None


class NoResponseFormatProxy(Proxy):
    """Forwards to the server, but answers 400 unsupported_parameter to any request with response_format."""

    def __init__(self, upstream: str) -> None:
        self.refused = 0
        super().__init__(upstream)  # serves from here on

    def intercept(self, body: bytes) -> tuple[int, dict, dict] | None:
        if not body or "response_format" not in json.loads(body):
            return None
        self.refused += 1
        error = {
            "message": "response_format is not supported",
            "type": "invalid_request_error",
            "param": "response_format.type",
            "code": "unsupported_parameter",
        }
        return 400, {}, error


def test_caption_schema_falls_back_to_the_prompt_when_the_server_lacks_response_format(server, tmp_path, capsys):
    """--schema against a server refusing response_format: the schema goes in the prompt instead, said once."""
    folder = tmp_path / "in"
    folder.mkdir()
    for n in (1, 2):
        Image.new("RGB", (64, 48), (n * 60, 90, 90)).save(folder / f"{n}.png")
    proxy = NoResponseFormatProxy(server.base_url)
    try:
        summary = caption.caption(
            folder, out=tmp_path / "c.jsonl", base_url=proxy.url, schema=SCHEMA, concurrency=1, **FAST
        )
    finally:
        proxy.close()
    records = lines(tmp_path / "c.jsonl")
    assert summary.exit_code == 0 and proxy.refused == 1
    assert [r["json_via"] for r in records] == ["prompt", "prompt"]
    assert all(r["json"] is not None or r["json_error"] for r in records)
    assert capsys.readouterr().err.count("does not take response_format") == 1


def test_caption_sidecars_csv_globs_and_skipped_files(api, tmp_path, capsys):
    """--include/--exclude pick files, the rest are named; --sidecar writes .txt files; --csv a table."""
    folder = tmp_path / "in"
    (folder / "sub").mkdir(parents=True)
    for name in ("keep.png", "skip.png", "sub/deep.png"):
        Image.new("RGB", (48, 48), (10, 200, 10)).save(folder / name)
    (folder / "readme.md").write_text("hi")
    summary = caption.caption(
        folder,
        out=tmp_path / "c.jsonl",
        base_url=api,
        exclude=["skip*"],
        recursive=False,
        sidecar=True,
        csv_path=tmp_path / "c.csv",
        **FAST,
    )
    assert summary.exit_code == 0 and summary.done == 1
    assert (folder / "keep.txt").read_text().strip() == lines(tmp_path / "c.jsonl")[0]["caption"].strip()
    assert not (folder / "skip.txt").exists()
    assert sorted(Path(s.split(" (")[0]).name for s in summary.skipped_files) == ["readme.md", "skip.png"]
    assert (tmp_path / "c.csv").read_text().splitlines()[0] == "path,caption,json,error"


def test_caption_dry_run_prints_what_would_be_sent_and_sends_nothing(tmp_path, capsys):
    """--dry-run lists the images and the prompt without any server."""
    folder = tmp_path / "in"
    folder.mkdir()
    Image.new("RGB", (32, 32)).save(folder / "one.png")
    code = caption.main([str(folder), "-o", str(tmp_path / "c.jsonl"), "--dry-run", "--base-url", dead_url()])
    out = capsys.readouterr().out
    assert code == 0 and "would send" in out and "one.png" in out
    assert not (tmp_path / "c.jsonl").exists()


def test_detail_high_and_the_mmserve_extension_start_larger_up_to_the_ceiling(api, limits):
    """detail "high" starts a page at the server's ceiling, mmserve.max_image_side at what it asks."""
    import base64
    import io

    from openai import OpenAI

    page = Image.new("L", (700, 500), 255)
    buffer = io.BytesIO()
    page.save(buffer, format="PNG")
    uri = "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode()
    client = OpenAI(base_url=api, api_key="none")

    def ask(detail: str, **extra) -> dict:
        messages = [{"role": "user", "content": [{"type": "image_url", "image_url": {"url": uri, "detail": detail}}]}]
        reply = client.chat.completions.create(model="auto", messages=messages, max_tokens=4, **extra)
        return reply.model_extra["mmserve"]["images"][0]

    default, high = ask("auto"), ask("high")
    asked = ask("auto", extra_body={"mmserve": {"max_image_side": 600}})
    assert default["start_side"] == limits["image_side"] and high["start_side"] == limits["max_image_side"]
    assert max(default["resized"]) <= limits["image_side"] + GRID
    assert max(high["resized"]) >= min(700, limits["max_image_side"])  # not shrunk to the default
    assert asked["start_side"] == min(600, limits["max_image_side"]) and max(asked["resized"]) <= 600 + GRID


def test_extension_sides_out_of_range_are_refused_naming_the_field(api):
    """mmserve.max_image_side below 28 is a 400 naming the field."""
    body = {
        "model": "auto",
        "messages": [{"role": "user", "content": "hi"}],
        "max_tokens": 2,
        "mmserve": {"max_image_side": 3},
    }
    answer = httpx.post(f"{api}/chat/completions", json=body, timeout=30)
    assert answer.status_code == 400 and answer.json()["error"]["param"] == "mmserve.max_image_side"


@pytest.mark.parametrize("stop", ["SIGINT", "SIGTERM"])
def test_a_stopped_run_then_resume_accounts_for_every_page_once(api, tmp_path, stop):
    """Ctrl-C or SIGTERM during `mmserve ocr` exits 130 with whole lines; the re-run sends only the rest."""
    import signal
    import subprocess
    import sys

    pdf = write_pdf(tmp_path / "long.pdf", sample_pages(6, title="Long"))
    out = tmp_path / "run.jsonl"
    command = [sys.executable, "-m", "mmserve.cli", "ocr", pdf, "-o", str(out), "--base-url", api]
    command += ["--max-tokens", "8", "--image-side", str(SIDE), "-j", "1", "-q"]
    process = subprocess.Popen(command, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and not (out.exists() and out.read_text().count("\n") >= 2):
        time.sleep(0.05)
    process.send_signal(getattr(signal, stop))
    _, err = process.communicate(timeout=60)
    first = lines(out)
    assert process.returncode == 130 and 2 <= len(first) < 6, err
    summary = ocr.ocr(pdf, out=out, base_url=api, **PAGES)
    pages = [r["page"] for r in lines(out)]
    assert summary.skipped == len(first) and summary.done == 6 - len(first)
    assert sorted(pages) == [1, 2, 3, 4, 5, 6]
    assert [line for line in (tmp_path / "long.md").read_text().splitlines() if line.startswith("## ")] == [
        f"## Page {n}" for n in range(1, 7)
    ]


def test_ocr_schema_gathers_each_pages_json_into_the_documents_json(api, library, tmp_path):
    """ocr --schema: each page's JSON (constrained by response_format) is in its line and in <name>.json."""
    out = tmp_path / "run.jsonl"
    summary = ocr.ocr(library / "memo.pdf", out=out, base_url=api, schema=SCHEMA, image_side=SIDE, max_tokens=48,
                      progress=False)  # fmt: skip
    records = lines(out)
    gathered = json.loads((tmp_path / "memo.json").read_text())
    assert summary.exit_code == 0 and [r["json_via"] for r in records] == ["response_format"] * 2
    assert gathered["pages"] == [{"page": r["page"], "json": r["json"]} for r in records]
    assert all(page["json"]["colour"] in ("red", "green", "blue") for page in gathered["pages"])
