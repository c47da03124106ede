"""Qwen3-VL's geometry (``guards.families.qwen3_vl``) against mlx-vlm's own processor on a tiny checkpoint.

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
from mmserve.synth.families import qwen3_vl  # noqa: E402

SIZES = [(200, 150), (1024, 768), (2550, 3300), (2000, 120), (16, 2000)]


@pytest.fixture(scope="module")
def qwen3_vl_model(tmp_path_factory):
    path = tmp_path_factory.mktemp("qwen3_vl")
    qwen3_vl.FAMILY.write(path, 0)
    model, processor = mlx_vlm.load(str(path))
    config = json.loads((path / "config.json").read_text())
    geometry = geometry_for(Checkpoint(config, json.loads((path / "preprocessor_config.json").read_text())))
    return model, processor, geometry


_MEASURED: dict = {}  # a page-sized image takes the processor seconds: once per size


def _measure(model, processor, geometry, width, height):
    """The processor's inputs for one image sent at the guard's snapped size, and the text-only prompt's length."""
    if (width, height) not in _MEASURED:
        _MEASURED[width, height] = _run_processor(model, processor, geometry, width, height)
    return _MEASURED[width, height]


def _run_processor(model, processor, geometry, width, height):
    kwargs = geometry.processor_kwargs(width, height)
    image = Image.new("RGB", geometry.snap(width, height), (90, 140, 200))
    prompt = apply_chat_template(processor, model.config, "What is this?", num_images=1)
    inputs = prepare_inputs(
        processor, images=[image], prompts=prompt, image_token_index=model.config.image_token_index, **kwargs
    )
    text = prepare_inputs(
        processor, prompts=apply_chat_template(processor, model.config, "What is this?", num_images=0)
    )
    return inputs, text["input_ids"].shape[1]


def test_the_checkpoint_is_the_qwen3_geometry(qwen3_vl_model):
    """A ``qwen3_vl`` checkpoint gets 16-px patches merged 2x2 and the real pixel range."""
    _, _, geometry = qwen3_vl_model
    spec = geometry.spec
    assert (spec.patch_size, spec.merge_size, spec.min_pixels, spec.max_pixels) == (16, 2, 65536, 16777216)


@pytest.mark.parametrize("size", SIZES)
def test_predicted_image_tokens_equal_the_processor(qwen3_vl_model, size):
    """The image tokens the guard predicts are the ``<|image_pad|>`` ids the processor writes."""
    model, processor, geometry = qwen3_vl_model
    inputs, _ = _measure(model, processor, geometry, *size)
    real = (inputs["input_ids"] == model.config.image_token_index).sum().item()
    assert geometry.layout(*geometry.snap(*size)).tokens == real


@pytest.mark.parametrize("size", SIZES)
def test_prompt_length_is_text_plus_image_tokens_and_the_wrapper(qwen3_vl_model, size):
    """The prompt grows by the image tokens and two wrapper tokens, at every size."""
    model, processor, geometry = qwen3_vl_model
    inputs, text_tokens = _measure(model, processor, geometry, *size)
    layout = geometry.layout(*geometry.snap(*size))
    assert layout.extra_tokens == 0
    assert inputs["input_ids"].shape[1] == text_tokens + layout.tokens + 2


@pytest.mark.parametrize("size", SIZES)
def test_snapped_size_is_the_grid_the_tower_sees(qwen3_vl_model, size):
    """The snapped size is the processor's grid (``image_grid_thw`` x 16 px), and patches are the grid's cells."""
    model, processor, geometry = qwen3_vl_model
    inputs, _ = _measure(model, processor, geometry, *size)
    _, rows, columns = inputs["image_grid_thw"][0].tolist()
    layout = geometry.layout(*geometry.snap(*size))
    assert layout.size == (columns * 16, rows * 16)
    assert layout.patches == rows * columns


def test_a_smaller_image_gets_fewer_patches_down_to_the_minimum(qwen3_vl_model):
    """Shrinking pays above 256x256 pixels; below it the processor scales the image up again."""
    _, _, geometry = qwen3_vl_model
    assert geometry.layout(512, 384).patches * 4 == geometry.layout(1024, 768).patches
    assert geometry.layout(100, 100).patches == geometry.layout(256, 256).patches


def test_greedy_generation_with_an_image_gives_text(qwen3_vl_model):
    """mlx-vlm generates from the tiny checkpoint with an image."""
    model, processor, _ = qwen3_vl_model
    prompt = apply_chat_template(processor, model.config, "What is this?", num_images=1)
    image = Image.new("RGB", (256, 256), (200, 40, 90))
    result = mlx_vlm.generate(model, processor, prompt, image=[image], max_tokens=8, temperature=0)
    assert result.text
