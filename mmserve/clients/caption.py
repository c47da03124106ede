"""Batch image captioning, resumable: ``mmserve caption DIR -o captions.jsonl``.

Every image is sent as a data URI through the official ``openai`` SDK; one JSONL
line per image is appended (and fsynced) as soon as its answer arrives. Run the
same command again after a crash or Ctrl-C and only the missing images are sent:
an image counts as done when the journal has a successful line with its path and
the sha256 of its current bytes. Images the server refused with a 4xx are
recorded as failed and not retried unless ``--retry-failed`` is given.

HEIC/HEIF photos are converted (pillow-heif), and an image over the server's byte
limit is re-encoded smaller before it is sent. Files in a folder that are not images,
or that ``--include`` / ``--exclude`` leave out, are counted and named. ``--schema
FILE`` asks for JSON matching a JSON schema (``response_format``, or the schema in
the prompt where the server does not take it); ``--sidecar`` writes ``<image>.txt``
beside each image, ``--csv FILE`` a table of the journal's latest answers, and
``--dry-run`` prints what would be sent without sending it.

JSONL line, one per image sent (the latest line for a path and sha256 counts;
``path`` is absolute, so a re-run may start from any directory)::

    {"path": "/abs/img.png", "sha256": "...", "caption": "..." | null,
     "finish_reason": "stop" | "length" | null, "usage": {...} | null,
     "model": "...", "mmserve": {...} | null,      # the server's report (sizes, resizing)
     "json": {...} | null, "json_error": "..." | null, "json_via": "response_format" | "prompt",  # --schema
     "error": null | {"error": {"message", "type", "param", "code"}},
     "status": 200 | 4xx | 5xx | null, "permanent": bool,
     "attempts": n, "elapsed_s": s, "finished_at": "2025-01-01T00:00:00Z"}
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import fnmatch
import hashlib
import json
import os
import sys
from collections.abc import Iterable
from pathlib import Path

from ._journal import Journal, JournalBusyError
from ._options import add_common_arguments, prompt_from
from ._progress import Progress, Summary
from ._transport import (
    HEIF_SUFFIXES,
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
    server_info,
)

__all__ = ["DEFAULT_PROMPT", "IMAGE_SUFFIXES", "acaption", "add_arguments", "caption", "find_images", "main", "run"]

DEFAULT_PROMPT = "Describe this image in one sentence."
IMAGE_SUFFIXES = frozenset({".png", ".jpg", ".jpeg", ".webp", ".gif", ".bmp", ".tif", ".tiff"} | HEIF_SUFFIXES)

PathLike = str | os.PathLike
Inputs = PathLike | Iterable[PathLike]


def find_images(
    paths_or_dir: Inputs,
    *,
    files_from: PathLike | None = None,
    include: Iterable[str] = (),
    exclude: Iterable[str] = (),
    recursive: bool = True,
    skipped: list[tuple[str, str]] | None = None,
) -> list[Path]:
    """The images to caption, in a stable order, each once, as absolute paths.

    Directories are walked (recursively unless ``recursive`` is False) for files
    with an image suffix (hidden files and folders skipped); files named
    explicitly, or listed one per line in ``files_from`` ("-" for stdin; blank
    lines and ``#`` comments ignored; relative to the current directory), are
    taken whatever their suffix. ``include`` / ``exclude`` are glob patterns matched
    against the file name and the path below the folder given (``*.jpg``,
    ``raw/*``). Files of a folder left out are appended to ``skipped`` as ``(path, why)``.
    """
    inputs = [paths_or_dir] if isinstance(paths_or_dir, (str, os.PathLike)) else list(paths_or_dir)
    if files_from is not None:
        inputs += _read_list(files_from)
    include, exclude = list(include), list(exclude)
    found: dict[str, Path] = {}
    for item in inputs:
        path = Path(os.path.abspath(item))
        if path.is_dir():
            for file in _walk(path, recursive):
                relative = file.relative_to(path).as_posix()
                if file.suffix.lower() not in IMAGE_SUFFIXES:
                    why = "not an image"
                elif include and not _matches(relative, include):
                    why = "not matched by --include"
                elif _matches(relative, exclude):
                    why = "matched by --exclude"
                else:
                    found.setdefault(str(file), file)
                    continue
                if skipped is not None:
                    skipped.append((str(file), why))
        elif path.exists():
            found.setdefault(str(path), path)
        else:
            raise FileNotFoundError(f"no such file or directory: {item}")
    return list(found.values())


def _matches(relative: str, patterns: list[str]) -> bool:
    name = relative.rsplit("/", 1)[-1]
    return any(fnmatch.fnmatch(relative, p) or fnmatch.fnmatch(name, p) for p in patterns)


def _walk(root: Path, recursive: bool) -> list[Path]:
    files = []
    for folder, dirs, names in os.walk(root):
        dirs[:] = sorted(d for d in dirs if not d.startswith(".")) if recursive else []
        files += [Path(folder, f) for f in sorted(names) if not f.startswith(".")]
    return files


def _read_list(files_from: PathLike) -> list[str]:
    text = sys.stdin.read() if str(files_from) == "-" else Path(files_from).read_text()
    return [line.strip() for line in text.splitlines() if line.strip() and not line.lstrip().startswith("#")]


def _states(records: list[dict]) -> dict[tuple[str, str], str]:
    """(path, sha256) -> "done" | "failed" (permanent) | "retry", from the latest line for each key."""
    states: dict[tuple[str, str], str] = {}
    for record in records:
        key = (record.get("path"), record.get("sha256"))
        if not all(isinstance(k, str) for k in key):
            continue
        if record.get("error") is None:
            states[key] = "done"
        elif states.get(key) != "done":
            states[key] = "failed" if record.get("permanent") else "retry"
    return states


def _read_and_hash(path: Path) -> tuple[bytes, str]:
    data = path.read_bytes()
    return data, hashlib.sha256(data).hexdigest()


def _prepare(data: bytes, name: str, byte_limit: int | None) -> str:
    """The data URI to send: HEIC converted, an image over the server's byte limit re-encoded smaller."""
    from ._transport import _heif_to_jpeg

    if os.path.splitext(name)[1].lower() in HEIF_SUFFIXES:
        data = _heif_to_jpeg(data)
    if byte_limit is not None and len(data) > byte_limit:
        data = fit_bytes(data, byte_limit)
    return data_uri(data, name)


def _answer_text(outcome: Outcome, structured: Structured | None) -> str | None:
    if not outcome.ok:
        return None
    if structured is not None and outcome.data is not None:
        return json.dumps(outcome.data, ensure_ascii=False)
    return outcome.text


def _write_sidecar(path: Path, text: str) -> None:
    target = path.with_name(path.name + ".txt") if path.suffix.lower() == ".txt" else path.with_suffix(".txt")
    temporary = target.with_name(f".{target.name}.tmp")
    temporary.write_text(text + "\n", encoding="utf-8")
    os.replace(temporary, target)


def write_csv(journal: PathLike, target: PathLike) -> int:
    """A CSV (path, caption, json, error) of the latest line for each image in the journal; rows written."""
    latest: dict[str, dict] = {}
    with open(journal, encoding="utf-8") as file:
        for line in file:
            try:
                record = json.loads(line)
            except ValueError:
                continue
            if not (isinstance(record, dict) and isinstance(record.get("path"), str)):
                continue
            earlier = latest.get(record["path"])
            if earlier is None or record.get("error") is None or earlier.get("error") is not None:
                latest[record["path"]] = record  # the latest answer; a failure never hides an earlier answer
    with open(target, "w", encoding="utf-8", newline="") as file:
        writer = csv.writer(file)
        writer.writerow(["path", "caption", "json", "error"])
        for path, record in latest.items():
            error = ((record.get("error") or {}).get("error") or {}).get("message")
            data = record.get("json")
            writer.writerow([path, record.get("caption") or "", "" if data is None else json.dumps(data), error or ""])
    return len(latest)


async def acaption(
    paths_or_dir: Inputs,
    *,
    out: PathLike,
    base_url: str | None = None,
    api_key: str | None = None,
    model: str = "auto",
    prompt: str = DEFAULT_PROMPT,
    concurrency: int | None = None,
    max_tokens: int | None = 128,
    temperature: float | None = 0.0,
    retries: int = 8,
    retry_failed: bool = False,
    timeout: float = 600.0,
    files_from: PathLike | None = None,
    include: Iterable[str] = (),
    exclude: Iterable[str] = (),
    recursive: bool = True,
    schema: dict | None = None,
    sidecar: bool = False,
    csv_path: PathLike | None = None,
    dry_run: bool = False,
    progress: bool = True,
) -> Summary:
    """Caption every image of ``paths_or_dir`` not yet done in the JSONL ``out``; see ``caption``."""
    skipped: list[tuple[str, str]] = []
    images = find_images(
        paths_or_dir, files_from=files_from, include=include, exclude=exclude, recursive=recursive, skipped=skipped
    )
    summary = Summary(total=len(images))
    show = Progress("caption", "images", summary, enabled=progress)
    for path, why in skipped:
        show.skipped_file(path, why)
    if not images:
        return summary
    if dry_run:
        return _dry_run(images, out, prompt, schema, show)
    policy = RetryPolicy(retries=retries)
    pending = iter(images)
    structured = Structured(schema) if schema is not None else None
    base_url = base_url or default_base_url()
    server: ServerInfo | None = None
    contact = asyncio.Lock()

    throttle: Throttle | None = None

    def note_retry(status: int | None, delay: float, attempt: int) -> None:
        summary.retries += 1
        if status in (429, 503) and throttle is not None:
            throttle.overloaded()
        show.update()

    with Journal(out) as journal:
        if journal.dropped_tail:
            show.warn(f"{out}: dropped a partial last line left by an interrupted run")
        states = _states(journal.records)
        journal.records = []  # the states are all we need; let the records go

        async def connect(client, group) -> ServerInfo:
            """First contact: the server's limits decide the byte limit and the concurrency."""
            nonlocal server, throttle
            async with contact:
                if server is None:
                    server = await server_info(client)
                    throttle = Throttle(concurrency or server.concurrency(fallback=4))
                    for _ in range(throttle.ceiling - 1):
                        group.create_task(work(client, group))
            return server

        async def work(client, group) -> None:
            for path in pending:  # one shared iterator: each image goes to exactly one worker
                if summary.stopped:
                    return
                try:
                    data, sha256 = await asyncio.to_thread(_read_and_hash, path)
                except OSError as exc:
                    error = local_error(f"cannot read file: {exc.strerror or exc}", "unreadable_file")
                    outcome, sha256 = Outcome(error=error), None
                else:
                    if summary.settled_before(states.get((str(path), sha256)), retry_failed):
                        show.update()
                        continue
                    info = await connect(client, group)
                    try:
                        uri = await asyncio.to_thread(_prepare, data, path.name, info.byte_limit())
                    except Exception as exc:  # HEIC without pillow-heif, an image Pillow cannot re-encode
                        outcome = Outcome(error=local_error(f"cannot prepare {path.name}: {exc}", "unreadable_file"))
                        outcome.permanent = True
                    else:
                        del data
                        async with throttle:
                            outcome = await ask_structured(
                                client,
                                structured=structured,
                                on_fallback=show.warn,
                                uri=uri,
                                prompt=prompt,
                                model=model,
                                max_tokens=max_tokens,
                                temperature=temperature,
                                policy=policy,
                                on_retry=note_retry,
                            )
                        if outcome.ok:
                            throttle.succeeded()
                        del uri
                caption = _answer_text(outcome, structured)
                record = {"path": str(path), "sha256": sha256, "caption": caption}
                if structured is not None:
                    record.update(outcome.structured_fields())
                journal.append({**record, **outcome.record_fields()})
                if sidecar and caption is not None:
                    await asyncio.to_thread(_write_sidecar, path, caption)
                summary.count(outcome, str(path))
                show.update()

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
            if unreachable is None:
                show.finish()
        if unreachable is not None:
            raise unreachable
    if csv_path is not None:
        rows = write_csv(out, csv_path)
        if progress:
            show.say(f"wrote {csv_path} ({rows} rows)")
    return summary


def _dry_run(images: list[Path], out: PathLike, prompt: str, schema: dict | None, show: Progress) -> Summary:
    """Print what a run would send (images not done yet, with their size) and send nothing."""
    summary = show.summary
    states: dict = {}
    if Path(out).exists():
        with Journal(out) as journal:
            states = _states(journal.records)
    asked = Structured(schema).prompt(prompt) if schema is not None else prompt
    print(f"prompt: {asked!r}")
    for path in images:
        data, sha256 = _read_and_hash(path)
        if states.get((str(path), sha256)) == "done":
            summary.skipped += 1
            continue
        print(f"would send {path} ({len(data)} bytes)")
    print(f"{summary.total - summary.skipped} of {summary.total} images would be sent; {summary.skipped} already done")
    return summary


def caption(
    paths_or_dir: Inputs,
    *,
    out: PathLike,
    base_url: str | None = None,
    api_key: str | None = None,
    model: str = "auto",
    prompt: str = DEFAULT_PROMPT,
    concurrency: int | None = None,
    max_tokens: int | None = 128,
    temperature: float | None = 0.0,
    retries: int = 8,
    retry_failed: bool = False,
    timeout: float = 600.0,
    files_from: PathLike | None = None,
    include: Iterable[str] = (),
    exclude: Iterable[str] = (),
    recursive: bool = True,
    schema: dict | None = None,
    sidecar: bool = False,
    csv_path: PathLike | None = None,
    dry_run: bool = False,
    progress: bool = True,
) -> Summary:
    """Caption images into the JSONL file ``out``, skipping those already done there.

    ``paths_or_dir``: a directory (walked recursively unless ``recursive`` is
    False), an image path, or a list of these; ``files_from`` names a file listing
    more paths; ``include`` / ``exclude`` filter a folder's files by glob.
    ``base_url`` and ``api_key`` default to $OPENAI_BASE_URL and $OPENAI_API_KEY
    (else mmserve's address and "none"). ``concurrency`` defaults to what fills the
    server's batches. ``retries`` applies to overload (429/503), other 5xx, 408/409
    and connection errors; any other 4xx is recorded at once as a permanent
    failure, redone only with ``retry_failed``. ``schema`` (a JSON schema) asks for
    JSON, recorded as ``json``; ``sidecar`` writes ``<image>.txt``; ``csv_path`` a
    CSV of the journal at the end; ``dry_run`` prints what would be sent and sends
    nothing. ``timeout`` is seconds per request; ``progress`` shows a status line on
    stderr. Raises ``ServerUnreachableError`` when no server answers (within about
    15 s). Returns the run's ``Summary``; ``summary.exit_code`` is 1 if any image
    failed. Runs its own event loop: from async code, await ``acaption`` instead.
    """
    options = {key: value for key, value in locals().items() if key not in ("paths_or_dir", "out")}
    return asyncio.run(acaption(paths_or_dir, out=out, **options))


def load_schema(path: PathLike) -> dict:
    """A JSON schema from a file; ValueError naming the file when it is not a JSON object."""
    try:
        schema = json.loads(Path(path).read_text(encoding="utf-8"))
    except ValueError as exc:
        raise ValueError(f"{path} is not JSON: {exc}") from None
    if not isinstance(schema, dict):
        raise ValueError(f"{path} must hold a JSON schema object")
    return schema


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The options of ``mmserve caption``."""
    parser.add_argument("inputs", nargs="*", metavar="PATH", help="image files and/or folders (walked recursively)")
    parser.add_argument("--files-from", metavar="FILE", help="read more paths from FILE, one per line ('-': stdin)")
    parser.add_argument(
        "-o", "--out", default="captions.jsonl", help="JSONL journal to append to (default: %(default)s)"
    )
    files = parser.add_argument_group("files")
    files.add_argument(
        "--include", action="append", default=[], metavar="GLOB", help="only files matching (repeatable)"
    )
    files.add_argument(
        "--exclude", action="append", default=[], metavar="GLOB", help="leave out files matching (repeatable)"
    )
    files.add_argument(
        "--no-recursive", dest="recursive", action="store_false", help="only the top level of each folder"
    )
    files.add_argument("--dry-run", action="store_true", help="print what would be sent, send nothing")
    output = parser.add_argument_group("output")
    output.add_argument("--schema", metavar="FILE", help="JSON schema: ask for JSON matching it (response_format)")
    output.add_argument("--sidecar", action="store_true", help="also write <image>.txt beside each image")
    output.add_argument("--csv", dest="csv_path", metavar="FILE", help="also write a CSV of the answers at the end")
    add_common_arguments(parser, prompt=DEFAULT_PROMPT, max_tokens=128)


def run(args: argparse.Namespace) -> int:
    """Run ``mmserve caption`` with parsed ``args``; returns the exit code."""
    if not args.inputs and not args.files_from:
        print("caption: give image files or folders (or --files-from FILE)", file=sys.stderr)
        return 2
    try:
        summary = caption(
            args.inputs,
            out=args.out,
            files_from=args.files_from,
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
            include=args.include,
            exclude=args.exclude,
            recursive=args.recursive,
            schema=load_schema(args.schema) if args.schema else None,
            sidecar=args.sidecar,
            csv_path=args.csv_path,
            dry_run=args.dry_run,
            progress=not args.quiet,
        )
    except KeyboardInterrupt:
        return 130
    except ServerUnreachableError as exc:
        print(f"caption: {exc}", file=sys.stderr)
        return 1
    except (OSError, ValueError, JournalBusyError, ImportError) as exc:
        print(f"caption: {exc}", file=sys.stderr)
        return 2
    if summary.total == 0:
        print("caption: no images found", file=sys.stderr)
        return 2
    return summary.exit_code


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="mmserve caption", description="Caption images in batch, resumably, into a JSONL file."
    )
    add_arguments(parser)
    return run(parser.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
