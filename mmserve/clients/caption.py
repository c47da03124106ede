"""Batch image captioning, resumable: ``mmserve caption DIR -o captions.jsonl``.

Every image is sent as a data URI through the official ``openai`` SDK; one JSONL
line per image is appended (and fsynced) as soon as its answer arrives. Run the
same command again after a crash or Ctrl-C and only the missing images are sent:
an image counts as done when the journal has a successful line with its path and
the sha256 of its current bytes. Images the server refused with a 4xx are
recorded as failed and not retried unless ``--retry-failed`` is given.

JSONL line, one per image sent (the latest line for a path and sha256 counts;
``path`` is absolute, so a re-run may start from any directory)::

    {"path": "/abs/img.png", "sha256": "...", "caption": "..." | null,
     "finish_reason": "stop" | "length" | null, "usage": {...} | null,
     "model": "...", "mmserve": {...} | null,      # the server's report (sizes, resizing)
     "error": null | {"error": {"message", "type", "param", "code"}},
     "status": 200 | 4xx | 5xx | null, "permanent": bool,
     "attempts": n, "elapsed_s": s, "finished_at": "2025-01-01T00:00:00Z"}
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import os
import sys
from collections.abc import Iterable
from pathlib import Path

from ._journal import Journal, JournalBusyError
from ._options import add_common_arguments
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

__all__ = ["DEFAULT_PROMPT", "IMAGE_SUFFIXES", "acaption", "add_arguments", "caption", "find_images", "main", "run"]

DEFAULT_PROMPT = "Describe this image in one sentence."
IMAGE_SUFFIXES = frozenset({".png", ".jpg", ".jpeg", ".webp", ".gif", ".bmp", ".tif", ".tiff"})

PathLike = str | os.PathLike
Inputs = PathLike | Iterable[PathLike]


def find_images(paths_or_dir: Inputs, *, files_from: PathLike | None = None) -> list[Path]:
    """The images to caption, in a stable order, each once, as absolute paths.

    Directories are walked recursively for files with an image suffix (hidden
    files and folders skipped); files named explicitly, or listed one per line in
    ``files_from`` ("-" for stdin; blank lines and ``#`` comments ignored;
    relative to the current directory), are taken whatever their suffix.
    """
    inputs = [paths_or_dir] if isinstance(paths_or_dir, (str, os.PathLike)) else list(paths_or_dir)
    if files_from is not None:
        inputs += _read_list(files_from)
    found: dict[str, Path] = {}
    for item in inputs:
        path = Path(os.path.abspath(item))
        if path.is_dir():
            for image in _walk(path):
                found.setdefault(str(image), image)
        elif path.exists():
            found.setdefault(str(path), path)
        else:
            raise FileNotFoundError(f"no such file or directory: {item}")
    return list(found.values())


def _walk(root: Path) -> list[Path]:
    images = []
    for folder, dirs, files in os.walk(root):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        images += [
            Path(folder, f) for f in sorted(files) if not f.startswith(".") and Path(f).suffix.lower() in IMAGE_SUFFIXES
        ]
    return images


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


async def acaption(
    paths_or_dir: Inputs,
    *,
    out: PathLike,
    base_url: str = DEFAULT_BASE_URL,
    api_key: str | None = None,
    model: str = "auto",
    prompt: str = DEFAULT_PROMPT,
    concurrency: int = 4,
    max_tokens: int | None = 128,
    temperature: float | None = 0.0,
    retries: int = 8,
    retry_failed: bool = False,
    timeout: float = 600.0,
    files_from: PathLike | None = None,
    progress: bool = True,
) -> Summary:
    """Caption every image of ``paths_or_dir`` not yet done in the JSONL ``out``; see ``caption``."""
    images = find_images(paths_or_dir, files_from=files_from)
    summary = Summary(total=len(images))
    if not images:
        return summary
    show = Progress("caption", "images", summary, enabled=progress)
    policy = RetryPolicy(retries=retries)
    pending = iter(images)

    def note_retry(status: int | None, delay: float, attempt: int) -> None:
        summary.retries += 1
        show.update()

    with Journal(out) as journal:
        if journal.dropped_tail:
            show.warn(f"{out}: dropped a partial last line left by an interrupted run")
        states = _states(journal.records)
        journal.records = []  # the states are all we need; let the records go

        async def work(client) -> None:
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
                    uri = await asyncio.to_thread(data_uri, data, path.name)
                    del data
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
                caption = outcome.text if outcome.ok else None
                journal.append({"path": str(path), "sha256": sha256, "caption": caption, **outcome.record_fields()})
                summary.count(outcome, str(path))
                show.update()

        try:
            async with open_client(base_url, api_key, timeout) as client, asyncio.TaskGroup() as group:
                for _ in range(max(1, concurrency)):
                    group.create_task(work(client))
        except asyncio.CancelledError:
            summary.interrupted = True
            raise
        finally:
            show.finish()
    return summary


def caption(
    paths_or_dir: Inputs,
    *,
    out: PathLike,
    base_url: str = DEFAULT_BASE_URL,
    api_key: str | None = None,
    model: str = "auto",
    prompt: str = DEFAULT_PROMPT,
    concurrency: int = 4,
    max_tokens: int | None = 128,
    temperature: float | None = 0.0,
    retries: int = 8,
    retry_failed: bool = False,
    timeout: float = 600.0,
    files_from: PathLike | None = None,
    progress: bool = True,
) -> Summary:
    """Caption images into the JSONL file ``out``, skipping those already done there.

    ``paths_or_dir``: a directory (walked recursively), an image path, or a list
    of these; ``files_from`` names a file listing more paths. ``api_key``
    defaults to $OPENAI_API_KEY or "none". ``retries`` applies to overload
    (429/503), other 5xx, 408/409 and connection errors; any other 4xx is
    recorded at once as a permanent failure, redone only with ``retry_failed``.
    ``timeout`` is seconds per request; ``progress`` shows a status line on stderr.
    Returns the run's ``Summary``; ``summary.exit_code`` is 1 if any image failed.
    Runs its own event loop: from async code, await ``acaption`` instead.
    """
    options = {key: value for key, value in locals().items() if key not in ("paths_or_dir", "out")}
    return asyncio.run(acaption(paths_or_dir, out=out, **options))


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The options of ``mmserve caption``."""
    parser.add_argument("inputs", nargs="*", metavar="PATH", help="image files and/or folders (walked recursively)")
    parser.add_argument("--files-from", metavar="FILE", help="read more paths from FILE, one per line ('-': stdin)")
    parser.add_argument(
        "-o", "--out", default="captions.jsonl", help="JSONL journal to append to (default: %(default)s)"
    )
    add_common_arguments(parser, prompt=DEFAULT_PROMPT, concurrency=4, max_tokens=128)


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
            prompt=args.prompt,
            concurrency=args.concurrency,
            max_tokens=args.max_tokens,
            temperature=args.temperature,
            retries=args.retries,
            retry_failed=args.retry_failed,
            timeout=args.timeout,
            progress=not args.quiet,
        )
    except KeyboardInterrupt:
        return 130
    except (OSError, JournalBusyError, ImportError) as exc:
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
