"""Document OCR, resumable: ``mmserve ocr scans/report/ letter.tiff -o ocr.jsonl``.

Each input is one document: a folder (its image files, in natural order, are the
pages; a multi-frame TIFF inside gives one page per frame) or an image file (a
multi-frame TIFF gives one page per frame). Pages are sent in order with bounded
concurrency; one JSONL line per page is appended and fsynced, in page order. When
every page of a document has succeeded, ``<text-dir>/<name>.txt`` is (re)written
with the pages in order, separated by form feeds.

Resuming follows the caption rules, keyed by document, page number and the sha256
of the file holding the page. Each line also says what the server's memory guard
did to the page (``original`` and ``resized`` size, ``max_tokens_clamped_from``),
and a warning is printed when a page was shrunk below ``--warn-below`` pixels on
its longer side, since small print may then be illegible to the model.

JSONL line, one per page sent (the latest line for a document, page and sha256 counts)::

    {"document": "/abs/report", "page": 1, "pages": 3, "source": "/abs/report/p1.png",
     "frame": null | 0, "sha256": "...", "text": "..." | null,
     "original": [w, h] | null, "resized": [w, h] | null,
     "max_tokens_clamped_from": null | n, "warnings": ["..."],
     "finish_reason": "stop" | "length" | null, "usage": {...} | null, "model": "...",
     "mmserve": {...} | null, "error": null | {"error": {"message", "type", "param", "code"}},
     "status": 200 | 4xx | 5xx | null, "permanent": bool,
     "attempts": n, "elapsed_s": s, "finished_at": "2025-01-01T00:00:00Z"}
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import io
import os
import re
import sys
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from ._journal import Journal, JournalBusyError
from ._options import add_common_arguments, non_negative_int
from ._progress import Progress, Summary
from ._transport import (
    DEFAULT_BASE_URL,
    Outcome,
    RetryPolicy,
    ask_about_image,
    data_uri,
    local_error,
    open_client,
)
from .caption import IMAGE_SUFFIXES

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
    "run",
]

DEFAULT_PROMPT = "Transcribe all text on this page."
PAGE_SEPARATOR = "\f"
_TIFF_SUFFIXES = (".tif", ".tiff")
_PNG_MODES = frozenset({"1", "L", "LA", "P", "RGB", "RGBA", "I;16"})

PathLike = str | os.PathLike


@dataclass(frozen=True)
class Page:
    """One page: a whole image file, or one frame of a multi-frame TIFF."""

    document: str  # absolute path of the document (folder or file): the key in the journal
    number: int  # 1-based
    source: Path
    frame: int | None  # frame index within ``source``; None: the file as it is
    sha256: str  # of the source file


@dataclass
class Document:
    path: Path
    name: str  # the text file is <name>.txt
    pages: list[Page]


@dataclass
class OcrSummary(Summary):
    """A ``Summary`` plus the documents: text files written and documents left incomplete."""

    documents: int = 0
    texts: list[str] = field(default_factory=list)
    incomplete: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return super().ok and not self.incomplete


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


def find_documents(inputs: PathLike | Iterable[PathLike]) -> list[Document]:
    """The documents named by ``inputs``, their pages listed and hashed.

    Raises ``FileNotFoundError`` for a missing input and ``ValueError`` when two
    documents would write the same text file.
    """
    items = [inputs] if isinstance(inputs, (str, os.PathLike)) else list(inputs)
    documents: list[Document] = []
    seen: set[Path] = set()
    for item in items:
        path = Path(os.path.abspath(item))
        if path in seen:
            continue
        seen.add(path)
        if path.is_dir():
            files = sorted(
                (
                    f
                    for f in path.iterdir()
                    if f.is_file() and not f.name.startswith(".") and f.suffix.lower() in IMAGE_SUFFIXES
                ),
                key=_natural_key,
            )
            name = path.name
        elif path.exists():
            files, name = [path], path.stem
        else:
            raise FileNotFoundError(f"no such file or directory: {item}")
        pages: list[Page] = []
        for file in files:
            sha256 = _sha256(file)
            frames = _frame_count(file)
            for frame in range(frames):
                pages.append(Page(str(path), len(pages) + 1, file, frame if frames > 1 else None, sha256))
        documents.append(Document(path, name, pages))
    names: dict[str, Path] = {}
    for document in documents:
        if document.name in names:
            raise ValueError(f"{names[document.name]} and {document.path} would both write {document.name}.txt")
        names[document.name] = document.path
    return documents


class PageReadError(Exception):
    """A page could not be read or re-encoded here; ``permanent`` unless the file may come back."""

    def __init__(self, message: str, *, permanent: bool) -> None:
        super().__init__(message)
        self.permanent = permanent


def page_uri(page: Page) -> str:
    """The page as a data URI: the file's own bytes, or the frame re-encoded as PNG (lossless)."""
    try:
        if page.frame is None:
            return data_uri(page.source.read_bytes(), page.source.name)
        return data_uri(_frame_png(page.source, page.frame), "page.png")
    except OSError as exc:
        if exc.errno is not None:  # the system could not read the file; it may be readable later
            raise PageReadError(f"cannot read {page.source.name}: {exc.strerror or exc}", permanent=False) from exc
        raise PageReadError(f"cannot decode frame {page.frame} of {page.source.name}: {exc}", permanent=True) from exc
    except Exception as exc:  # Pillow fails in many ways on a damaged frame
        raise PageReadError(f"cannot decode frame {page.frame} of {page.source.name}: {exc}", permanent=True) from exc


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


def _guard_facts(outcome: Outcome) -> tuple[list | None, list | None, int | None]:
    report = outcome.mmserve or {}
    images = report.get("images") or [{}]
    return images[0].get("original"), images[0].get("resized"), report.get("max_tokens_clamped_from")


def _warnings(page_name: str, outcome: Outcome, warn_below: int) -> list[str]:
    original, resized, clamped_from = _guard_facts(outcome)
    warnings = []
    # Under 90% of the original: the guard shrank it (snapping to the model's patch grid moves a side by a few px).
    shrunk = bool(original and resized) and max(resized) < 0.9 * max(original)
    if shrunk and warn_below and max(resized) < warn_below:
        warnings.append(
            f"{page_name}: the server shrank it from {original[0]}x{original[1]} to {resized[0]}x{resized[1]} "
            f"(longer side below {warn_below} px); small print may be illegible"
        )
    if clamped_from is not None:
        warnings.append(f"{page_name}: the server lowered max_tokens from {clamped_from} to fit memory or context")
    if outcome.finish_reason == "length":
        warnings.append(f"{page_name}: the transcription stopped at max_tokens and may be cut off")
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


async def aocr(
    inputs: PathLike | Iterable[PathLike],
    *,
    out: PathLike,
    text_dir: PathLike | None = None,
    base_url: str = DEFAULT_BASE_URL,
    api_key: str | None = None,
    model: str = "auto",
    prompt: str = DEFAULT_PROMPT,
    concurrency: int = 2,
    max_tokens: int | None = 2048,
    temperature: float | None = 0.0,
    retries: int = 8,
    retry_failed: bool = False,
    timeout: float = 600.0,
    warn_below: int = 1000,
    progress: bool = True,
) -> OcrSummary:
    """Transcribe the pages of ``inputs`` not yet done in the JSONL ``out``; see ``ocr``."""
    documents = await asyncio.to_thread(find_documents, inputs)
    pages = [page for document in documents for page in document.pages]
    page_counts = {str(document.path): len(document.pages) for document in documents}
    summary = OcrSummary(total=len(pages), documents=len(documents))
    if not pages:
        return summary
    text_dir = Path(text_dir) if text_dir is not None else Path(os.path.abspath(out)).parent
    show = Progress("ocr", "pages", summary, enabled=progress)
    policy = RetryPolicy(retries=retries)
    pending = iter(enumerate(pages))

    def note_retry(status: int | None, delay: float, attempt: int) -> None:
        summary.retries += 1
        show.update()

    with Journal(out) as journal:
        if journal.dropped_tail:
            show.warn(f"{out}: dropped a partial last line left by an interrupted run")
        states: dict[tuple, str] = {}
        texts: dict[tuple, str] = {}
        for record in journal.records:
            key = _key(record)
            if record.get("error") is None and isinstance(record.get("text"), str):
                states[key], texts[key] = "done", record["text"]
            elif states.get(key) != "done":
                states[key] = "failed" if record.get("permanent") else "retry"
        journal.records = []
        writer = _InOrder(journal)

        async def work(client) -> None:
            for index, page in pending:  # one shared iterator: pages leave in order
                if summary.stopped:
                    return
                key = _page_key(page)
                if summary.settled_before(states.get(key), retry_failed):
                    writer.put(index, None)
                    show.update()
                    continue
                name = f"{Path(page.document).name} page {page.number}"
                try:
                    uri = await asyncio.to_thread(page_uri, page)
                except PageReadError as exc:
                    outcome = Outcome(error=local_error(str(exc), "unreadable_page"), permanent=exc.permanent)
                else:
                    outcome = await ask_about_image(
                        client,
                        uri=uri,
                        prompt=prompt,
                        model=model,
                        max_tokens=max_tokens,
                        temperature=temperature,
                        policy=policy,
                        on_retry=note_retry,
                    )
                    del uri
                warnings = _warnings(name, outcome, warn_below) if outcome.ok else []
                original, resized, clamped_from = _guard_facts(outcome)
                writer.put(
                    index,
                    {
                        "document": page.document,
                        "page": page.number,
                        "pages": page_counts[page.document],
                        "source": str(page.source),
                        "frame": page.frame,
                        "sha256": page.sha256,
                        "text": outcome.text if outcome.ok else None,
                        "original": original,
                        "resized": resized,
                        "max_tokens_clamped_from": clamped_from,
                        "warnings": warnings,
                        **outcome.record_fields(),
                    },
                )
                for warning in warnings:
                    show.warn(warning)
                summary.count(outcome, name)
                if outcome.ok:
                    states[key], texts[key] = "done", outcome.text
                show.update()

        try:
            async with open_client(base_url, api_key, timeout) as client, asyncio.TaskGroup() as group:
                for _ in range(max(1, concurrency)):
                    group.create_task(work(client))
        except asyncio.CancelledError:
            summary.interrupted = True
            raise
        finally:
            writer.drain()
            if not summary.interrupted:
                _write_documents(documents, texts, text_dir, summary, show)
            show.finish()
    return summary


def _write_documents(
    documents: list[Document], texts: dict, text_dir: Path, summary: OcrSummary, show: Progress
) -> None:
    for document in documents:
        keys = [_page_key(page) for page in document.pages]
        done = sum(key in texts for key in keys)
        target = text_dir / f"{document.name}.txt"
        if done == len(keys) and keys:
            _write_text(target, PAGE_SEPARATOR.join(texts[key] for key in keys))
            summary.texts.append(str(target))
            if show.enabled:
                show.say(f"wrote {target} ({len(keys)} page{'s' if len(keys) > 1 else ''})")
        else:
            summary.incomplete.append(str(document.path))
            show.say(f"{document.path}: {done} of {len(keys)} pages done; {target.name} not written")


def ocr(
    inputs: PathLike | Iterable[PathLike],
    *,
    out: PathLike,
    text_dir: PathLike | None = None,
    base_url: str = DEFAULT_BASE_URL,
    api_key: str | None = None,
    model: str = "auto",
    prompt: str = DEFAULT_PROMPT,
    concurrency: int = 2,
    max_tokens: int | None = 2048,
    temperature: float | None = 0.0,
    retries: int = 8,
    retry_failed: bool = False,
    timeout: float = 600.0,
    warn_below: int = 1000,
    progress: bool = True,
) -> OcrSummary:
    """Transcribe documents page by page into the JSONL ``out`` and one ``<name>.txt`` each.

    ``inputs``: folders of page images and/or image files (a multi-frame TIFF
    gives a page per frame). ``text_dir`` defaults to the folder of ``out``.
    ``warn_below``: warn when the server shrank a page's longer side below this
    many pixels (0: never). Retries and resuming work as in ``caption.caption``.
    Returns an ``OcrSummary``; its ``exit_code`` is 1 if any page failed or any
    document is incomplete. Runs its own event loop: from async code, await
    ``aocr`` instead.
    """
    options = {key: value for key, value in locals().items() if key not in ("inputs", "out")}
    return asyncio.run(aocr(inputs, out=out, **options))


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The options of ``mmserve ocr``."""
    parser.add_argument(
        "inputs",
        nargs="+",
        metavar="DOCUMENT",
        help="a folder of page images, or an image file (a multi-frame TIFF: one page per frame)",
    )
    parser.add_argument("-o", "--out", default="ocr.jsonl", help="JSONL journal of pages (default: %(default)s)")
    parser.add_argument("--text-dir", help="where <document>.txt files go (default: the folder of --out)")
    parser.add_argument(
        "--warn-below",
        type=non_negative_int,
        default=1000,
        metavar="PX",
        help="warn when a page is shrunk below PX on its longer side; 0: never (default: %(default)s)",
    )
    add_common_arguments(parser, prompt=DEFAULT_PROMPT, concurrency=2, max_tokens=2048)


def run(args: argparse.Namespace) -> int:
    """Run ``mmserve ocr`` with parsed ``args``; returns the exit code."""
    try:
        summary = ocr(
            args.inputs,
            out=args.out,
            text_dir=args.text_dir,
            base_url=args.base_url,
            api_key=args.api_key,
            model=args.model,
            prompt=args.prompt,
            concurrency=args.concurrency,
            max_tokens=args.max_tokens,
            temperature=args.temperature,
            retries=args.retries,
            retry_failed=args.retry_failed,
            timeout=args.timeout,
            warn_below=args.warn_below,
            progress=not args.quiet,
        )
    except KeyboardInterrupt:
        return 130
    except (OSError, ValueError, JournalBusyError, ImportError) as exc:
        print(f"ocr: {exc}", file=sys.stderr)
        return 2
    if summary.total == 0:
        print("ocr: no pages found", file=sys.stderr)
        return 2
    return summary.exit_code


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="mmserve ocr", description="Transcribe document pages, resumably, into JSONL and text files."
    )
    add_arguments(parser)
    return run(parser.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
