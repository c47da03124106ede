"""The memory ledger: running requests hold reservations against one capacity.

Lives in the HTTP process (asyncio, one event loop). A request reserves its
``Plan.reserve_bytes`` before it runs and releases them when it ends. Waiters are
served first come, first served: a large request at the head is not overtaken
by smaller ones behind it, so it cannot starve.
"""

from __future__ import annotations

import asyncio
from collections import deque
from types import TracebackType
from typing import Self

from guards.errors import BusyError, NeverFitsError
from guards.units import format_bytes

__all__ = ["MemoryLedger", "Reservation"]


class Reservation:
    """Bytes held in a MemoryLedger until ``release()`` (idempotent) or the end of a ``with``."""

    __slots__ = ("_ledger", "_released", "held_before", "nbytes")

    def __init__(self, ledger: MemoryLedger, nbytes: int, held_before: int = 0) -> None:
        self._ledger = ledger
        self.nbytes = nbytes
        self.held_before = held_before  # what the ledger's other reservations held when this one was granted
        self._released = False

    @property
    def released(self) -> bool:
        """Whether the bytes went back to the ledger."""
        return self._released

    def release(self) -> None:
        """Give the bytes back and wake whoever waits; calling it again does nothing."""
        if not self._released:
            self._released = True
            self._ledger._give_back(self.nbytes)

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.release()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.release()

    def __repr__(self) -> str:
        state = "released" if self._released else "held"
        return f"<Reservation {format_bytes(self.nbytes)} {state}>"


class MemoryLedger:
    """Admission by memory: ``reserve`` waits, first come first served, until the bytes fit.

    Not thread-safe: use it from the event loop that runs the requests.
    ``retry_after_s`` is what BusyError tells clients when a wait times out.
    """

    def __init__(self, capacity_bytes: int, *, retry_after_s: float = 2.0) -> None:
        if capacity_bytes < 0:
            raise ValueError(f"capacity_bytes must be non-negative, got {capacity_bytes}")
        self._capacity = capacity_bytes
        self._held = 0
        self._retry_after_s = retry_after_s
        self._waiters: deque[tuple[int, asyncio.Future[Reservation]]] = deque()

    @property
    def capacity_bytes(self) -> int:
        """The most all reservations together may hold."""
        return self._capacity

    @property
    def held_bytes(self) -> int:
        """What granted, unreleased reservations hold now."""
        return self._held

    @property
    def waiting(self) -> int:
        """How many ``reserve`` calls are waiting."""
        return len(self._waiters)

    def set_capacity(self, capacity_bytes: int) -> None:
        """Change the capacity (a model loaded or unloaded); waiters that can no longer ever fit fail."""
        if capacity_bytes < 0:
            raise ValueError(f"capacity_bytes must be non-negative, got {capacity_bytes}")
        self._capacity = capacity_bytes
        keep: deque[tuple[int, asyncio.Future[Reservation]]] = deque()
        for nbytes, future in self._waiters:
            if nbytes > capacity_bytes:
                future.set_exception(self._too_big(nbytes))
            else:
                keep.append((nbytes, future))
        self._waiters = keep
        self._wake()

    async def reserve(self, nbytes: int, *, timeout_s: float | None) -> Reservation:
        """Hold ``nbytes``, waiting up to ``timeout_s`` seconds (None: no limit) for them to fit.

        Raises NeverFitsError at once when ``nbytes`` exceeds the capacity, and
        BusyError when the wait times out. A caller cancelled while waiting
        holds nothing afterwards.
        """
        if nbytes < 0:
            raise ValueError(f"nbytes must be non-negative, got {nbytes}")
        if nbytes > self._capacity:
            raise self._too_big(nbytes)
        if not self._waiters and self._held + nbytes <= self._capacity:
            self._held += nbytes
            return Reservation(self, nbytes, self._held - nbytes)
        if timeout_s is not None and timeout_s <= 0:
            raise BusyError(self._retry_after_s)

        future: asyncio.Future[Reservation] = asyncio.get_running_loop().create_future()
        entry = (nbytes, future)
        self._waiters.append(entry)
        try:
            async with asyncio.timeout(timeout_s):
                return await future
        except BaseException as exc:
            granted = future.done() and not future.cancelled() and future.exception() is None
            if not granted:
                future.cancel()
                self._forget(entry)
                if isinstance(exc, TimeoutError):
                    raise BusyError(self._retry_after_s) from None
                raise
            if isinstance(exc, TimeoutError):
                # Granted in the same instant the timer fired: keep it, it fits.
                return future.result()
            future.result().release()  # cancelled after the grant: give it back
            raise

    def _too_big(self, nbytes: int) -> NeverFitsError:
        would_fit = f"a request needing at most {format_bytes(self._capacity)}"
        return NeverFitsError(
            f"This request needs {format_bytes(nbytes)} of memory while running; the server "
            f"has {format_bytes(self._capacity)} for all requests together.",
            would_fit=would_fit,
        )

    def _forget(self, entry: tuple[int, asyncio.Future[Reservation]]) -> None:
        try:
            self._waiters.remove(entry)
        except ValueError:
            pass
        self._wake()  # the head may have left: those behind it may fit now

    def _give_back(self, nbytes: int) -> None:
        self._held -= nbytes
        self._wake()

    def _wake(self) -> None:
        while self._waiters:
            nbytes, future = self._waiters[0]
            if future.done():  # cancelled; its waiter removes it too
                self._waiters.popleft()
                continue
            if self._held + nbytes > self._capacity:
                return
            self._waiters.popleft()
            future.set_result(Reservation(self, nbytes, self._held))
            self._held += nbytes
