"""Idefics2's geometry (guards.families.idefics2) against mlx-vlm's real processor on a tiny checkpoint."""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image

from guards.families import Checkpoint, geometry_for
from mmserve.synth.families import idefics2

SIZES = [(200, 150), (1024, 768), (2550, 3300), (2000, 120), (30, 30)]
FILES = {"config": "config.json", "preprocessor": "preprocessor_config.json", "processor": "processor_config.json"}


@pytest.fixture(scope="module")
def idefics2_dir(tmp_path_factory):
    directory = tmp_path_factory.mktemp("idefics2")
    idefics2.FAMILY.write(directory, 0)
    return directory


@pytest.fixture(scope="module")
def idefics2_processor(idefics2_dir):
    from mlx_vlm.utils import load_processor

    return load_processor(idefics2_dir)


@pytest.fixture(scope="module")
def idefics2_geometry(idefics2_dir):
    return geometry_for(Checkpoint(**{k: json.loads((idefics2_dir / v).read_text()) for k, v in FILES.items()}))


def _prompt(processor, images: int) -> str:
    from mlx_vlm.prompt_utils import apply_chat_template

    return apply_chat_template(processor, {"model_type": "idefics2"}, "Describe the picture.", num_images=images)


def _inputs(processor, geometry, size=None):
    from mlx_vlm.utils import prepare_inputs

    if size is None:
        return prepare_inputs(processor, prompts=_prompt(processor, 0))
    sent = geometry.snap(*size)
    image = Image.new("RGB", sent, (90, 140, 200))
    return prepare_inputs(processor, images=[image], prompts=_prompt(processor, 1), **geometry.processor_kwargs(*sent))


@pytest.mark.parametrize("size", SIZES)
def test_tokens_equal_the_processors_count(idefics2_processor, idefics2_geometry, size):
    """The predicted image tokens equal the image_token_id positions the processor writes."""
    ids = np.array(_inputs(idefics2_processor, idefics2_geometry, size)["input_ids"])
    assert idefics2_geometry.layout(*idefics2_geometry.snap(*size)).tokens == int(
        (ids == idefics2.VOCAB["<image>"]).sum()
    )


@pytest.mark.parametrize("size", SIZES)
def test_size_equals_pixel_values(idefics2_processor, idefics2_geometry, size):
    """Five views; the padded views' side and the patch count match the processor's pixel_values."""
    inputs = _inputs(idefics2_processor, idefics2_geometry, size)
    sent = idefics2_geometry.snap(*size)
    layout = idefics2_geometry.layout(*sent)
    _, views, _, height, width = inputs["pixel_values"].shape
    assert views == 5
    assert layout.patches == views * (height // 14) * (width // 14)
    whole = np.array(inputs["pixel_attention_mask"])[0, -1]
    assert layout.size == (int(whole.any(axis=0).sum()), int(whole.any(axis=1).sum()))


def test_wrapper_is_constant(idefics2_processor, idefics2_geometry):
    """Prompt length is text + image tokens + a constant wrapper at every size.

    The wrapper is the six ``<fake_token_around_image>`` around and between the five views,
    less the ``<image>`` placeholder they replace.
    """
    text = np.array(_inputs(idefics2_processor, idefics2_geometry)["input_ids"]).shape[1]
    wrappers = {
        np.array(_inputs(idefics2_processor, idefics2_geometry, size)["input_ids"]).shape[1]
        - text
        - idefics2_geometry.layout(*idefics2_geometry.snap(*size)).tokens
        for size in SIZES
    }
    assert len(wrappers) == 1


def test_shrinking_gives_fewer_patches_not_tokens(idefics2_geometry):
    """Tokens are fixed per view; a smaller image only saves encoder patches, down to 378-px views."""
    big, small = idefics2_geometry.layout(1960, 1960), idefics2_geometry.layout(800, 800)
    assert big.tokens == small.tokens == 320
    assert small.patches < big.patches


def test_greedy_generate_gives_text(idefics2_dir):
    """The tiny checkpoint loads and generates from an image."""
    import mlx_vlm

    model, processor = mlx_vlm.load(str(idefics2_dir))
    image = Image.new("RGB", (200, 150), (200, 40, 40))
    result = mlx_vlm.generate(model, processor, _prompt(processor, 1), image=[image], max_tokens=8, temperature=0)
    assert result.text
