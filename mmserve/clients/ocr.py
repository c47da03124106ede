"""Document OCR, resumable: ``mmserve ocr report.pdf scans/ letter.tiff -o run.jsonl``.

Each input is one or more documents: a PDF (one document, its pages rendered one at
a time with pypdfium2), an image file (a multi-frame TIFF gives one page per frame),
or a folder (its image files, in natural order, are the pages of one document named
after the folder; each PDF in it is a document of its own). Files that are neither
are named and counted, never skipped in silence. ``--pages 1-3,7`` picks pages.

Pages are rendered at the side the server will actually use: the client asks the
server (``/v1/models`` advertises the side its memory guard starts at and the most a
request may ask for: its ceiling) and sends each page with ``detail: "high"`` and
``mmserve.max_image_side`` set to the side chosen — the server's own starting side
by default, ``--image-side PX`` or ``--image-side max`` (the ceiling) for more — so
the server's ``--max-image-side`` bounds what it works on whatever the client asks. When the guard shrinks pages for memory, the next pages
are rendered at the side it kept. Pages go out with bounded concurrency (by default
what fills the server's batches); one JSONL line per page is appended and fsynced, in
page order. At the end ``<name>.md`` (each page under a "Page N" heading) is written
for every document with a page done, and ``<name>.txt`` (pages separated by form
feeds) for every complete one.

A PDF that cannot be opened (encrypted, damaged) is reported as a document failure:
one journal line with ``page: null``, a line on stderr, exit status 1; the other
documents complete. Resuming follows the caption rules, keyed by document, page
number and the sha256 of the file holding the page: a re-run sends nothing already
done. ``--text-layer skip`` takes a PDF page's embedded text instead of asking the
model when it has one; ``--text-layer compare`` asks the model and records both.

JSONL line, one per page (the latest line for a document, page and sha256 counts)::

    {"document": "/abs/report.pdf", "page": 1, "pages": 3, "source": "/abs/report.pdf",
     "frame": null | 0, "sha256": "...", "text": "..." | null, "via": "model" | "text-layer",
     "size": [w, h] | null,                      # the image sent
     "render": {"dpi": 150.0, "ms": 31} | null,  # PDF pages
     "original": [w, h] | null, "resized": [w, h] | null, "tokens": n | null,
     "start_side": n | null, "max_tokens_clamped_from": null | n, "warnings": ["..."],
     "text_layer": "..." (compare), "text_layer_agreement": 0.0-1.0 (compare),
     "finish_reason": "stop" | "length" | null, "usage": {...} | null, "model": "...",
     "mmserve": {...} | null, "error": null | {"error": {"message", "type", "param", "code"}},
     "status": 200 | 4xx | 5xx | null, "permanent": bool,
     "attempts": n, "elapsed_s": s, "finished_at": "2025-01-01T00:00:00Z"}
"""

from __future__ import annotations

import argparse
import asyncio
import difflib
import hashlib
import io
import json
import os
import re
import signal
import sys
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from . import _pdf
from ._journal import Journal, JournalBusyError
from ._options import add_common_arguments, non_negative_int, positive_int, prompt_from
from ._progress import Progress, Summary
from ._transport import (
    Outcome,
    RetryPolicy,
    ServerInfo,
    ServerUnreachableError,
    Structured,
    Throttle,
    ask_structured,
    data_uri,
    default_base_url,
    fit_bytes,
    local_error,
    open_client,
    read_image,
    server_info,
)
from .caption import IMAGE_SUFFIXES, load_schema

__all__ = [
    "DEFAULT_PROMPT",
    "Document",
    "OcrSummary",
    "Page",
    "PageReadError",
    "add_arguments",
    "aocr",
    "find_documents",
    "main",
    "ocr",
    "parse_pages",
    "run",
]

DEFAULT_PROMPT = "Transcribe all text on this page."
PAGE_SEPARATOR = "\f"
PDF_SUFFIX = ".pdf"
# The longer side pages are rendered at for a server that does not say (not an mmserve).
FALLBACK_SIDE = 1600
MAX_SIDE = "max"  # image_side: the most the server allows
MIN_TEXT_LAYER_CHARS = 16  # --text-layer skip: fewer characters than this is a scan, not a text layer
_TIFF_SUFFIXES = (".tif", ".tiff")
_PNG_MODES = frozenset({"1", "L", "LA", "P", "RGB", "RGBA", "I;16"})

PathLike = str | os.PathLike
PageRanges = list[tuple[int, int | None]]


@dataclass(frozen=True)
class Page:
    """One page: a whole image file, one frame of a multi-frame TIFF, or one page of a PDF."""

    document: str  # absolute path of the document (folder or file): the key in the journal
    number: int  # 1-based, within the document
    source: Path
    frame: int | None  # frame index within a TIFF ``source``; None: the file as it is
    sha256: str  # of the source file
    pdf: bool = False  # ``source`` is a PDF and this is its page ``number``


@dataclass
class Document:
    path: Path
    name: str  # the output files are <name>.md and <name>.txt
    pages: list[Page]
    error: dict | None = None  # the document cannot be read at all (an error envelope)
    sha256: str | None = None  # of the file, for a single-file document
    page_total: int = 0  # pages in the document before --pages picked some


@dataclass
class OcrSummary(Summary):
    """A ``Summary`` plus the documents: files written, documents incomplete or unreadable."""

    documents: int = 0
    texts: list[str] = field(default_factory=list)
    markdown: list[str] = field(default_factory=list)
    incomplete: list[str] = field(default_factory=list)
    failed_documents: list[str] = field(default_factory=list)  # "path: why"
    text_layer_pages: int = 0  # pages taken from the PDF's own text (--text-layer skip)
    json_files: list[str] = field(default_factory=list)  # --schema: <name>.json per document

    @property
    def ok(self) -> bool:
        return super().ok and not self.incomplete and not self.failed_documents


def parse_pages(text: str | None) -> PageRanges | None:
    """``"1-3,7,10-"`` as ranges (1-based, inclusive; an open end runs to the last page)."""
    if text is None or not text.strip():
        return None
    ranges: PageRanges = []
    for part in text.split(","):
        match = re.fullmatch(r"\s*(\d+)\s*(?:(-)\s*(\d*)\s*)?", part)
        if not match:
            raise ValueError(f"bad page range {part.strip()!r}: use e.g. 1-3,7,10-")
        first = int(match.group(1))
        last = first if not match.group(2) else (int(match.group(3)) if match.group(3) else None)
        if first < 1 or (last is not None and last < first):
            raise ValueError(f"bad page range {part.strip()!r}: pages count from 1, first <= last")
        ranges.append((first, last))
    return ranges


def _selected(number: int, ranges: PageRanges | None) -> bool:
    return ranges is None or any(first <= number and (last is None or number <= last) for first, last in ranges)


def _natural_key(path: Path) -> list:
    return [int(part) if part.isdigit() else part.lower() for part in re.split(r"(\d+)", path.name)]


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as file:
        while chunk := file.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def _frame_count(path: Path) -> int:
    """Frames of a TIFF; 1 for anything else, or when Pillow cannot open it (the server will say why)."""
    if path.suffix.lower() not in _TIFF_SUFFIXES:
        return 1
    from PIL import Image

    try:
        with Image.open(path) as image:
            return max(1, getattr(image, "n_frames", 1))
    except Exception:
        return 1


def _pdf_document(path: Path, ranges: PageRanges | None) -> Document:
    sha256 = _sha256(path)
    try:
        count = _pdf.page_count(path)
    except _pdf.PdfError as exc:
        error = local_error(str(exc), exc.code)
        return Document(path, path.stem, [], error=error, sha256=sha256)
    pages = [
        Page(str(path), number, path, None, sha256, pdf=True)
        for number in range(1, count + 1)
        if _selected(number, ranges)
    ]
    return Document(path, path.stem, pages, sha256=sha256, page_total=count)


def _image_document(path: Path, files: list[Path], name: str, ranges: PageRanges | None) -> Document:
    pages: list[Page] = []
    number = 0
    for file in files:
        sha256 = _sha256(file)
        frames = _frame_count(file)
        for frame in range(frames):
            number += 1
            if _selected(number, ranges):
                pages.append(Page(str(path), number, file, frame if frames > 1 else None, sha256))
    return Document(path, name, pages, page_total=number)


def find_documents(
    inputs: PathLike | Iterable[PathLike],
    *,
    pages: str | PageRanges | None = None,
    skipped: list[tuple[str, str]] | None = None,
) -> list[Document]:
    """The documents named by ``inputs``, their pages listed and hashed (PDFs opened, not rendered).

    ``pages`` picks pages of every document (``"1-3,7"``). Files in a folder that are
    neither images nor PDFs are appended to ``skipped`` as ``(path, why)``. Raises
    ``FileNotFoundError`` for a missing input and ``ValueError`` when two documents
    would write the same output file. A PDF that cannot be opened is a document with
    an ``error``, not an exception.
    """
    ranges = parse_pages(pages) if isinstance(pages, str) or pages is None else pages
    items = [inputs] if isinstance(inputs, (str, os.PathLike)) else list(inputs)
    documents: list[Document] = []
    seen: set[Path] = set()
    for item in items:
        path = Path(os.path.abspath(item))
        if path in seen:
            continue
        seen.add(path)
        if path.is_dir():
            images, pdfs = [], []
            for entry in sorted(path.iterdir(), key=_natural_key):
                if entry.name.startswith(".") or not entry.is_file():
                    continue
                suffix = entry.suffix.lower()
                if suffix == PDF_SUFFIX:
                    pdfs.append(entry)
                elif suffix in IMAGE_SUFFIXES:
                    images.append(entry)
                elif skipped is not None:
                    skipped.append((str(entry), "not an image or a PDF"))
            if images:
                documents.append(_image_document(path, images, path.name, ranges))
            for pdf in pdfs:
                seen.add(pdf)
                documents.append(_pdf_document(pdf, ranges))
        elif path.exists():
            if path.suffix.lower() == PDF_SUFFIX or path.read_bytes()[:5] == b"%PDF-":
                documents.append(_pdf_document(path, ranges))
            else:
                documents.append(_image_document(path, [path], path.stem, ranges))
        else:
            raise FileNotFoundError(f"no such file or directory: {item}")
    names: dict[str, Path] = {}
    for document in documents:
        if document.name in names:
            raise ValueError(f"{names[document.name]} and {document.path} would both write {document.name}.md")
        names[document.name] = document.path
    return documents


class PageReadError(Exception):
    """A page could not be read or re-encoded here; ``permanent`` unless the file may come back."""

    def __init__(self, message: str, *, permanent: bool, code: str = "unreadable_page") -> None:
        super().__init__(message)
        self.permanent = permanent
        self.code = code


@dataclass(frozen=True)
class PageImage:
    """A page ready to send."""

    uri: str
    size: tuple[int, int] | None  # pixels sent (None where the client did not decode the file)
    render: dict | None = None  # {"dpi", "ms"} for a rendered PDF page


def page_image(page: Page, *, side: int, max_dpi: float, byte_limit: int | None) -> PageImage:
    """The page as a data URI: a PDF page rendered at ``side``, a TIFF frame as PNG, a file as it is
    (converted from HEIC, and re-encoded smaller when over ``byte_limit``)."""
    try:
        if page.pdf:
            started = time.monotonic()
            rendered = _pdf.render_page(page.source, page.number - 1, side=side, max_dpi=max_dpi)
            data = rendered.png
            if byte_limit is not None and len(data) > byte_limit:
                data = fit_bytes(data, byte_limit)
            render = {"dpi": rendered.dpi, "ms": round((time.monotonic() - started) * 1000)}
            return PageImage(data_uri(data, "page.png"), _size_of(data, rendered.size), render)
        if page.frame is None:
            data = read_image(page.source, byte_limit)
            return PageImage(data_uri(data, page.source.name), _size_of(data, None))
        data = _frame_png(page.source, page.frame)
        if byte_limit is not None and len(data) > byte_limit:
            data = fit_bytes(data, byte_limit)
        return PageImage(data_uri(data, "page.png"), _size_of(data, None))
    except _pdf.PdfError as exc:
        raise PageReadError(str(exc), permanent=True, code=exc.code) from exc
    except OSError as exc:
        if exc.errno is not None:  # the system could not read the file; it may be readable later
            raise PageReadError(f"cannot read {page.source.name}: {exc.strerror or exc}", permanent=False) from exc
        raise PageReadError(f"cannot decode {_where(page)}: {exc}", permanent=True) from exc
    except Exception as exc:  # Pillow fails in many ways on a damaged frame
        raise PageReadError(f"cannot decode {_where(page)}: {exc}", permanent=True) from exc


def page_uri(page: Page) -> str:
    """The page as a data URI, as it is on disk (TIFF frames as PNG); see ``page_image``."""
    return page_image(page, side=FALLBACK_SIDE, max_dpi=300, byte_limit=None).uri


def _where(page: Page) -> str:
    return f"frame {page.frame} of {page.source.name}" if page.frame is not None else page.source.name


def _size_of(data: bytes, known: tuple[int, int] | None) -> tuple[int, int] | None:
    """The image's size in pixels (from its header: nothing is decoded)."""
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(io.BytesIO(data)) as image:
            return image.size
    except (UnidentifiedImageError, OSError):
        return known


def _frame_png(path: Path, frame: int) -> bytes:
    from PIL import Image, ImageOps

    with Image.open(path) as image:
        image.seek(frame)
        image.load()
        picture = ImageOps.exif_transpose(image)
        if picture.mode not in _PNG_MODES:
            picture = picture.convert("RGB")
        buffer = io.BytesIO()
        picture.save(buffer, format="PNG")
    return buffer.getvalue()


def _key(record: dict) -> tuple:
    return (record.get("document"), record.get("page"), record.get("sha256"))


def _page_key(page: Page) -> tuple:
    return (page.document, page.number, page.sha256)


def _guard_facts(outcome: Outcome) -> dict:
    report = outcome.mmserve or {}
    image = (report.get("images") or [{}])[0]
    return {
        "original": image.get("original"),
        "resized": image.get("resized"),
        "tokens": image.get("tokens"),
        "start_side": image.get("start_side"),
        "max_tokens_clamped_from": report.get("max_tokens_clamped_from"),
    }


def _warnings(page_name: str, outcome: Outcome, warn_below: int, server: ServerInfo, asked: int | None) -> list[str]:
    """Warnings that say what happened, why, the value it became, and what would change it."""
    facts = _guard_facts(outcome)
    original, resized, start = facts["original"], facts["resized"], facts["start_side"]
    warnings = []
    # Under 90% of the original: the guard shrank it (snapping to the model's patch grid moves a side by a few px).
    shrunk = bool(original and resized) and max(resized) < 0.9 * max(original)
    if shrunk and warn_below and max(resized) < warn_below:
        message = (
            f"{page_name}: the server shrank it from {original[0]}x{original[1]} to {resized[0]}x{resized[1]} "
            f"(longer side below {warn_below} px); small print may be illegible: "
        )
        if start and max(resized) < 0.9 * min(start, max(original)):
            message += (
                f"its memory guard went below the starting side of {start} px to fit memory or the context; "
                "lower --max-tokens, or give the server more memory (--memory-budget)"
            )
        elif start and server.max_image_side and start < server.max_image_side:
            message += (
                f"the request started it at {start} px; ask for up to {server.max_image_side} px with "
                "--image-side (--image-side max; mmserve.max_image_side)"
            )
        elif start:
            message += (
                f"{start} px is the most this server allows (its ceiling); raise it with the server's --max-image-side"
            )
        else:
            message += "the server did not say why"
        warnings.append(message)
    if facts["max_tokens_clamped_from"] is not None:
        warnings.append(
            f"{page_name}: the server lowered max_tokens from {facts['max_tokens_clamped_from']} to fit memory "
            "or the model's context; lower --max-tokens or --image-side to keep what you ask for"
        )
    if outcome.finish_reason == "length":
        warnings.append(f"{page_name}: the transcription stopped at max_tokens and may be cut off (--max-tokens)")
    return warnings


class _InOrder:
    """Appends records in page order although pages finish out of order."""

    def __init__(self, journal: Journal) -> None:
        self.journal = journal
        self.next = 0
        self.waiting: dict[int, dict | None] = {}

    def put(self, index: int, record: dict | None) -> None:
        self.waiting[index] = record
        while self.next in self.waiting:
            ready = self.waiting.pop(self.next)
            if ready is not None:
                self.journal.append(ready)
            self.next += 1

    def drain(self) -> None:
        """On an early stop: keep what finished, even out of order."""
        for index in sorted(self.waiting):
            if self.waiting[index] is not None:
                self.journal.append(self.waiting[index])
        self.waiting.clear()


class _Sizer:
    """The side to render PDF pages at: what the server allows, then what its guard kept.

    When the guard shrinks pages for memory, rendering more than it keeps is work thrown
    away; when a page comes back at the side it was sent, the full side stays.
    """

    def __init__(self, side: int) -> None:
        self.side = side
        self.kept = 0  # the largest side the guard kept of a page it shrank for memory
        self.whole = False  # a page went through unshrunk: keep rendering at the full side

    def now(self) -> int:
        return self.side if self.whole or not self.kept else min(self.side, self.kept)

    def observe(self, sent: tuple[int, int] | None, facts: dict) -> None:
        resized, start = facts["resized"], facts["start_side"]
        if not (sent and resized):
            return
        if max(resized) < 0.9 * min(max(sent), start or max(sent)):
            self.kept = max(self.kept, max(resized))
        else:
            self.whole = True


def _write_text(path: Path, text: str) -> bool:
    """Atomically (re)write ``path``; False when it already holds ``text``."""
    try:
        if path.read_text(encoding="utf-8") == text:
            return False
    except (OSError, UnicodeDecodeError):
        pass
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.tmp")
    with open(temporary, "w", encoding="utf-8") as file:
        file.write(text)
        file.flush()
        os.fsync(file.fileno())
    os.replace(temporary, path)
    return True


def markdown(document: Document, texts: dict, errors: dict) -> str:
    """The document as Markdown: a title, then each page under "## Page N" (a note where it failed)."""
    parts = [f"# {document.name}\n"]
    for page in document.pages:
        key = _page_key(page)
        parts.append(f"## Page {page.number}\n")
        if key in texts:
            parts.append(texts[key].strip() + "\n" if texts[key].strip() else "*(no text)*\n")
        else:
            parts.append(f"*(page {page.number} not transcribed: {errors.get(key, 'not done yet')})*\n")
    return "\n".join(parts)


async def aocr(
    inputs: PathLike | Iterable[PathLike],
    *,
    out: PathLike,
    text_dir: PathLike | None = None,
    markdown_dir: PathLike | None = None,
    base_url: str | None = None,
    api_key: str | None = None,
    model: str = "auto",
    prompt: str = DEFAULT_PROMPT,
    concurrency: int | None = None,
    max_tokens: int | None = 2048,
    temperature: float | None = 0.0,
    retries: int = 8,
    retry_failed: bool = False,
    timeout: float = 600.0,
    warn_below: int = 1000,
    pages: str | None = None,
    image_side: int | str | None = None,
    max_dpi: float = 300.0,
    text_layer: str | None = None,
    schema: dict | None = None,
    progress: bool = True,
) -> OcrSummary:
    """Transcribe the pages of ``inputs`` not yet done in the JSONL ``out``; see ``ocr``."""
    if text_layer not in (None, "compare", "skip"):
        raise ValueError(f"text_layer must be 'compare' or 'skip', got {text_layer!r}")
    skipped: list[tuple[str, str]] = []
    try:
        documents = await asyncio.to_thread(find_documents, inputs, pages=pages, skipped=skipped)
    finally:
        await asyncio.to_thread(_pdf.close_all)  # opened to count pages; reopened page by page
    all_pages = [page for document in documents for page in document.pages]
    page_counts = {str(document.path): document.page_total for document in documents}
    summary = OcrSummary(total=len(all_pages), documents=len(documents))
    out_dir = Path(os.path.abspath(out)).parent
    text_dir = Path(text_dir) if text_dir is not None else out_dir
    markdown_dir = Path(markdown_dir) if markdown_dir is not None else out_dir
    show = Progress("ocr", "pages", summary, enabled=progress)
    for path, why in skipped:
        show.skipped_file(path, why)
    broken = [document for document in documents if document.error is not None]
    if not all_pages and not broken:
        return summary
    policy = RetryPolicy(retries=retries)
    structured = Structured(schema) if schema is not None else None
    pending = iter(enumerate(all_pages))
    base_url = base_url or default_base_url()

    def note_retry(status: int | None, delay: float, attempt: int) -> None:
        summary.retries += 1
        if status in (429, 503) and throttle is not None:
            throttle.overloaded()
        show.update()

    with Journal(out) as journal:
        if journal.dropped_tail:
            show.warn(f"{out}: dropped a partial last line left by an interrupted run")
        states: dict[tuple, str] = {}
        texts: dict[tuple, str] = {}
        errors: dict[tuple, str] = {}
        data: dict[tuple, object] = {}  # --schema: each page's JSON
        for record in journal.records:
            key = _key(record)
            if record.get("error") is None and isinstance(record.get("text"), str):
                states[key], texts[key] = "done", record["text"]
                data[key] = record.get("json")
            elif states.get(key) != "done":
                states[key] = "failed" if record.get("permanent") else "retry"
                errors[key] = ((record.get("error") or {}).get("error") or {}).get("message")
        journal.records = []
        for document in broken:
            message = document.error["error"]["message"]
            summary.failed_documents.append(f"{document.path}: {message}")
            summary.failures.append(f"{document.path}: {message}")
            show.say(f"cannot read {document.path}: {message}")
            key = (str(document.path), None, document.sha256)
            if key not in states:  # said once per file version, not on every re-run
                journal.append(
                    {
                        "document": str(document.path),
                        "page": None,
                        "pages": None,
                        "source": str(document.path),
                        "frame": None,
                        "sha256": document.sha256,
                        "text": None,
                        "error": document.error,
                        "permanent": True,
                        "status": None,
                    }
                )
        writer = _InOrder(journal)
        server: ServerInfo | None = None
        throttle: Throttle | None = None
        sizer: _Sizer | None = None
        asked_side: int | None = None
        contact = asyncio.Lock()

        async def connect(client, group: asyncio.TaskGroup) -> None:
            """First contact: the server's limits decide the page side and the concurrency."""
            nonlocal server, sizer, asked_side, throttle
            async with contact:
                if server is not None:
                    return
                info = await server_info(client)
                throttle = Throttle(concurrency or info.concurrency(fallback=2))
                if info.is_mmserve:
                    wanted = {None: info.image_side or info.max_image_side, MAX_SIDE: info.max_image_side}
                    asked_side = min(wanted.get(image_side, image_side), info.max_image_side)
                else:
                    asked_side = FALLBACK_SIDE if image_side in (None, MAX_SIDE) else image_side
                sizer = _Sizer(asked_side)
                server = info
                for _ in range(throttle.ceiling - 1):
                    group.create_task(work(client, group))

        async def work(client, group: asyncio.TaskGroup) -> None:
            for index, page in pending:  # one shared iterator: pages leave in order
                if summary.stopped:
                    return
                key = _page_key(page)
                if summary.settled_before(states.get(key), retry_failed):
                    writer.put(index, None)
                    show.update()
                    continue
                name = f"{Path(page.document).name} page {page.number}"
                record = await transcribe(client, group, page, name)
                writer.put(index, record)
                show.update()

        async def render_and_ask(client, page: Page) -> tuple[PageImage | None, Outcome]:
            try:
                image = await asyncio.to_thread(
                    page_image, page, side=sizer.now(), max_dpi=max_dpi, byte_limit=server.byte_limit()
                )
            except PageReadError as exc:
                return None, Outcome(error=local_error(str(exc), exc.code), permanent=exc.permanent)
            outcome = await ask_structured(
                client,
                structured=structured,
                on_fallback=show.warn,
                uri=image.uri,
                prompt=prompt,
                model=model,
                max_tokens=max_tokens,
                temperature=temperature,
                policy=policy,
                on_retry=note_retry,
                detail="high",
                image_side=asked_side if server.is_mmserve else None,
            )
            return image, outcome

        async def transcribe(client, group, page: Page, name: str) -> dict:
            key = _page_key(page)
            layer = None
            if text_layer and page.pdf:
                layer = await asyncio.to_thread(_pdf.text_layer, page.source, page.number - 1)
            base = {
                "document": page.document,
                "page": page.number,
                "pages": page_counts[page.document],
                "source": str(page.source),
                "frame": page.frame,
                "sha256": page.sha256,
            }
            if text_layer == "skip" and layer and len(layer) >= MIN_TEXT_LAYER_CHARS:
                outcome = Outcome(text=layer)
                summary.count(outcome, name)
                summary.text_layer_pages += 1
                states[key], texts[key] = "done", layer
                return {**base, "text": layer, "via": "text-layer", "size": None, "render": None,
                        "warnings": [], **outcome.record_fields()}  # fmt: skip
            await connect(client, group)
            async with throttle:
                image, outcome = await render_and_ask(client, page)
            if outcome.ok:
                throttle.succeeded()
            facts = _guard_facts(outcome)
            if outcome.ok and page.pdf and image is not None:
                sizer.observe(image.size, facts)
            warnings = _warnings(name, outcome, warn_below, server, asked_side) if outcome.ok else []
            record = {
                **base,
                "text": outcome.text if outcome.ok else None,
                "via": "model",
                "size": list(image.size) if image is not None and image.size else None,
                "render": image.render if image is not None else None,
                **facts,
                "warnings": warnings,
            }
            if text_layer == "compare" and page.pdf:
                record["text_layer"] = layer
                record["text_layer_agreement"] = (
                    round(difflib.SequenceMatcher(None, layer or "", outcome.text or "").ratio(), 3)
                    if outcome.ok
                    else None
                )
            if structured is not None:
                record.update(outcome.structured_fields())
            record.update(outcome.record_fields())
            for warning in warnings:
                show.warn(warning)
            summary.count(outcome, name)
            if outcome.ok:
                states[key], texts[key], data[key] = "done", outcome.text, outcome.data
            else:
                errors[key] = outcome.error["error"].get("message")
            return record

        unreachable: ServerUnreachableError | None = None
        try:
            try:
                async with open_client(base_url, api_key, timeout) as client, asyncio.TaskGroup() as group:
                    group.create_task(work(client, group))
            except* ServerUnreachableError as failure:
                unreachable = failure.exceptions[0]
        except asyncio.CancelledError:
            summary.interrupted = True
            raise
        finally:
            _pdf.close_all()
            writer.drain()
            if not summary.interrupted and unreachable is None:
                _write_documents(documents, texts, errors, text_dir, markdown_dir, summary, show)
                if structured is not None:
                    _write_json(documents, data, markdown_dir, summary)
            if unreachable is None:
                show.finish()
        if unreachable is not None:
            raise unreachable
    return summary


def _write_documents(
    documents: list[Document],
    texts: dict,
    errors: dict,
    text_dir: Path,
    markdown_dir: Path,
    summary: OcrSummary,
    show: Progress,
) -> None:
    for document in documents:
        if document.error is not None or not document.pages:
            continue
        keys = [_page_key(page) for page in document.pages]
        done = sum(key in texts for key in keys)
        if done:
            target = markdown_dir / f"{document.name}.md"
            _write_text(target, markdown(document, texts, errors))
            summary.markdown.append(str(target))
        target = text_dir / f"{document.name}.txt"
        if done == len(keys):
            _write_text(target, PAGE_SEPARATOR.join(texts[key] for key in keys))
            summary.texts.append(str(target))
            if show.enabled:
                plural = "s" if len(keys) > 1 else ""
                show.say(f"wrote {document.name}.md and {target.name} in {markdown_dir} ({len(keys)} page{plural})")
        else:
            summary.incomplete.append(str(document.path))
            show.say(f"{document.path}: {done} of {len(keys)} pages done; {target.name} not written")


def _write_json(documents: list[Document], data: dict, folder: Path, summary: OcrSummary) -> None:
    """``<name>.json`` per document with a page done: each page's JSON (null where none was parsed)."""
    for document in documents:
        keys = [(page.number, _page_key(page)) for page in document.pages]
        if document.error is not None or not any(key in data for _, key in keys):
            continue
        body = {
            "document": str(document.path),
            "pages": [{"page": number, "json": data.get(key)} for number, key in keys],
        }
        target = folder / f"{document.name}.json"
        _write_text(target, json.dumps(body, ensure_ascii=False, indent=2) + "\n")
        summary.json_files.append(str(target))


def ocr(
    inputs: PathLike | Iterable[PathLike],
    *,
    out: PathLike,
    text_dir: PathLike | None = None,
    markdown_dir: PathLike | None = None,
    base_url: str | None = None,
    api_key: str | None = None,
    model: str = "auto",
    prompt: str = DEFAULT_PROMPT,
    concurrency: int | None = None,
    max_tokens: int | None = 2048,
    temperature: float | None = 0.0,
    retries: int = 8,
    retry_failed: bool = False,
    timeout: float = 600.0,
    warn_below: int = 1000,
    pages: str | None = None,
    image_side: int | str | None = None,
    max_dpi: float = 300.0,
    text_layer: str | None = None,
    schema: dict | None = None,
    progress: bool = True,
) -> OcrSummary:
    """Transcribe documents page by page into the JSONL ``out``, ``<name>.md`` and ``<name>.txt``.

    ``inputs``: PDFs, folders (of page images and/or PDFs) and image files (a
    multi-frame TIFF gives a page per frame). ``text_dir`` and ``markdown_dir``
    default to the folder of ``out``. ``pages`` picks pages (``"1-3,7"``).
    ``image_side`` asks for pages this large on the longer side (default: the side
    the server starts images at; ``"max"``: the most it allows, its ceiling); PDFs
    are rendered at it, never above ``max_dpi``.
    ``text_layer``: ``"skip"`` takes a PDF page's own text instead of asking the
    model when it has some, ``"compare"`` records both. ``schema`` (a JSON schema)
    asks for JSON per page (``response_format``, else in the prompt), recorded as
    ``json`` and gathered into ``<name>.json``. ``warn_below``: warn when
    the server shrank a page's longer side below this many pixels (0: never).
    ``concurrency`` defaults to what fills the server's batches. ``base_url`` and
    ``api_key`` default to $OPENAI_BASE_URL and $OPENAI_API_KEY. Retries and
    resuming work as in ``caption.caption``. Raises ``ServerUnreachableError`` when
    no server answers (within about 15 s). Returns an ``OcrSummary``; its
    ``exit_code`` is 1 if any page failed or any document is incomplete or
    unreadable. Runs its own event loop: from async code, await ``aocr`` instead.
    """
    options = {key: value for key, value in locals().items() if key not in ("inputs", "out")}
    return asyncio.run(aocr(inputs, out=out, **options))


def _side(text: str) -> int | str:
    return MAX_SIDE if text.strip().lower() == MAX_SIDE else positive_int(text)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The options of ``mmserve ocr``."""
    parser.add_argument(
        "inputs",
        nargs="+",
        metavar="DOCUMENT",
        help="a PDF, an image file (a multi-frame TIFF: one page per frame), or a folder "
        "(its images are the pages of one document; each PDF in it is a document)",
    )
    parser.add_argument("-o", "--out", default="ocr.jsonl", help="JSONL journal of pages (default: %(default)s)")
    parser.add_argument("--markdown-dir", help="where <document>.md files go (default: the folder of --out)")
    parser.add_argument("--text-dir", help="where <document>.txt files go (default: the folder of --out)")
    pages = parser.add_argument_group("pages")
    pages.add_argument("--pages", metavar="RANGES", help="pages to do in every document, e.g. 1-3,7,10- (default: all)")
    pages.add_argument(
        "--image-side",
        type=_side,
        metavar="PX|max",
        help="longer side to send pages at: PX, or 'max' for the most the server allows "
        "(default: the side the server starts images at; the server bounds any value)",
    )
    pages.add_argument(
        "--max-dpi", type=float, default=300.0, help="never render a PDF page finer than this (default: %(default)s)"
    )
    pages.add_argument(
        "--text-layer",
        choices=["compare", "skip"],
        help="PDF text layers: 'skip' takes a page's own text instead of asking the model when it has one; "
        "'compare' asks the model and records both, with their agreement",
    )
    pages.add_argument(
        "--warn-below",
        type=non_negative_int,
        default=1000,
        metavar="PX",
        help="warn when a page is shrunk below PX on its longer side; 0: never (default: %(default)s)",
    )
    parser.add_argument(
        "--schema",
        metavar="FILE",
        help="JSON schema: ask for JSON matching it per page (response_format, else in the prompt); "
        "writes <document>.json",
    )
    add_common_arguments(parser, prompt=DEFAULT_PROMPT, max_tokens=2048)


def _stop(signum, frame) -> None:
    raise KeyboardInterrupt  # SIGTERM stops a run as Ctrl-C does: finished pages are journaled first


def run(args: argparse.Namespace) -> int:
    """Run ``mmserve ocr`` with parsed ``args``; returns the exit code."""
    previous = signal.signal(signal.SIGTERM, _stop) if threading.current_thread() is threading.main_thread() else None
    try:
        summary = ocr(
            args.inputs,
            out=args.out,
            text_dir=args.text_dir,
            markdown_dir=args.markdown_dir,
            base_url=args.base_url,
            api_key=args.api_key,
            model=args.model,
            prompt=prompt_from(args),
            concurrency=args.concurrency,
            max_tokens=args.max_tokens,
            temperature=args.temperature,
            retries=args.retries,
            retry_failed=args.retry_failed,
            timeout=args.timeout,
            warn_below=args.warn_below,
            pages=args.pages,
            image_side=args.image_side,
            max_dpi=args.max_dpi,
            text_layer=args.text_layer,
            schema=load_schema(args.schema) if args.schema else None,
            progress=not args.quiet,
        )
    except KeyboardInterrupt:
        return 130
    except ServerUnreachableError as exc:
        print(f"ocr: {exc}", file=sys.stderr)
        return 1
    except (OSError, ValueError, JournalBusyError, ImportError) as exc:
        print(f"ocr: {exc}", file=sys.stderr)
        return 2
    finally:
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)
    if summary.total == 0 and not summary.failed_documents:
        print("ocr: no pages found", file=sys.stderr)
        return 2
    return summary.exit_code


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="mmserve ocr", description="Transcribe documents (PDFs, scans), resumably, into JSONL and Markdown."
    )
    add_arguments(parser)
    return run(parser.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
