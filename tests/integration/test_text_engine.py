"""The text engine on a tiny model: a request alone decodes solo, and moving it into the
batch when others arrive changes none of its tokens."""

from __future__ import annotations

import pytest

from mmserve.engines import messages
from mmserve.engines.text import TextEngine


@pytest.fixture(scope="module", params=[True, False], ids=["one-pass", "two-pass"])
def engine(models, request) -> TextEngine:
    """Both ways to a first token: the GPU default (the whole prompt in one forward pass) and
    mlx's CPU default (all but the last token, then that token)."""
    return TextEngine(str(models / "text"), max_batch=8, prefix_cache_bytes=64 << 20, one_pass=request.param)


def request(i: int, max_tokens: int = 24, **sampling) -> messages.Generate:
    return messages.Generate(
        id=f"r{i}",
        messages=[{"role": "user", "content": f"question {i}: tell me about the weather"}],
        max_tokens=max_tokens,
        sampling=messages.Sampling(**{"temperature": 0, **sampling}),
    )


def run(engine: TextEngine, first: messages.Generate, *later: messages.Generate, join_at: int = 0) -> dict:
    """Tokens by request id; ``later`` requests are inserted after ``join_at`` steps of ``first``."""
    ids = {engine.insert(engine.prepare(first)).uid: first.id}
    solo = engine.lane.solo is not None
    tokens: dict[str, list[int]] = {}
    steps = 0
    while ids or later:
        if later and steps == join_at:
            ids |= {engine.insert(engine.prepare(r)).uid: r.id for r in later}
            later = ()
        for uid, token, finish_reason in engine.step():
            tokens.setdefault(ids[uid], []).append(token)
            if finish_reason is not None:
                del ids[uid]
        steps += 1
    assert solo, "an idle engine runs its first request solo"
    assert not engine.lane
    return tokens


@pytest.mark.parametrize("join_at", [0, 1, 3, 12])
def test_hand_over_to_the_batch_keeps_every_token(engine, join_at):
    alone = run(engine, request(0)) | run(engine, request(1))
    together = run(engine, request(0), request(1), join_at=join_at)
    assert together == alone
    assert len(alone["r0"]) == 24


def test_seeded_sampling_and_penalties_survive_the_hand_over(engine):
    sampled = request(2, temperature=0.9, seed=7, repetition_penalty=1.5, frequency_penalty=0.5)
    alone = run(engine, sampled)
    together = run(engine, sampled, request(3), join_at=5)
    assert together["r2"] == alone["r2"]


def test_unseeded_requests_with_the_same_settings_are_sampled_in_one_call(engine, monkeypatch):
    import mlx.core as mx

    rows = []
    categorical = mx.random.categorical
    monkeypatch.setattr(
        mx.random, "categorical", lambda logits, **kw: rows.append(len(logits)) or categorical(logits, **kw)
    )
    same = [request(i, max_tokens=6, temperature=0.8, top_p=0.9) for i in range(6, 10)]
    tokens = run(engine, *same)
    assert sorted(tokens) == [r.id for r in same] and all(len(t) == 6 for t in tokens.values())
    assert max(rows) == 4, "the batch samples all four rows in one call"


def test_only_unseeded_requests_with_equal_settings_share_a_sampler():
    from mmserve.engines.common import make_sampler

    def sampling(**kw):
        return messages.Sampling(**{"temperature": 0.7, **kw})

    assert make_sampler(sampling()) is make_sampler(sampling())
    assert make_sampler(sampling()) is not make_sampler(sampling(top_k=5))
    assert make_sampler(sampling(seed=1)) is not make_sampler(sampling(seed=1))
    assert make_sampler(sampling(temperature=0)) is None


def test_a_solo_request_that_is_removed_leaves_the_engine_idle(engine):
    uid = engine.insert(engine.prepare(request(4))).uid
    engine.step()
    engine.step()
    engine.remove(uid)
    assert engine.lane.solo is None
    assert run(engine, request(5)) == run(engine, request(5))


def test_a_solo_request_reports_its_first_token_before_queueing_the_next_step(engine):
    uid = engine.insert(engine.prepare(request(11))).uid
    try:
        events = []
        while not events:
            events = engine.step()
        solo = engine.lane.solo
        assert solo.next_token is None and solo.todo == [events[0][1]]  # the next step feeds it
    finally:
        engine.remove(uid)


def forward_calls(engine, monkeypatch) -> list:
    """Each forward pass of the engine's model from now on, as its ``logits_to_keep``."""
    calls = []
    forward = type(engine.model).__call__

    def counted(self, *args, **kwargs):
        calls.append(kwargs.get("logits_to_keep"))
        return forward(self, *args, **kwargs)

    monkeypatch.setattr(type(engine.model), "__call__", counted)
    return calls


def test_a_solo_prompt_reaches_its_first_token_in_one_forward_pass_with_mlx_lm_s_tokens(engine, monkeypatch):
    """The whole prompt in one pass, computing the head for its last position only, gives the
    tokens of ``mlx_lm.stream_generate``, which feeds the last prompt token in a pass of its own."""
    from mlx_lm import stream_generate

    if not engine.one_pass:
        pytest.skip("one pass to the first token is the GPU default")
    calls = forward_calls(engine, monkeypatch)
    uid = engine.insert(engine.prepare(request(12))).uid
    events = engine.step()
    assert [uid] == [u for u, _, _ in events] and calls == [1]
    while events[-1][2] is None:
        events += engine.step()
    monkeypatch.undo()
    prompt = engine.encode(request(12).messages)
    expected = [r.token for r in stream_generate(engine.model, engine.tokenizer, prompt, max_tokens=24)]
    assert [token for _, token, _ in events] == expected


def test_an_arrival_joins_the_running_batch_in_the_step_that_prefills_it(engine, monkeypatch):
    """A request arriving while another decodes: its prompt in one pass, then one batch step
    that feeds both rows; each gets a token in that step. Neither sequence runs a forward
    pass of its own to enter the batch, as mlx-lm's insert would."""
    if not engine.one_pass:
        pytest.skip("a lone arrival is prefilled in one pass on GPUs; mlx-lm's batched prefill on CPU")
    first = engine.insert(engine.prepare(request(14))).uid
    try:
        for _ in range(3):
            engine.step()
        assert engine.lane.solo.next_token is not None  # decoding solo, a token computed ahead
        calls = forward_calls(engine, monkeypatch)
        second = engine.insert(engine.prepare(request(15))).uid
        events = engine.step()
        assert calls == [1, None]  # the arrival's prompt; the batch's step over both rows
        assert sorted(uid for uid, _, _ in events) == sorted([first, second])
    finally:
        engine.remove(first)
        engine.remove(second)
    assert not engine.lane


def test_an_arrival_removed_before_it_joins_leaves_the_solo_sequence_alone(engine):
    first = engine.insert(engine.prepare(request(16))).uid
    engine.step()
    second = engine.insert(engine.prepare(request(17))).uid
    engine.remove(second)
    assert len(engine.lane) == 1
    engine.step()
    assert engine.lane.solo is not None and not engine.lane.batch_uids
    engine.remove(first)


def test_logits_to_keep_computes_the_head_for_the_last_positions_only(engine):
    import mlx.core as mx

    tokens = mx.array([engine.encode(request(13).messages)])
    every = engine.model(tokens)
    last = engine.model(tokens, logits_to_keep=3)
    assert last.shape == (1, 3, every.shape[-1])
    assert mx.allclose(last, every[:, -3:], atol=1e-5).item()
    assert engine.model.model.keep is None


def test_models_of_other_families_are_left_as_they_are():
    import mlx.nn as nn

    from mmserve.engines.common import logits_for_kept_positions

    model = nn.Linear(4, 4)
    assert not logits_for_kept_positions(model)
    assert type(model) is nn.Linear


def test_a_finished_solo_request_feeds_the_prefix_cache(engine):
    engine.prefix_cache = type(engine.prefix_cache)(max_size=8, max_bytes=64 << 20)
    first = run(engine, request(6))
    again = engine.insert(engine.prepare(request(6)))
    assert again.cached_tokens == again.prompt_tokens - 1  # all but the token recomputed for its logits
    engine.remove(again.uid)
    assert run(engine, request(6)) == first


def test_hand_over_during_a_chunked_prefill_keeps_every_token(engine, monkeypatch):
    import mmserve.engines.text as text

    monkeypatch.setattr(engine, "prefix_cache", None)  # every prompt is prefilled in full
    alone = run(engine, request(7)) | run(engine, request(8))
    monkeypatch.setattr(text, "PREFILL_STEP", 4)  # the first prompt's prefill takes several steps
    first = engine.insert(engine.prepare(request(9)))
    engine.step()
    assert len(engine.lane.solo.todo) > 1  # still prefilling after a step
    engine.remove(first.uid)
    together = run(engine, request(7), request(8), join_at=2)
    assert together == alone
