"""The Qwen3-VL adapter (``mmserve.engines.families.qwen3_vl``) on the tiny checkpoint, in process."""

from __future__ import annotations

import threading

import pytest

mlx_vlm = pytest.importorskip("mlx_vlm")

import mlx.core as mx  # noqa: E402
import numpy as np  # noqa: E402
from mlx_vlm.prompt_utils import apply_chat_template  # noqa: E402
from mlx_vlm.utils import prepare_inputs  # noqa: E402
from PIL import Image  # noqa: E402

from mmserve.engines.families import qwen3_vl as adapter  # noqa: E402
from mmserve.synth.families import qwen3_vl  # noqa: E402


@pytest.fixture(scope="module")
def qwen3_vl_loaded(tmp_path_factory):
    path = tmp_path_factory.mktemp("qwen3_vl")
    qwen3_vl.FAMILY.write(path, 0)
    model, processor = mlx_vlm.load(str(path))
    adapter.after_load(model, processor)
    return model, processor


def _inputs(model, processor):
    image = Image.fromarray(np.random.default_rng(0).integers(0, 255, (256, 320, 3), dtype=np.uint8))
    prompt = apply_chat_template(processor, model.config, "What is this?", num_images=1)
    inputs = prepare_inputs(processor, images=[image], prompts=prompt, image_token_index=model.config.image_token_index)
    extra = {k: v for k, v in inputs.items() if k not in ("input_ids", "pixel_values", "attention_mask")}
    return inputs, extra


def _embed(model, processor, *, cached: bool):
    """The prompt's embeddings for one noise image, with the adapter's packed features passed back or not."""
    inputs, extra = _inputs(model, processor)
    features = adapter.encode(model, inputs["pixel_values"], extra) if cached else None
    embedded = model.get_input_embeddings(
        inputs["input_ids"],
        inputs["pixel_values"],
        mask=inputs["attention_mask"],
        cached_image_features=features,
        **extra,
    )
    mx.eval(embedded.inputs_embeds, embedded.deepstack_visual_embeds)
    return embedded


def _logits(model, processor, embedded):
    inputs, _ = _inputs(model, processor)
    rest = {k: v for k, v in embedded.to_dict().items() if k != "inputs_embeds" and v is not None}
    return model.language_model(inputs["input_ids"], inputs_embeds=embedded.inputs_embeds, **rest).logits


def test_cached_features_keep_the_deepstack_features(qwen3_vl_loaded):
    """With the packed features the embeddings and every deepstack layer equal mlx-vlm's own path."""
    direct, cached = _embed(*qwen3_vl_loaded, cached=False), _embed(*qwen3_vl_loaded, cached=True)
    assert mx.array_equal(direct.inputs_embeds, cached.inputs_embeds).item()
    assert len(cached.deepstack_visual_embeds) == len(direct.deepstack_visual_embeds) == 2
    for ours, theirs in zip(cached.deepstack_visual_embeds, direct.deepstack_visual_embeds):
        assert mx.array_equal(ours, theirs).item()


def test_cached_features_give_the_same_logits(qwen3_vl_loaded):
    """The prompt's logits with cached features are those of direct generation."""
    direct, cached = _embed(*qwen3_vl_loaded, cached=False), _embed(*qwen3_vl_loaded, cached=True)
    assert mx.array_equal(_logits(*qwen3_vl_loaded, direct), _logits(*qwen3_vl_loaded, cached)).item()


def test_plain_cached_features_lose_the_deepstack(qwen3_vl_loaded):
    """mlx-vlm alone, given only the merged features, drops the deepstack and the logits change (why packing)."""
    model, processor = qwen3_vl_loaded
    inputs, extra = _inputs(model, processor)
    features = mx.split(adapter.encode(model, inputs["pixel_values"], extra), 3, axis=-1)[0]
    embedded = model.get_input_embeddings(
        inputs["input_ids"],
        inputs["pixel_values"],
        mask=inputs["attention_mask"],
        cached_image_features=features,
        **extra,
    )
    assert embedded.deepstack_visual_embeds is None
    direct = _embed(model, processor, cached=False)
    assert not mx.array_equal(_logits(model, processor, direct), _logits(model, processor, embedded)).item()


def test_an_image_prepared_on_another_thread_embeds_the_same(qwen3_vl_loaded):
    """Preparing and encoding on a thread with its own stream gives the loading thread's embeddings."""
    outcome = {}

    def run():
        with mx.stream(mx.new_stream(mx.cpu)):
            outcome["embedded"] = _embed(*qwen3_vl_loaded, cached=True)

    thread = threading.Thread(target=run)
    thread.start()
    thread.join()
    assert mx.array_equal(
        outcome["embedded"].inputs_embeds, _embed(*qwen3_vl_loaded, cached=False).inputs_embeds
    ).item()
