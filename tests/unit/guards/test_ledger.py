"""MemoryLedger: reservations, waiting, order, timeouts and cancellation."""

from __future__ import annotations

import asyncio

import pytest

from guards import BusyError, MemoryLedger, NeverFitsError


async def settle() -> None:
    """Let every ready task run until it blocks."""
    for _ in range(5):
        await asyncio.sleep(0)


def test_reservation_that_fits_is_granted_at_once():
    """A reservation within capacity is held immediately."""

    async def main():
        ledger = MemoryLedger(100)
        reservation = await ledger.reserve(30, timeout_s=0)
        return ledger.held_bytes, reservation.nbytes

    assert asyncio.run(main()) == (30, 30)


def test_release_is_idempotent():
    """Releasing twice gives the bytes back once."""

    async def main():
        ledger = MemoryLedger(100)
        reservation = await ledger.reserve(30, timeout_s=0)
        reservation.release()
        reservation.release()
        return ledger.held_bytes, reservation.released

    assert asyncio.run(main()) == (0, True)


def test_context_manager_releases():
    """Leaving an ``async with`` block releases the reservation, even on error."""

    async def main():
        ledger = MemoryLedger(100)
        with pytest.raises(RuntimeError):
            async with await ledger.reserve(30, timeout_s=0):
                raise RuntimeError
        return ledger.held_bytes

    assert asyncio.run(main()) == 0


def test_waiter_proceeds_when_memory_is_released():
    """A reservation that does not fit waits, then is granted when another releases."""

    async def main():
        ledger = MemoryLedger(100)
        first = await ledger.reserve(80, timeout_s=0)
        waiter = asyncio.create_task(ledger.reserve(50, timeout_s=5))
        await settle()
        waited = not waiter.done() and ledger.waiting == 1
        first.release()
        second = await waiter
        return waited, ledger.held_bytes, second.nbytes

    assert asyncio.run(main()) == (True, 50, 50)


def test_waiters_are_served_first_come_first_served():
    """A small request does not overtake a large one waiting ahead of it."""

    async def main():
        ledger = MemoryLedger(100)
        big_holder = await ledger.reserve(90, timeout_s=0)
        small_holder = await ledger.reserve(10, timeout_s=0)
        order: list[str] = []

        async def want(name: str, nbytes: int):
            reservation = await ledger.reserve(nbytes, timeout_s=5)
            order.append(name)
            return reservation

        big = asyncio.create_task(want("big", 80))
        await settle()
        small = asyncio.create_task(want("small", 10))
        await settle()
        small_holder.release()  # 10 free: "small" would fit, but "big" is first
        await settle()
        overtaken = list(order)
        big_holder.release()
        await asyncio.gather(big, small)
        return overtaken, order

    assert asyncio.run(main()) == ([], ["big", "small"])


def test_wait_times_out_with_busy():
    """A wait past timeout_s raises BusyError carrying the ledger's Retry-After."""

    async def main():
        ledger = MemoryLedger(100, retry_after_s=7)
        await ledger.reserve(100, timeout_s=0)
        with pytest.raises(BusyError) as caught:
            await ledger.reserve(10, timeout_s=0.02)
        return caught.value.retry_after_s, ledger.held_bytes, ledger.waiting

    assert asyncio.run(main()) == (7, 100, 0)


def test_zero_timeout_is_busy_at_once():
    """timeout_s=0 never waits: BusyError when the bytes do not fit now."""

    async def main():
        ledger = MemoryLedger(100)
        await ledger.reserve(95, timeout_s=0)
        with pytest.raises(BusyError):
            await ledger.reserve(10, timeout_s=0)

    asyncio.run(main())


def test_more_than_capacity_never_fits():
    """A reservation larger than the capacity raises NeverFitsError without waiting."""

    async def main():
        ledger = MemoryLedger(100)
        with pytest.raises(NeverFitsError) as caught:
            await ledger.reserve(101, timeout_s=60)
        return caught.value.would_fit

    assert "at most 100 B" in asyncio.run(main())


def test_cancelled_waiter_leaks_nothing():
    """A waiter cancelled while waiting holds nothing and leaves the queue."""

    async def main():
        ledger = MemoryLedger(100)
        holder = await ledger.reserve(100, timeout_s=0)
        waiter = asyncio.create_task(ledger.reserve(50, timeout_s=5))
        await settle()
        waiter.cancel()
        with pytest.raises(asyncio.CancelledError):
            await waiter
        holder.release()
        return ledger.held_bytes, ledger.waiting

    assert asyncio.run(main()) == (0, 0)


def test_waiter_cancelled_right_after_its_grant_gives_it_back():
    """Granted, then cancelled before it resumed: the bytes return to the ledger."""

    async def main():
        ledger = MemoryLedger(100)
        holder = await ledger.reserve(100, timeout_s=0)
        waiter = asyncio.create_task(ledger.reserve(50, timeout_s=5))
        await settle()
        holder.release()  # grants the waiter synchronously
        granted = ledger.held_bytes
        waiter.cancel()
        with pytest.raises(asyncio.CancelledError):
            await waiter
        return granted, ledger.held_bytes

    assert asyncio.run(main()) == (50, 0)


def test_timed_out_head_lets_the_next_waiter_in():
    """When the waiter at the head times out, one behind it that fits is granted."""

    async def main():
        ledger = MemoryLedger(100)
        await ledger.reserve(90, timeout_s=0)
        head = asyncio.create_task(ledger.reserve(50, timeout_s=0.02))
        await settle()
        behind = asyncio.create_task(ledger.reserve(10, timeout_s=5))
        with pytest.raises(BusyError):
            await head
        reservation = await asyncio.wait_for(behind, 1)
        return reservation.nbytes, ledger.held_bytes

    assert asyncio.run(main()) == (10, 100)


def test_shrinking_capacity_fails_waiters_that_can_never_fit():
    """set_capacity below a waiter's size fails it with NeverFitsError."""

    async def main():
        ledger = MemoryLedger(100)
        await ledger.reserve(100, timeout_s=0)
        waiter = asyncio.create_task(ledger.reserve(80, timeout_s=5))
        await settle()
        ledger.set_capacity(60)
        with pytest.raises(NeverFitsError):
            await waiter
        return ledger.waiting

    assert asyncio.run(main()) == 0


def test_growing_capacity_admits_waiters():
    """set_capacity above what is held lets waiting reservations in."""

    async def main():
        ledger = MemoryLedger(100)
        await ledger.reserve(100, timeout_s=0)
        waiter = asyncio.create_task(ledger.reserve(50, timeout_s=5))
        await settle()
        ledger.set_capacity(150)
        return (await waiter).nbytes, ledger.held_bytes

    assert asyncio.run(main()) == (50, 150)
