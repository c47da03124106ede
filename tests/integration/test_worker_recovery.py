"""A request that fails inside the worker leaves it as it was for the next one."""

from __future__ import annotations

import queue
from functools import partial

import mlx.core as mx
import msgspec
import pytest

from mmserve.engines import common, messages
from mmserve.engines.text import TextEngine
from mmserve.engines.worker import Worker


class Recorder:
    """A worker's channel without a socket: what it sends is kept in order."""

    def __init__(self) -> None:
        self.inbox: queue.Queue = queue.Queue()
        self.sent: list = []

    def send(self, message) -> None:
        self.sent.append(message)


def serve(engine: TextEngine, *requests: messages.Generate) -> list:
    """Run a worker loop over ``requests`` until it has answered them all; its replies."""
    channel = Recorder()
    worker = Worker(engine, channel)
    for request in requests:
        channel.inbox.put(request)
    channel.inbox.put(messages.Shutdown())
    worker.run()
    return channel.sent


def generate(request_id: str, **sampling) -> messages.Generate:
    return messages.Generate(
        id=request_id,
        messages=[{"role": "user", "content": "tell me about the weather"}],
        max_tokens=8,
        sampling=messages.Sampling(**sampling),
    )


@partial(mx.compile, inputs=mx.random.state, outputs=mx.random.state)
def _top_k_that_raises(logprobs: mx.array, top_k: int) -> mx.array:
    raise ValueError(f"top_k {top_k} refused while tracing")


@pytest.fixture(scope="module")
def engine(models) -> TextEngine:
    return TextEngine(str(models / "text"), max_batch=4, prefix_cache_bytes=0)


def test_a_sampler_that_fails_while_compiling_does_not_poison_later_sampling(engine, monkeypatch):
    """mlx-lm's samplers are compiled with mlx's global random state as an input: one raising
    while traced left a placeholder there, and every unseeded sample after it failed until the
    worker restarted. The failed request gets a Failed; the next sampled one finishes."""
    with monkeypatch.context() as patch:
        patch.setattr(common, "apply_top_k", _top_k_that_raises)
        (failed,) = serve(engine, generate("bad", temperature=1.0, top_k=5))
    assert isinstance(failed, messages.Failed) and "refused while tracing" in failed.message

    replies = serve(engine, generate("next", temperature=1.0), generate("seeded", temperature=0.7, seed=3))
    finished = {m.id: m for m in replies if isinstance(m, messages.Finished)}
    assert not [m for m in replies if isinstance(m, messages.Failed)]
    assert finished["next"].completion_tokens > 0 and finished["seeded"].completion_tokens > 0


def test_top_k_of_the_whole_vocabulary_keeps_every_token(engine):
    """top_k equal to (or past) the vocabulary samples from everything, where mlx-lm's own filter raises."""
    replies = serve(engine, generate("all", temperature=1.0, top_k=engine.vocab_size, seed=1))
    assert isinstance(replies[-1], messages.Finished) and replies[-1].completion_tokens > 0


def test_a_reply_that_fails_ends_alone_and_its_neighbours_finish(engine, monkeypatch):
    """A fault in one request's own token handling (here its logprobs) fails that request; the
    worker goes on and the request beside it in the batch finishes."""
    from mmserve.engines.logprobs import TokenLogprobs

    def broken(self, position, token):
        raise KeyError(position)

    monkeypatch.setattr(TokenLogprobs, "take", broken)
    bad = msgspec.structs.replace(generate("bad", temperature=0), logprobs=2)
    replies = serve(engine, bad, generate("good", temperature=0))
    failed = [m for m in replies if isinstance(m, messages.Failed)]
    finished = [m for m in replies if isinstance(m, messages.Finished)]
    assert [m.id for m in failed] == ["bad"]
    assert [m.id for m in finished] == ["good"] and finished[0].completion_tokens > 0
