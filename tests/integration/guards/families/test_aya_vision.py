"""Aya Vision's geometry (guards.families.aya_vision) against mlx-vlm's real processor on a tiny checkpoint."""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image

from guards.families import Checkpoint, geometry_for
from mmserve.synth.families import aya_vision

SIZES = [(200, 150), (1024, 768), (2550, 3300), (2000, 120), (30, 30), (600, 600), (900, 900)]
FILES = {"config": "config.json", "preprocessor": "preprocessor_config.json", "processor": "processor_config.json"}


@pytest.fixture(scope="module")
def aya_vision_dir(tmp_path_factory):
    directory = tmp_path_factory.mktemp("aya_vision")
    aya_vision.FAMILY.write(directory, 0)
    return directory


@pytest.fixture(scope="module")
def aya_vision_processor(aya_vision_dir):
    from mlx_vlm.utils import load_processor

    return load_processor(aya_vision_dir)


@pytest.fixture(scope="module")
def aya_vision_geometry(aya_vision_dir):
    return geometry_for(Checkpoint(**{k: json.loads((aya_vision_dir / v).read_text()) for k, v in FILES.items()}))


def _prompt(processor, images: int) -> str:
    from mlx_vlm.prompt_utils import apply_chat_template

    return apply_chat_template(processor, {"model_type": "aya_vision"}, "Describe the picture.", num_images=images)


def _inputs(processor, geometry, size=None):
    from mlx_vlm.utils import prepare_inputs

    if size is None:
        return prepare_inputs(processor, prompts=_prompt(processor, 0))
    sent = geometry.snap(*size)
    image = Image.new("RGB", sent, (90, 140, 200))
    return prepare_inputs(processor, images=[image], prompts=_prompt(processor, 1), **geometry.processor_kwargs(*sent))


@pytest.mark.parametrize("size", SIZES)
def test_tokens_equal_the_processors_count(aya_vision_processor, aya_vision_geometry, size):
    """The predicted image tokens equal the image_token_id positions the processor writes."""
    ids = np.array(_inputs(aya_vision_processor, aya_vision_geometry, size)["input_ids"])
    assert aya_vision_geometry.layout(*aya_vision_geometry.snap(*size)).tokens == int(
        (ids == aya_vision.VOCAB["<|IMG_PATCH|>"]).sum()
    )


@pytest.mark.parametrize("size", SIZES)
def test_tiles_equal_pixel_values(aya_vision_processor, aya_vision_geometry, size):
    """The tiles (and thumbnail) the layout counts are the 364-px crops in pixel_values."""
    pixels = _inputs(aya_vision_processor, aya_vision_geometry, size)["pixel_values"]
    layout = aya_vision_geometry.layout(*size)
    assert tuple(pixels.shape[1:]) == (3, 364, 364)
    assert layout.patches == pixels.shape[0] * 26 * 26


def test_wrapper_is_constant(aya_vision_processor, aya_vision_geometry):
    """Prompt length is text + image tokens + a constant wrapper at every size.

    Size-dependent ``TILE_<i>`` markers are the layout's extra tokens; the wrapper is
    ``<|START_OF_IMG|>``, ``TILE_GLOBAL`` and ``<|END_OF_IMG|>`` (the text-only prompt has no placeholder).
    """
    text = np.array(_inputs(aya_vision_processor, aya_vision_geometry)["input_ids"]).shape[1]
    wrappers = {
        np.array(_inputs(aya_vision_processor, aya_vision_geometry, size)["input_ids"]).shape[1]
        - text
        - aya_vision_geometry.prompt_tokens(*aya_vision_geometry.snap(*size))
        for size in SIZES
    }
    assert wrappers == {3}


def test_shrinking_a_square_gives_fewer_tiles(aya_vision_geometry):
    """Square grids tie on aspect ratio, so a smaller square image gets fewer tiles (3x3, 2x2, 1)."""
    tokens = [aya_vision_geometry.layout(side, side).tokens for side in (1200, 700, 400)]
    assert tokens == [10 * 169, 5 * 169, 169]


def test_greedy_generate_gives_text(aya_vision_dir):
    """The tiny checkpoint loads and generates from an image."""
    import mlx_vlm

    model, processor = mlx_vlm.load(str(aya_vision_dir))
    image = Image.new("RGB", (200, 150), (200, 40, 40))
    result = mlx_vlm.generate(model, processor, _prompt(processor, 1), image=[image], max_tokens=8, temperature=0)
    assert result.text
