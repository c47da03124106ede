"""Counters of a batch run and their display on stderr.

On a terminal the status line is redrawn in place; otherwise (logs, CI) a line is
printed every ``interval_s`` seconds. Warnings are always printed on their own line.
"""

from __future__ import annotations

import sys
import time
from dataclasses import dataclass, field
from typing import TextIO

__all__ = ["Progress", "Summary"]


@dataclass
class Summary:
    """What a run did. ``exit_code`` is 0 only when every item has succeeded, now or before."""

    total: int = 0
    done: int = 0  # succeeded in this run
    skipped: int = 0  # already done successfully by an earlier run
    failed: int = 0  # failed in this run (after any retries)
    failed_before: int = 0  # earlier permanent failures not retried (see retry_failed)
    retries: int = 0
    warnings: int = 0
    elapsed_s: float = 0.0
    interrupted: bool = False
    stopped: str | None = None  # why the run gave up early (the server is unreachable)
    failures: list[str] = field(default_factory=list)  # "name: message", for the end-of-run report
    skipped_files: list[str] = field(default_factory=list)  # files in the inputs that are not sent, and why

    @property
    def per_minute(self) -> float:
        """Items handled by the server per minute in this run."""
        return (self.done + self.failed) * 60.0 / self.elapsed_s if self.elapsed_s > 0 else 0.0

    @property
    def ok(self) -> bool:
        return not (self.failed or self.failed_before or self.interrupted or self.stopped)

    @property
    def exit_code(self) -> int:
        return 0 if self.ok else 1

    def settled_before(self, state: str | None, retry_failed: bool) -> bool:
        """Count an item an earlier run settled ("done", or "failed" for good); False: send it."""
        if state == "done":
            self.skipped += 1
            return True
        if state == "failed" and not retry_failed:
            self.failed_before += 1
            return True
        return False

    def count(self, outcome, name: str) -> None:
        """Count the ``Outcome`` of the item called ``name``; give up when the server is unreachable."""
        if outcome.ok:
            self.done += 1
            return
        self.failed += 1
        self.failures.append(f"{name}: {outcome.error['error'].get('message')}")
        if outcome.unreachable:
            self.stopped = "the server is unreachable"


class Progress:
    """Prints a ``Summary`` as it changes; ``noun`` names the items ("images", "pages")."""

    def __init__(
        self,
        label: str,
        noun: str,
        summary: Summary,
        *,
        enabled: bool = True,
        stream: TextIO | None = None,
        interval_s: float = 10.0,
    ) -> None:
        self.label = label
        self.noun = noun
        self.summary = summary
        self.enabled = enabled
        self.stream = stream or sys.stderr
        self.tty = enabled and self.stream.isatty()
        self.interval_s = 0.1 if self.tty else interval_s
        self.started = time.monotonic()
        self._last = self.started
        self._drawn = False

    def update(self) -> None:
        now = time.monotonic()
        self.summary.elapsed_s = round(now - self.started, 3)
        if not self.enabled or now - self._last < self.interval_s:
            return
        self._last = now
        if self.tty:
            self.stream.write("\r\033[K" + self._status())
            self._drawn = True
        else:
            self.stream.write(self._status() + "\n")
        self.stream.flush()

    def warn(self, message: str) -> None:
        """A line of its own, shown even with progress off."""
        self.summary.warnings += 1
        self._clear()
        self.stream.write(f"{self.label}: warning: {message}\n")
        self.stream.flush()

    def say(self, message: str) -> None:
        """A line of its own (results, problems), shown even with progress off."""
        self._clear()
        self.stream.write(f"{self.label}: {message}\n")
        self.stream.flush()

    def skipped_file(self, path: str, why: str) -> None:
        """Count and name a file of the inputs that will not be sent."""
        self.summary.skipped_files.append(f"{path} ({why})")
        self.say(f"skipping {path}: {why}")

    def finish(self) -> None:
        s = self.summary
        s.elapsed_s = round(time.monotonic() - self.started, 3)
        self._clear()
        for failure in s.failures[:20]:
            self.stream.write(f"{self.label}: failed: {failure}\n")
        if len(s.failures) > 20:
            self.stream.write(f"{self.label}: ... and {len(s.failures) - 20} more failures (see the JSONL)\n")
        if self.enabled or not s.ok:
            state = "interrupted" if s.interrupted else "stopped" if s.stopped else "finished"
            line = (
                f"{self.label}: {state}: {s.total} {self.noun if s.total != 1 else self.noun.rstrip('s')}: "
                f"{s.done} done, {s.skipped} skipped (already done), "
                f"{s.failed} failed"
            )
            if s.failed_before:
                line += f", {s.failed_before} failed earlier (not retried; use --retry-failed)"
            line += f", {s.retries} retries in {s.elapsed_s:.1f}s"
            if s.done:
                line += f" ({s.per_minute:.1f} {self.noun}/min)"
            if s.skipped_files:
                line += f"; {len(s.skipped_files)} files not {self.noun} (named above)"
            if s.stopped:
                line += f"; {s.stopped}"
            if s.interrupted or s.stopped:
                line += "; run the same command again to resume"
            self.stream.write(line + "\n")
        self.stream.flush()

    def _status(self) -> str:
        s = self.summary
        handled = s.done + s.skipped + s.failed + s.failed_before
        elapsed = max(time.monotonic() - self.started, 1e-9)
        rate = (s.done + s.failed) / elapsed
        failed = s.failed + s.failed_before
        line = f"{self.label}: {handled}/{s.total} {self.noun}, {s.done} done, {s.skipped} skipped, {failed} failed"
        if s.retries:
            line += f", {s.retries} retries"
        line += f", {rate * 60:.1f}/min"
        if rate > 0 and handled < s.total:
            line += f", eta {_duration((s.total - handled) / rate)}"
        return line

    def _clear(self) -> None:
        if self._drawn:
            self.stream.write("\r\033[K")
            self._drawn = False


def _duration(seconds: float) -> str:
    seconds = int(seconds)
    if seconds < 60:
        return f"{seconds}s"
    if seconds < 3600:
        return f"{seconds // 60}m{seconds % 60:02d}s"
    return f"{seconds // 3600}h{seconds % 3600 // 60:02d}m"
