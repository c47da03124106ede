"""Qwen2-VL's and Qwen2.5-VL's geometry (``guards.families.qwen2_vl``) against mlx-vlm's processor on tiny checkpoints.

The wrapper is two tokens per image, ``<|vision_start|>`` and ``<|vision_end|>``
(the template's one ``<|image_pad|>`` becomes the image's tokens); no extra tokens.
"""

from __future__ import annotations

import json

import pytest

mlx_vlm = pytest.importorskip("mlx_vlm")

from mlx_vlm.prompt_utils import apply_chat_template  # noqa: E402
from mlx_vlm.utils import prepare_inputs  # noqa: E402
from PIL import Image  # noqa: E402

from guards.families import Checkpoint, geometry_for  # noqa: E402
from mmserve.synth.families import qwen2_5_vl, qwen2_vl  # noqa: E402

SIZES = [(200, 150), (1024, 768), (2550, 3300), (2000, 120), (16, 2000)]


FAMILIES = {"qwen2_vl": qwen2_vl.FAMILY, "qwen2_5_vl": qwen2_5_vl.FAMILY}


@pytest.fixture(scope="module", params=sorted(FAMILIES))
def qwen2_vl_model(request, tmp_path_factory):
    path = tmp_path_factory.mktemp(request.param)
    FAMILIES[request.param].write(path, 0)
    model, processor = mlx_vlm.load(str(path))
    config = json.loads((path / "config.json").read_text())
    geometry = geometry_for(Checkpoint(config, json.loads((path / "preprocessor_config.json").read_text())))
    return model, processor, geometry


_MEASURED: dict = {}  # a page-sized image takes the processor seconds: once per family and size


def _measure(model, processor, geometry, width, height):
    """The processor's inputs for one image sent at the guard's snapped size, and the text-only prompt's length."""
    key = (model.config.model_type, width, height)
    if key not in _MEASURED:
        _MEASURED[key] = _run_processor(model, processor, geometry, width, height)
    return _MEASURED[key]


def _run_processor(model, processor, geometry, width, height):
    kwargs = geometry.processor_kwargs(width, height)
    image = Image.new("RGB", geometry.snap(width, height), (90, 140, 200))
    prompt = apply_chat_template(processor, model.config, "What is this?", num_images=1)
    inputs = prepare_inputs(
        processor, images=[image], prompts=prompt, image_token_index=model.config.image_token_id, **kwargs
    )
    text = prepare_inputs(
        processor, prompts=apply_chat_template(processor, model.config, "What is this?", num_images=0)
    )
    return inputs, text["input_ids"].shape[1]


def test_the_checkpoint_is_the_qwen2_geometry(qwen2_vl_model):
    """The checkpoint gets 14-px patches merged 2x2 and the real pixel range."""
    _, _, geometry = qwen2_vl_model
    spec = geometry.spec
    assert (spec.patch_size, spec.merge_size, spec.min_pixels, spec.max_pixels) == (14, 2, 3136, 12845056)


@pytest.mark.parametrize("size", SIZES)
def test_predicted_image_tokens_equal_the_processor(qwen2_vl_model, size):
    """The image tokens the guard predicts are the ``<|image_pad|>`` ids the processor writes."""
    model, processor, geometry = qwen2_vl_model
    inputs, _ = _measure(model, processor, geometry, *size)
    real = (inputs["input_ids"] == model.config.image_token_id).sum().item()
    assert geometry.layout(*geometry.snap(*size)).tokens == real


@pytest.mark.parametrize("size", SIZES)
def test_prompt_length_is_text_plus_image_tokens_and_the_wrapper(qwen2_vl_model, size):
    """The prompt grows by the image tokens and two wrapper tokens, at every size."""
    model, processor, geometry = qwen2_vl_model
    inputs, text_tokens = _measure(model, processor, geometry, *size)
    layout = geometry.layout(*geometry.snap(*size))
    assert layout.extra_tokens == 0
    assert inputs["input_ids"].shape[1] == text_tokens + layout.tokens + 2


@pytest.mark.parametrize("size", SIZES)
def test_snapped_size_is_the_grid_the_tower_sees(qwen2_vl_model, size):
    """The snapped size is the processor's grid (``image_grid_thw`` x 14 px), and patches are the grid's cells."""
    model, processor, geometry = qwen2_vl_model
    inputs, _ = _measure(model, processor, geometry, *size)
    _, rows, columns = inputs["image_grid_thw"][0].tolist()
    layout = geometry.layout(*geometry.snap(*size))
    assert layout.size == (columns * 14, rows * 14)
    assert layout.patches == rows * columns


def test_a_smaller_image_gets_fewer_patches_down_to_the_minimum(qwen2_vl_model):
    """Shrinking pays above 56x56 pixels; below it the processor scales the image up again."""
    _, _, geometry = qwen2_vl_model
    assert geometry.layout(560, 420).patches * 4 == geometry.layout(1120, 840).patches
    assert geometry.layout(20, 20).patches == geometry.layout(56, 56).patches


def test_greedy_generation_with_an_image_gives_text(qwen2_vl_model):
    """mlx-vlm generates from the tiny checkpoint with an image."""
    model, processor, _ = qwen2_vl_model
    prompt = apply_chat_template(processor, model.config, "What is this?", num_images=1)
    image = Image.new("RGB", (256, 256), (200, 40, 90))
    result = mlx_vlm.generate(model, processor, prompt, image=[image], max_tokens=8, temperature=0)
    assert result.text
