"""The Qwen3-VL adapter's packed features (mmserve.engines.families.qwen3_vl), on the tiny checkpoint."""

from __future__ import annotations

import pytest

pytest.importorskip("mlx_vlm")

import mlx.core as mx  # noqa: E402

from tests.integration.guards.families._real_processor import Served  # noqa: E402

SIZE = (320, 256)


@pytest.fixture(scope="module")
def qwen3_vl(tmp_path_factory) -> Served:
    return Served.write("qwen3_vl", tmp_path_factory.mktemp("qwen3_vl"))


def _logits(served: Served, embedded):
    rest = {k: v for k, v in embedded.to_dict().items() if k != "inputs_embeds" and v is not None}
    input_ids = served.inputs(*SIZE)["input_ids"]
    return served.model.language_model(input_ids, inputs_embeds=embedded.inputs_embeds, **rest).logits


def test_cached_features_keep_the_deepstack_features(qwen3_vl):
    """With the packed features every deepstack layer equals mlx-vlm's own path."""
    direct, cached = qwen3_vl.embed(*SIZE, cached=False), qwen3_vl.embed(*SIZE, cached=True)
    assert len(cached.deepstack_visual_embeds) == len(direct.deepstack_visual_embeds) == 2
    for ours, theirs in zip(cached.deepstack_visual_embeds, direct.deepstack_visual_embeds):
        assert mx.array_equal(ours, theirs).item()


def test_cached_features_give_the_same_logits(qwen3_vl):
    """The prompt's logits with cached features are those of direct generation."""
    direct, cached = qwen3_vl.embed(*SIZE, cached=False), qwen3_vl.embed(*SIZE, cached=True)
    assert mx.array_equal(_logits(qwen3_vl, direct), _logits(qwen3_vl, cached)).item()


def test_plain_cached_features_lose_the_deepstack(qwen3_vl):
    """mlx-vlm alone, given only the merged features, drops the deepstack and the logits change (why packing)."""
    inputs = qwen3_vl.inputs(*SIZE)
    extra = {k: v for k, v in inputs.items() if k not in ("input_ids", "pixel_values", "attention_mask")}
    features = mx.split(qwen3_vl.encode(qwen3_vl.model, inputs["pixel_values"], extra), 3, axis=-1)[0]
    embedded = qwen3_vl.model.get_input_embeddings(
        inputs["input_ids"], inputs["pixel_values"], mask=inputs["attention_mask"], cached_image_features=features,
        **extra,
    )  # fmt: skip
    assert embedded.deepstack_visual_embeds is None
    direct = qwen3_vl.embed(*SIZE, cached=False)
    assert not mx.array_equal(_logits(qwen3_vl, direct), _logits(qwen3_vl, embedded)).item()
