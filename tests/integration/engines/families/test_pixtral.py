"""The Pixtral / Mistral 3 adapter (``mmserve.engines.families.pixtral``) on the tiny checkpoints, in process."""

from __future__ import annotations

import threading

import pytest

mlx_vlm = pytest.importorskip("mlx_vlm")

import mlx.core as mx  # noqa: E402
import numpy as np  # noqa: E402
from mlx_vlm.prompt_utils import apply_chat_template  # noqa: E402
from mlx_vlm.utils import prepare_inputs  # noqa: E402
from PIL import Image  # noqa: E402

from mmserve.engines.families import pixtral as adapter  # noqa: E402
from mmserve.synth.families import mistral3, pixtral  # noqa: E402

FAMILIES = {"pixtral": pixtral.FAMILY, "mistral3": mistral3.FAMILY}


@pytest.fixture(scope="module", params=sorted(FAMILIES))
def pixtral_checkpoint(request, tmp_path_factory):
    path = tmp_path_factory.mktemp(request.param)
    FAMILIES[request.param].write(path, 0)
    return path


def _embed(model, processor, *, cached: bool):
    """The prompt's embeddings for one noise image, with the adapter's features passed back or not."""
    image = Image.fromarray(np.random.default_rng(0).integers(0, 255, (150, 200, 3), dtype=np.uint8))
    prompt = apply_chat_template(processor, model.config, "What is this?", num_images=1)
    inputs = prepare_inputs(processor, images=[image], prompts=prompt, image_token_index=model.config.image_token_index)
    extra = {k: v for k, v in inputs.items() if k not in ("input_ids", "pixel_values", "attention_mask")}
    features = adapter.encode(model, inputs["pixel_values"], extra) if cached else None
    embeddings = model.get_input_embeddings(
        inputs["input_ids"],
        inputs["pixel_values"],
        mask=inputs["attention_mask"],
        cached_image_features=features,
        **extra,
    ).inputs_embeds
    mx.eval(embeddings)
    return embeddings


def _on_a_thread(function):
    """Run ``function`` on a new thread with a stream of its own, as mmserve's preparers do."""
    outcome = {}

    def run():
        stream = mx.new_stream(mx.cpu)
        try:
            with mx.stream(stream):
                outcome["value"] = function()
        except Exception as error:  # noqa: BLE001 - handed back to the test
            outcome["error"] = error

    thread = threading.Thread(target=run)
    thread.start()
    thread.join()
    if "error" in outcome:
        raise outcome["error"]
    return outcome["value"]


def test_encoded_features_give_the_same_embeddings(pixtral_checkpoint):
    """Features from ``encode`` passed back as cached features reproduce the embeddings exactly."""
    model, processor = mlx_vlm.load(str(pixtral_checkpoint))
    adapter.after_load(model, processor)
    assert mx.array_equal(_embed(model, processor, cached=True), _embed(model, processor, cached=False)).item()


def test_without_after_load_another_thread_cannot_run_the_tower(pixtral_checkpoint):
    """mlx-vlm leaves the rotary table lazy on the loading thread's stream (the bug ``after_load`` fixes)."""
    model, processor = mlx_vlm.load(str(pixtral_checkpoint))
    with pytest.raises(RuntimeError, match="There is no Stream"):
        _on_a_thread(lambda: _embed(model, processor, cached=False))


def test_after_load_lets_another_thread_prepare_the_image(pixtral_checkpoint):
    """After ``after_load`` an image prepared on another thread embeds as on the loading thread."""
    model, processor = mlx_vlm.load(str(pixtral_checkpoint))
    adapter.after_load(model, processor)
    on_thread = _on_a_thread(lambda: _embed(model, processor, cached=True))
    assert mx.array_equal(on_thread, _embed(model, processor, cached=False)).item()
