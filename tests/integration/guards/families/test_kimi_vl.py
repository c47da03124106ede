"""Kimi-VL's geometry (guards.families.kimi_vl) against mlx-vlm's real processor on a tiny checkpoint."""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image

from guards.families import Checkpoint, geometry_for
from mmserve.synth.families import kimi_vl

SIZES = [(200, 150), (1024, 768), (2550, 3300), (2000, 120), (30, 30)]
FILES = {"config": "config.json", "preprocessor": "preprocessor_config.json"}


@pytest.fixture(scope="module")
def kimi_vl_dir(tmp_path_factory):
    directory = tmp_path_factory.mktemp("kimi_vl")
    kimi_vl.FAMILY.write(directory, 0)
    return directory


@pytest.fixture(scope="module")
def kimi_vl_processor(kimi_vl_dir):
    from mlx_vlm.utils import load_processor

    return load_processor(kimi_vl_dir)


@pytest.fixture(scope="module")
def kimi_vl_geometry(kimi_vl_dir):
    return geometry_for(Checkpoint(**{k: json.loads((kimi_vl_dir / v).read_text()) for k, v in FILES.items()}))


def _prompt(processor, images: int) -> str:
    from mlx_vlm.prompt_utils import apply_chat_template

    return apply_chat_template(processor, {"model_type": "kimi_vl"}, "Describe the picture.", num_images=images)


def _inputs(processor, geometry, size=None):
    from mlx_vlm.utils import prepare_inputs

    if size is None:
        return prepare_inputs(processor, prompts=_prompt(processor, 0))
    sent = geometry.snap(*size)
    image = Image.new("RGB", sent, (90, 140, 200))
    return prepare_inputs(processor, images=[image], prompts=_prompt(processor, 1), **geometry.processor_kwargs(*sent))


@pytest.mark.parametrize("size", SIZES)
def test_tokens_equal_the_processors_count(kimi_vl_processor, kimi_vl_geometry, size):
    """The predicted image tokens equal the image_token_id positions the processor writes."""
    ids = np.array(_inputs(kimi_vl_processor, kimi_vl_geometry, size)["input_ids"])
    assert kimi_vl_geometry.layout(*kimi_vl_geometry.snap(*size)).tokens == int(
        (ids == kimi_vl.VOCAB["<|media_pad|>"]).sum()
    )


@pytest.mark.parametrize("size", SIZES)
def test_size_equals_the_patch_grid(kimi_vl_processor, kimi_vl_geometry, size):
    """The layout's size and patches are the patch grid the processor reports for the image sent."""
    inputs = _inputs(kimi_vl_processor, kimi_vl_geometry, size)
    rows, columns = np.array(inputs["image_grid_hws"])[0].tolist()
    layout = kimi_vl_geometry.layout(*kimi_vl_geometry.snap(*size))
    assert layout.size == (columns * 14, rows * 14)
    assert layout.patches == rows * columns == inputs["pixel_values"].shape[0]


def test_snap_is_a_fixed_point(kimi_vl_geometry):
    """An image sent at the snapped size is not resized or cropped again."""
    for size in SIZES:
        snapped = kimi_vl_geometry.snap(*size)
        assert kimi_vl_geometry.snap(*snapped) == snapped


def test_wrapper_is_constant(kimi_vl_processor, kimi_vl_geometry):
    """Prompt length is text + image tokens + a constant wrapper at every size.

    The wrapper is the template's ``<|media_start|>image<|media_content|>`` and
    ``<|media_end|>`` around the ``<|media_pad|>`` run.
    """
    text = np.array(_inputs(kimi_vl_processor, kimi_vl_geometry)["input_ids"]).shape[1]
    wrappers = {
        np.array(_inputs(kimi_vl_processor, kimi_vl_geometry, size)["input_ids"]).shape[1]
        - text
        - kimi_vl_geometry.layout(*kimi_vl_geometry.snap(*size)).tokens
        for size in SIZES
    }
    assert len(wrappers) == 1


def test_shrinking_gives_fewer_tokens(kimi_vl_geometry):
    """A dynamic-patch family: half the sides, about a quarter of the tokens."""
    assert kimi_vl_geometry.resizable
    assert kimi_vl_geometry.layout(448, 336).tokens == 4 * kimi_vl_geometry.layout(224, 168).tokens


def test_greedy_generate_gives_text(kimi_vl_dir):
    """The tiny checkpoint loads and generates from an image."""
    import mlx_vlm

    model, processor = mlx_vlm.load(str(kimi_vl_dir))
    image = Image.new("RGB", (200, 150), (200, 40, 40))
    result = mlx_vlm.generate(model, processor, _prompt(processor, 1), image=[image], max_tokens=8, temperature=0)
    assert result.text
