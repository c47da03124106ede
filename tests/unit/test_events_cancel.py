"""A request whose client leaves stops its generation: cancelling the task that reads the
engine's events closes the engine stream, however the cancellation meets a token."""

from __future__ import annotations

import asyncio
from types import SimpleNamespace

from mmserve.engines import messages
from mmserve.serving import ChatService, Prepared


class Streaming:
    """An engine whose tokens are always ready: each event comes right after the last."""

    def __init__(self) -> None:
        self.closed = 0

    async def generate(self, build):
        try:
            for count in range(1, 100_000):
                await asyncio.sleep(0)
                yield messages.Delta(id="r", text="x", completion_tokens=count)
            yield messages.Finished(id="r", finish_reason="length", prompt_tokens=1, completion_tokens=100_000)
        finally:
            self.closed += 1


def test_cancelling_the_reader_closes_the_engine_stream_every_time():
    async def run() -> tuple[int, int]:
        engine = Streaming()
        service = SimpleNamespace(request_timeout_s=600.0)
        stopped = 0
        for attempt in range(200):
            prepared = Prepared(
                engine=engine, generate=messages.Generate(id="", messages=[], max_tokens=1), report={}, release=None
            )

            async def read(prepared=prepared) -> None:
                async for _ in ChatService.events(service, prepared):
                    pass

            task = asyncio.create_task(read())
            for _ in range(attempt % 7 + 1):  # cancel at different points of the token rhythm
                await asyncio.sleep(0)
            task.cancel()
            try:
                await task
            except asyncio.CancelledError:
                stopped += 1
        return stopped, engine.closed

    stopped, closed = asyncio.run(run())
    assert (stopped, closed) == (200, 200)
