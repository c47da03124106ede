"""Mistral 3's geometry (``guards.families.pixtral``) against mlx-vlm's own processor on a tiny checkpoint.

The wrapper is one token per image: ``[IMG_END]`` (the ``[IMG]`` the chat template
writes is replaced by the grid); the row breaks are the extra tokens.
"""

from __future__ import annotations

import json

import pytest

mlx_vlm = pytest.importorskip("mlx_vlm")

from mlx_vlm.prompt_utils import apply_chat_template  # noqa: E402
from mlx_vlm.utils import prepare_inputs  # noqa: E402
from PIL import Image  # noqa: E402

from guards.families import Checkpoint, geometry_for  # noqa: E402
from mmserve.synth.families import mistral3  # noqa: E402

SIZES = [(200, 150), (1024, 768), (2550, 3300), (2000, 120), (16, 2000), (1540, 1540)]


@pytest.fixture(scope="module")
def mistral3_model(tmp_path_factory):
    path = tmp_path_factory.mktemp("mistral3")
    mistral3.FAMILY.write(path, 0)
    model, processor = mlx_vlm.load(str(path))
    files = {n: json.loads((path / f"{n}_config.json").read_text()) for n in ("preprocessor", "processor")}
    geometry = geometry_for(Checkpoint(json.loads((path / "config.json").read_text()), **files))
    return model, processor, geometry


def _measure(model, processor, geometry, width, height):
    """The processor's inputs for one image sent at the guard's snapped size, and the text-only prompt's length."""
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


def test_the_checkpoint_is_the_mistral3_geometry(mistral3_model):
    """A ``mistral3`` checkpoint gets 14-px patches merged 2x2 and 1540 px at most."""
    _, _, geometry = mistral3_model
    assert (geometry.patch_size, geometry.merge, geometry.longest_edge) == (14, 2, 1540)


@pytest.mark.parametrize("size", SIZES)
def test_predicted_image_tokens_equal_the_processor(mistral3_model, size):
    """The image tokens the guard predicts are the ``[IMG]`` ids the processor writes."""
    model, processor, geometry = mistral3_model
    inputs, _ = _measure(model, processor, geometry, *size)
    real = (inputs["input_ids"] == model.config.image_token_index).sum().item()
    assert geometry.layout(*geometry.snap(*size)).tokens == real


@pytest.mark.parametrize("size", SIZES)
def test_prompt_length_is_text_plus_image_tokens_breaks_and_end(mistral3_model, size):
    """The prompt grows by tokens + row breaks + one ``[IMG_END]``, at every size."""
    model, processor, geometry = mistral3_model
    inputs, text_tokens = _measure(model, processor, geometry, *size)
    layout = geometry.layout(*geometry.snap(*size))
    assert inputs["input_ids"].shape[1] == text_tokens + layout.tokens + layout.extra_tokens + 1


@pytest.mark.parametrize("size", SIZES)
def test_snapped_size_is_what_the_processor_sends_to_the_tower(mistral3_model, size):
    """The snapped size is a fixed point of the processor: the pixels the tower sees have that size."""
    model, processor, geometry = mistral3_model
    inputs, _ = _measure(model, processor, geometry, *size)
    width, height = geometry.snap(*size)
    assert tuple(inputs["pixel_values"].shape[2:]) == (height, width)
    assert geometry.layout(*size) == geometry.layout(width, height)


def test_a_smaller_image_gets_fewer_patches(mistral3_model):
    """Shrinking pays: half the sides, about a quarter of the patches."""
    _, _, geometry = mistral3_model
    assert geometry.layout(560, 420).patches * 4 == geometry.layout(1120, 840).patches


def test_greedy_generation_with_an_image_gives_text(mistral3_model):
    """mlx-vlm generates from the tiny checkpoint with an image."""
    model, processor, _ = mistral3_model
    prompt = apply_chat_template(processor, model.config, "What is this?", num_images=1)
    image = Image.new("RGB", (200, 150), (200, 40, 90))
    result = mlx_vlm.generate(model, processor, prompt, image=[image], max_tokens=8, temperature=0)
    assert result.text
