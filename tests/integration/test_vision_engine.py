"""The vision engine on a tiny model: its prefix-cache salt (the images' content, never the
question), its caches, when a first token goes out, and how replies stream."""

from __future__ import annotations

import mlx.core as mx
import msgspec
import numpy as np
import pytest
from PIL import Image

from mmserve.engines import messages
from mmserve.engines.vision import PREFILL_STEP, VisionEngine, _DecodeRoPE


@pytest.fixture(scope="module")
def engine(models) -> VisionEngine:
    return VisionEngine(str(models / "vision"), max_batch=4, prefix_cache_bytes=64 << 20)


def image(seed: int, height: int = 56, width: int = 84) -> messages.ImageData:
    pixels = np.random.default_rng(seed).integers(0, 256, size=(height, width, 3), dtype=np.uint8)
    return messages.ImageData(width, height, Image.fromarray(pixels).tobytes(), f"sha-{seed}")


def salt(engine: VisionEngine, question: str, *images: messages.ImageData) -> int:
    content = [{"type": "image"} for _ in images] + [{"type": "text", "text": question}]
    request = messages.Generate(
        id=question, messages=[{"role": "user", "content": content}], images=list(images), max_tokens=1
    )
    _, _, prompt_kwargs, _ = engine.prepare(request)
    return prompt_kwargs["_apc_semantic_hash"]


def test_questions_about_one_image_share_a_salt_and_other_images_do_not(engine):
    page = salt(engine, "What is the title?", image(1))
    assert salt(engine, "Who signed it?", image(1)) == page
    assert salt(engine, "What is the title?", image(2)) != page
    assert salt(engine, "What is the title?", image(1), image(2)) != page


def test_text_only_prompts_share_a_salt(engine):
    assert salt(engine, "Hello") == salt(engine, "Something else entirely")


def test_warm_up_runs_text_bursts_and_an_image_to_the_end(engine):
    engine.warm_up([1, 2], image_side=56)
    assert not engine.features
    assert not engine.generator.has_work


def generate(engine: VisionEngine, *requests: messages.Generate) -> dict[str, list[int]]:
    """Greedy tokens by request id, all requests inserted together."""
    ids = {engine.insert(engine.prepare(r)).uid: r.id for r in requests}
    tokens: dict[str, list[int]] = {}
    while ids:
        for uid, token, finish_reason in engine.step():
            tokens.setdefault(ids[uid], []).append(token)
            if finish_reason is not None:
                del ids[uid]
    return tokens


def ask(question: str, picture: messages.ImageData, tag: str = "") -> messages.Generate:
    content = [{"type": "image"}, {"type": "text", "text": question}]
    return messages.Generate(
        id=question + tag,
        messages=[{"role": "user", "content": content}],
        images=[picture],
        max_tokens=12,
        sampling=messages.Sampling(temperature=0),
    )


def big_image(seed: int) -> messages.ImageData:
    pixels = np.random.default_rng(seed).integers(0, 256, size=(224, 252, 3), dtype=np.uint8)
    return messages.ImageData(252, 224, Image.fromarray(pixels).tobytes(), f"big-{seed}")


def test_a_page_asked_again_reuses_its_prefix_and_answers_as_without_the_cache(models):
    cold = VisionEngine(str(models / "vision"), max_batch=4, prefix_cache_bytes=0)
    warm = VisionEngine(str(models / "vision"), max_batch=4, prefix_cache_bytes=64 << 20)
    page, other = big_image(1), big_image(2)
    questions = [ask("What is the title?", page), ask("Who signed it?", page), ask("Any dates?", page)]
    stranger = ask("What is the title?", other, tag=" (other page)")
    expected = {}
    for request in [*questions, stranger]:
        expected |= generate(cold, request)

    first = generate(warm, questions[0])
    prefilled = warm.generator._prompt_tokens_counter  # mlx-vlm's count of prompt tokens it ran
    # Two warm rows and a cold one (another image, same question) in one batch.
    rest = generate(warm, questions[1], questions[2], stranger)
    assert first | rest == expected
    # The later questions about the page prefilled little more than their own words.
    assert warm.generator._prompt_tokens_counter - prefilled < 2 * prefilled
    again = warm.insert(warm.prepare(questions[1]))
    assert again.prompt_tokens > again.cached_tokens >= 64  # reported: the page's image tokens came from the cache
    warm.remove(again.uid)


def test_without_kv_reuse_a_page_is_prefilled_again_and_reported_so(models):
    """The CUDA setting: no cached KV is reused, answers are the same, the feature cache still
    skips the encoder, and the usage report claims no cached tokens."""
    reusing = VisionEngine(str(models / "vision"), max_batch=4, prefix_cache_bytes=64 << 20)
    plain = VisionEngine(str(models / "vision"), max_batch=4, prefix_cache_bytes=64 << 20, kv_reuse=False)
    assert plain.prefix_cache is None and reusing.prefix_cache is not None
    page = big_image(1)
    questions = [ask("What is the title?", page), ask("Who signed it?", page)]
    assert generate(plain, *questions[:1]) | generate(plain, *questions[1:]) == generate(
        reusing, *questions[:1]
    ) | generate(reusing, *questions[1:])
    assert plain.features  # the page's encoder output is kept
    prefilled = plain.generator._prompt_tokens_counter
    generate(plain, questions[1])
    assert plain.generator._prompt_tokens_counter - prefilled > 64  # the image's tokens ran again
    again = plain.insert(plain.prepare(questions[0]))
    assert again.cached_tokens == 0
    plain.remove(again.uid)


def test_decode_tokens_rotate_as_mlx_vlm_s_multimodal_rope(engine):
    """Every attention layer uses ``_DecodeRoPE``; for one token per row at different positions
    (a decode step) and for a prompt whose image tokens have distinct t/h/w positions, it rotates
    as mlx-vlm's own multimodal RoPE."""
    from mlx_vlm.models.qwen2_5_vl.language import Qwen2RotaryEmbedding

    layers = engine.model.language_model.model.layers
    assert all(type(layer.self_attn.rotary_emb) is _DecodeRoPE for layer in layers)
    patched = layers[0].self_attn.rotary_emb
    text = engine.model.config.text_config
    reference = Qwen2RotaryEmbedding(patched.dim, base=text.rope_theta, rope_scaling=text.rope_scaling)
    assert not reference.fused_apply  # the path mlx-vlm takes off Metal
    heads, dim = 4, patched.dim

    decode = mx.broadcast_to(mx.array([[7], [130]]), (3, 2, 1))  # two rows, one text token each
    prompt = mx.array([[[0, 1, 2, 2, 2, 2, 5]], [[0, 1, 2, 2, 3, 3, 5]], [[0, 1, 2, 3, 2, 3, 5]]])
    for positions in (decode, prompt):
        batch, length = positions.shape[1:]
        q = mx.random.normal((batch, heads, length, dim), key=mx.random.key(1))
        k = mx.random.normal((batch, heads // 2, length, dim), key=mx.random.key(2))
        for got, want in zip(patched.apply_rotary(q, k, positions), reference.apply_rotary(q, k, positions)):
            assert got.shape == want.shape
            assert mx.allclose(got, want, atol=1e-5).item()

    # In the models' own bfloat16 a prompt's rotation is mlx-vlm's, bit for bit.
    patched._pass = None  # cos and sin are computed again, in the queries' dtype
    q, k = q.astype(mx.bfloat16), k.astype(mx.bfloat16)
    for got, want in zip(patched.apply_rotary(q, k, prompt), reference.apply_rotary(q, k, prompt)):
        assert got.dtype == want.dtype == mx.bfloat16
        assert mx.array_equal(got, want).item()


@pytest.mark.parametrize(
    "content",
    [
        ["image", "What is the title?"],
        ["Compare", "image", "with", "image", "please."],
        ["image", "image"],
        ["No image at all."],
    ],
)
def test_position_ids_computed_on_the_host_are_mlx_vlm_s(engine, content):
    images = [image(10 + i, *size) for i, size in enumerate([(56, 84), (112, 56)][: content.count("image")])]
    parts = [{"type": "image"} if part == "image" else {"type": "text", "text": part} for part in content]
    request = messages.Generate(id="p", messages=[{"role": "user", "content": parts}], images=images, max_tokens=1)
    input_ids, prompt_kwargs = engine._embed(request, cache_features=False)
    language = engine.model.language_model
    assert "get_rope_index" in language.__dict__  # the engine's own, over mlx-vlm's method
    args = (input_ids, prompt_kwargs.get("image_grid_thw"), None, mx.ones_like(input_ids))
    got, want = language.get_rope_index(*args), type(language).get_rope_index(language, *args)
    for g, w in zip(got, want):
        assert g.dtype == w.dtype and g.shape == w.shape
        assert mx.array_equal(g, w).item()


def test_an_idle_engine_reports_a_first_token_as_soon_as_it_is_computed(engine):
    """One step to the first token (the whole prompt and its sample, in one forward pass) where
    mlx-vlm's batch takes three; every token still comes out once, as the batch itself reports them."""
    request = ask("What is the title?", big_image(3))

    def from_batch() -> list[int]:  # mlx-vlm's own reports, bypassing the engine's step
        engine.insert(engine.prepare(request))
        tokens = []
        while engine.generator.has_work:
            tokens += [r.token for r in engine.generator.next()[1]]
        return tokens

    expected = from_batch()
    uid = engine.insert(engine.prepare(request)).uid
    events, steps, first_at = [], 0, None
    while not events or events[-1][2] is None:
        steps += 1
        events += [event for event in engine.step() if event[0] == uid]
        first_at = first_at or (steps if events else None)
    assert first_at == 1
    assert [token for _, token, _ in events] == expected
    assert [reason for *_, reason in events] == [None] * (len(expected) - 1) + ["length"]
    assert not engine.reported_first


def test_the_language_model_computes_logits_only_for_the_positions_kept(engine):
    language_model = engine.model.language_model
    request = ask("What is the title?", big_image(3))
    input_ids, prompt_kwargs = engine._embed(request, cache_features=False)
    kwargs = {k: v for k, v in prompt_kwargs.items() if not k.startswith("_")}
    every = language_model(input_ids, **kwargs).logits
    last = language_model(input_ids, logits_to_keep=2, **kwargs).logits
    assert every.shape[1] == input_ids.shape[1] and last.shape[1] == 2
    assert mx.allclose(last, every[:, -2:], atol=1e-5).item()
    assert language_model.model.keep is None  # nothing left set for the next call


def test_only_prompts_longer_than_one_chunk_are_prefilled_in_chunks(engine):
    policy = engine.model.language_model.chunked_prefill_policy
    width = engine.model.config.text_config.hidden_size
    assert not policy(inputs_embeds=mx.zeros((2, PREFILL_STEP, width)))
    assert policy(inputs_embeds=mx.zeros((1, PREFILL_STEP + 1, width)))


def test_a_first_token_that_ends_its_request_is_reported_by_the_batch(engine):
    request = msgspec.structs.replace(ask("What is the title?", big_image(3)), max_tokens=1)
    uid = engine.insert(engine.prepare(request)).uid
    events = []
    while not events:
        events = [event for event in engine.step() if event[0] == uid]
    assert len(events) == 1 and events[0][2] == "length"
    assert not engine.generator.has_work


def test_replies_stream_token_by_token(engine):
    """A token's text goes out as soon as it is decoded, not when the next word begins."""
    detokenizer = engine.detokenizer()
    segments = []
    for token in engine.tokenizer.encode(" the weather is fine today", add_special_tokens=False):
        detokenizer.add_token(token)
        segments.append(detokenizer.last_segment)
    assert all(segments)
    assert "".join(segments) == "the weather is fine today"


def test_a_page_asked_again_skips_the_image_processor(engine, monkeypatch):
    """The image processor's output is kept beside the page's encoder features, and used
    only for the same image content."""
    base = type(engine.processor.image_processor).__mro__[1]  # the processor's own class
    calls = []
    process = base.__call__
    monkeypatch.setattr(base, "__call__", lambda self, **kwargs: calls.append(1) or process(self, **kwargs))
    engine.features.clear()
    page = big_image(5)
    first = engine.prepare(ask("What is the title?", page))
    again = engine.prepare(ask("Who signed it?", page))
    assert len(calls) == 1
    assert mx.array_equal(first[2]["image_grid_thw"], again[2]["image_grid_thw"])
    engine.prepare(ask("What is the title?", big_image(6)))
    assert len(calls) == 2
    kept = [seen.processed["pixel_values"] for seen in engine.features.values()]
    assert all(isinstance(pixels, mx.array) for pixels in kept)  # converted once, not per request
    assert len(kept) == 2 and engine.prefix_cache_bytes >= sum(p.nbytes for p in kept)  # counted in the cache's bytes


def test_one_image_prepared_by_two_threads_at_once_is_encoded_once(engine):
    """The choices of one request (or two requests for one page) prepared side by side: the
    second waits for the first's features instead of running the encoder again."""
    import dataclasses
    import time
    from concurrent.futures import ThreadPoolExecutor

    real = engine.adapter
    calls = []

    def encode(model, pixel_values, extra):
        calls.append(pixel_values.shape)
        time.sleep(0.3)  # keep the encoder busy while the other thread arrives
        return real.encode(model, pixel_values, extra)

    picture = image(4242)
    content = [{"type": "image"}, {"type": "text", "text": "What is it?"}]
    requests = [
        messages.Generate(
            id=f"twin-{i}", messages=[{"role": "user", "content": content}], images=[picture], max_tokens=1
        )
        for i in range(2)
    ]
    engine.adapter = dataclasses.replace(real, encode=encode)
    try:
        with ThreadPoolExecutor(2) as pool:
            first, second = pool.map(engine.prepare, requests)
    finally:
        engine.adapter = real
    assert len(calls) == 1
    assert first[2]["_apc_semantic_hash"] == second[2]["_apc_semantic_hash"]
    assert mx.array_equal(first[2]["inputs_embeds"], second[2]["inputs_embeds"]).item()
