"""The JSONL journal of a batch run: append-only, one fsynced line per record.

A run reads the journal once when it opens it, to learn what earlier runs did,
then only appends. A last line cut off by a crash or Ctrl-C is dropped on open
(it can never be valid JSON), so every line in the file is a whole record.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Self

try:
    import fcntl
except ImportError:  # Windows: no advisory locks; one run per journal is then up to the user
    fcntl = None

__all__ = ["Journal", "JournalBusyError"]


class JournalBusyError(RuntimeError):
    """Another run holds the journal open for writing."""


class Journal:
    """An append-only JSONL file, locked for one run at a time.

    Use as a context manager. ``records`` holds the valid records found on open;
    ``dropped_tail`` says a partial last line was removed; ``bad_lines`` counts
    other lines that were not JSON objects (kept in the file, ignored).
    """

    def __init__(self, path: str | os.PathLike) -> None:
        self.path = Path(path)
        self.records: list[dict] = []
        self.dropped_tail = False
        self.bad_lines = 0
        self._file = None

    def __enter__(self) -> Self:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        file = open(self.path, "a+b")  # O_APPEND: every write lands at the end
        try:
            if fcntl is not None:
                try:
                    fcntl.flock(file.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
                except BlockingIOError:
                    raise JournalBusyError(f"{self.path} is in use by another run") from None
            self._read(file)
        except BaseException:
            file.close()
            raise
        self._file = file
        return self

    def __exit__(self, *exc_info) -> None:
        if self._file is not None:
            self._file.close()  # closing releases the lock
            self._file = None

    def append(self, record: dict) -> None:
        """Write ``record`` as one line and make it durable before returning."""
        line = json.dumps(record, ensure_ascii=False, separators=(",", ":")) + "\n"
        self._file.write(line.encode())
        self._file.flush()
        os.fsync(self._file.fileno())

    def _read(self, file) -> None:
        file.seek(0)
        good_end = 0
        for raw in file:
            if not raw.endswith(b"\n"):
                record = _parse(raw)
                if record is None:
                    # A crash mid-write: the record was never complete; cut it off.
                    file.truncate(good_end)
                    self.dropped_tail = True
                else:
                    # Complete JSON whose newline was lost: keep it, finish the line.
                    self.records.append(record)
                    file.write(b"\n")
                file.flush()
                os.fsync(file.fileno())
                break
            good_end += len(raw)
            if not raw.strip():
                continue
            record = _parse(raw)
            if record is None:
                self.bad_lines += 1
            else:
                self.records.append(record)


def _parse(raw: bytes) -> dict | None:
    try:
        record = json.loads(raw)
    except ValueError:
        return None
    return record if isinstance(record, dict) else None
