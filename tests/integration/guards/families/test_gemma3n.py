"""Gemma 3n's geometry (guards.families.gemma3n) against mlx-vlm's real processor on a tiny checkpoint."""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image

from guards.families import Checkpoint, geometry_for
from mmserve.synth.families import gemma3n

SIZES = [(200, 150), (1024, 768), (2550, 3300), (2000, 120)]
FILES = {"config": "config.json", "preprocessor": "preprocessor_config.json", "processor": "processor_config.json"}


@pytest.fixture(scope="module")
def gemma3n_dir(tmp_path_factory):
    directory = tmp_path_factory.mktemp("gemma3n")
    gemma3n.FAMILY.write(directory, 0)
    return directory


@pytest.fixture(scope="module")
def gemma3n_processor(gemma3n_dir):
    from mlx_vlm.utils import load_processor

    return load_processor(gemma3n_dir)


@pytest.fixture(scope="module")
def gemma3n_geometry(gemma3n_dir):
    return geometry_for(Checkpoint(**{k: json.loads((gemma3n_dir / v).read_text()) for k, v in FILES.items()}))


def _prompt(processor, images: int) -> str:
    from mlx_vlm.prompt_utils import apply_chat_template

    return apply_chat_template(processor, {"model_type": "gemma3n"}, "Describe the picture.", num_images=images)


def _inputs(processor, geometry, size=None):
    from mlx_vlm.utils import prepare_inputs

    if size is None:
        return prepare_inputs(processor, prompts=_prompt(processor, 0))
    sent = geometry.snap(*size)
    image = Image.new("RGB", sent, (90, 140, 200))
    return prepare_inputs(processor, images=[image], prompts=_prompt(processor, 1), **geometry.processor_kwargs(*sent))


@pytest.mark.parametrize("size", SIZES)
def test_tokens_equal_the_processors_count(gemma3n_processor, gemma3n_geometry, size):
    """The predicted image tokens equal the image_token_id positions the processor writes."""
    ids = np.array(_inputs(gemma3n_processor, gemma3n_geometry, size)["input_ids"])
    assert gemma3n_geometry.layout(*gemma3n_geometry.snap(*size)).tokens == int(
        (ids == gemma3n.VOCAB["<image_soft_token>"]).sum()
    )


@pytest.mark.parametrize("size", SIZES)
def test_size_equals_pixel_values(gemma3n_processor, gemma3n_geometry, size):
    """The layout's size is the pixel_values' spatial size: a fixed 768x768."""
    pixels = _inputs(gemma3n_processor, gemma3n_geometry, size)["pixel_values"]
    assert tuple(pixels.shape[-2:][::-1]) == gemma3n_geometry.layout(*size).size == (768, 768)


def test_wrapper_is_constant(gemma3n_processor, gemma3n_geometry):
    """Prompt length is text + 256 tokens + a constant wrapper at every size.

    The wrapper is ``\\n\\n<start_of_image>`` and ``<end_of_image>\\n\\n`` less the one
    ``<image_soft_token>`` placeholder they replace (two markers and the newlines as tokens).
    """
    text = np.array(_inputs(gemma3n_processor, gemma3n_geometry)["input_ids"]).shape[1]
    wrappers = {
        np.array(_inputs(gemma3n_processor, gemma3n_geometry, size)["input_ids"]).shape[1]
        - text
        - gemma3n_geometry.layout(*size).tokens
        for size in SIZES
    }
    assert len(wrappers) == 1 and wrappers.pop() > 2


def test_shrinking_buys_nothing(gemma3n_geometry):
    """A fixed-resolution family: any image is 256 tokens, and the guard knows not to shrink it."""
    assert not gemma3n_geometry.resizable
    assert gemma3n_geometry.layout(64, 64) == gemma3n_geometry.layout(4000, 3000)


@pytest.mark.slow
def test_greedy_generate_gives_text(gemma3n_dir):
    """The tiny checkpoint loads (with its one-block-per-stage tower) and generates from an image."""
    import mlx_vlm

    from mmserve.engines.families.gemma3n import before_load

    with before_load(json.loads((gemma3n_dir / "config.json").read_text())):
        model, processor = mlx_vlm.load(str(gemma3n_dir))
    image = Image.new("RGB", (200, 150), (200, 40, 40))
    result = mlx_vlm.generate(model, processor, _prompt(processor, 1), image=[image], max_tokens=8, temperature=0)
    assert result.text
