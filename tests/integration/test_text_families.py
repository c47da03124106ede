"""The text engine on a tiny checkpoint of every text family ``mmserve synth --family`` writes:
it loads, its greedy tokens are mlx-lm's, eight different prompts at once each get their solo
answer, a repeated prompt reuses its prefix, the guard's KV estimate matches the cache mlx-lm
really allocates, and the context length is the checkpoint's own."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from mmserve.synth.families import FAMILIES

TEXT_FAMILIES = sorted(name for name, family in FAMILIES.items() if family.kind == "text")


@pytest.fixture(scope="session")
def family_dirs(tmp_path_factory) -> dict[str, Path]:
    """One tiny checkpoint per text family, written once per session."""
    root = tmp_path_factory.mktemp("families")
    dirs = {}
    for name in TEXT_FAMILIES:
        dirs[name] = root / name
        dirs[name].mkdir()
        FAMILIES[name].write(dirs[name], 0)
    return dirs


_engines: dict[str, object] = {}


@pytest.fixture(params=TEXT_FAMILIES)
def engine(request, family_dirs):
    """The family's TextEngine, loaded once per session (loading compiles some families' kernels)."""
    from mmserve.engines.text import TextEngine

    name = request.param
    if name not in _engines:
        _engines[name] = TextEngine(str(family_dirs[name]), max_batch=8, prefix_cache_bytes=64 << 20)
    engine = _engines[name]
    engine.family = name
    engine.reset()
    return engine


def generate(i: int, content: str | None = None, max_tokens: int = 12):
    from mmserve.engines import messages

    return messages.Generate(
        id=f"r{i}",
        messages=[{"role": "user", "content": content or f"question {i}: " + "tell me about the weather " * (i + 1)}],
        max_tokens=max_tokens,
        sampling=messages.Sampling(temperature=0),
    )


def serve(engine, *requests) -> dict[str, list[int]]:
    """Insert ``requests`` together and step the engine to the end; tokens by request id."""
    ids, tokens, cached = {}, {}, {}
    for r in requests:
        admitted = engine.insert(engine.prepare(r))
        ids[admitted.uid], cached[r.id] = r.id, admitted.cached_tokens
    while ids:
        for uid, token, finish_reason in engine.step():
            tokens.setdefault(ids[uid], []).append(token)
            if finish_reason is not None:
                del ids[uid]
    serve.cached = cached
    return tokens


def expected_context(directory: Path) -> int:
    """The context the checkpoint's config declares, with YaRN's factor where it extends it."""
    config = json.loads((directory / "config.json").read_text())
    text = config.get("text_config", config)
    length = text["max_position_embeddings"]
    scaling = text.get("rope_scaling") or {}
    if (scaling.get("type") or scaling.get("rope_type")) == "yarn" and length <= scaling["original_max_position_embeddings"]:
        length = scaling["original_max_position_embeddings"] * scaling["factor"]
    return int(length)


def test_greedy_tokens_are_mlx_lm_generates(engine):
    """A request served alone gives exactly the tokens mlx_lm.stream_generate gives for its prompt."""
    from mlx_lm import stream_generate

    request = generate(0)
    prompt = engine.encode(request.messages)
    reference = []
    for response in stream_generate(engine.model, engine.tokenizer, prompt, max_tokens=request.max_tokens):
        reference.append(response.token)
        if response.token in engine.eos_token_ids:
            break
    assert serve(engine, request)["r0"] == reference


def test_eight_concurrent_prompts_each_get_their_solo_answer(engine):
    """Eight different prompts at once (a padded batch, or one at a time where mlx-lm cannot
    batch the model) each decode the tokens they decode alone."""
    requests = [generate(i) for i in range(8)]
    alone = {}
    for r in requests:
        alone |= serve(engine, r)
    assert serve(engine, *requests) == alone


def test_a_repeated_prompt_reuses_its_prefix_and_answers_the_same(engine):
    """The second time a conversation comes, its prefix comes from the cache, same tokens."""
    request = generate(3)
    first = serve(engine, request)
    again = serve(engine, request)
    assert again == first
    if engine.prefix_cache is not None and serve.cached["r3"] == 0:
        pytest.skip("this family's cache cannot be trimmed back to a prefix")
    assert serve.cached["r3"] > 0


def _measured_cache_bytes(engine, tokens: int) -> int:
    """The bytes mlx-lm's cache holds once a prompt of ``tokens`` tokens is prefilled and its
    first token computed, as the engine does it alone."""
    import mlx.core as mx

    from mmserve.engines.text import Solo

    prompt = [(7 * i) % 1500 + 10 for i in range(tokens - 1)]
    sequence = Solo(
        engine.model, 0, prompt, cache=None, cached=[], max_tokens=2, sampler=None, processors=[], eos_token_ids=set()
    )
    while not sequence.step():
        pass
    sequence.step()  # the first token fed: the cache holds ``tokens`` tokens
    mx.eval([c.state for c in sequence.cache])
    return sum(c.nbytes for c in sequence.cache)


@pytest.mark.parametrize("tokens", [1024, 4096])
def test_planned_kv_is_within_ten_percent_of_the_cache(engine, tokens):
    """At 1k and 4k tokens the guard's estimate is within 10 % of the cache mlx-lm allocates."""
    measured = _measured_cache_bytes(engine, tokens)
    planned = engine.kv_layout.kv_bytes(tokens)
    assert abs(planned - measured) <= 0.10 * measured, (planned, measured)


@pytest.mark.parametrize("tokens", [2, 311, 700, 1500])
def test_planned_kv_is_never_well_under_the_cache(engine, tokens):
    """At other lengths the estimate may be over (allocation steps, windows filling) but never
    more than 10 % under."""
    measured = _measured_cache_bytes(engine, tokens)
    assert engine.kv_layout.kv_bytes(tokens) >= 0.90 * measured


def test_context_length_is_the_checkpoints(engine, family_dirs):
    """The context length is config.json's (text_config's), not mlx-lm's dataclass default."""
    assert engine.context_length == expected_context(family_dirs[engine.family])


def test_a_prompt_over_4096_tokens_is_served_where_the_config_allows(engine):
    """A 4,500-token prompt decodes where the checkpoint's context allows it."""
    if engine.context_length <= 4600:
        pytest.skip("this checkpoint's context is 4096")
    request = generate(9, content="the weather is " * 650, max_tokens=2)
    assert engine.count(request.messages, 0) > 4096
    assert len(serve(engine, request)["r9"]) >= 1


def test_families_mlx_lm_cannot_batch_say_so(engine):
    """A model whose padded batch fails is served one at a time, and says why."""
    from mmserve.engines.text import batch_fault

    fault = batch_fault(engine.model)
    assert engine.lane.batchable == (fault is None)
    if engine.family == "gemma2":  # mlx-lm's Gemma 2 attention cannot take a padded batch's mask
        assert fault is not None


@pytest.mark.slow
def test_a_wrapped_model_serves_a_long_prompt_over_http(family_dirs, models, tmp_path):
    """A text_config-wrapped checkpoint (Gemma 3 4B shape) behind the real server: /admin/status
    shows its measured KV layout, and a prompt over 4,096 tokens is answered."""
    import httpx

    from tests.conftest import start_server, stop_server

    root = tmp_path / "models"
    root.mkdir()
    (root / "text").symlink_to(family_dirs["gemma3_wrapped"])
    (root / "vision").symlink_to(models / "vision")
    server = start_server(root, tmp_path, "--text-replicas", "1", "--vision-replicas", "1")
    try:
        status = server.status()
        text = next(w for w in status["workers"] if w["engine"] == "text")
        assert text["batching"] == "continuous" and text["kv_layout"]["windows"]
        body = {
            "model": text["model"],
            "messages": [{"role": "user", "content": "the weather is " * 650}],
            "max_tokens": 4,
            "temperature": 0,
        }
        response = httpx.post(f"{server.base_url}/v1/chat/completions", json=body, timeout=120)
        assert response.status_code == 200, response.text
        assert response.json()["usage"]["prompt_tokens"] > 4096
    finally:
        stop_server(server)
