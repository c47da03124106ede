"""LFM2-VL's geometry (guards.families.lfm2_vl) against mlx-vlm's real processor on a tiny checkpoint."""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image

from guards.families import Checkpoint, geometry_for
from mmserve.synth.families import lfm2_vl

SIZES = [(200, 150), (1024, 768), (2550, 3300), (2000, 120), (30, 30), (700, 700), (640, 480)]
FILES = {"config": "config.json", "preprocessor": "preprocessor_config.json", "processor": "processor_config.json"}


@pytest.fixture(scope="module")
def lfm2_vl_dir(tmp_path_factory):
    directory = tmp_path_factory.mktemp("lfm2_vl")
    lfm2_vl.FAMILY.write(directory, 0)
    return directory


@pytest.fixture(scope="module")
def lfm2_vl_processor(lfm2_vl_dir):
    import mlx_vlm.models.lfm2_vl  # noqa: F401  (registers mlx-vlm's processor, which needs no torch)
    from mlx_vlm.utils import load_processor

    return load_processor(lfm2_vl_dir)


@pytest.fixture(scope="module")
def lfm2_vl_geometry(lfm2_vl_dir):
    return geometry_for(Checkpoint(**{k: json.loads((lfm2_vl_dir / v).read_text()) for k, v in FILES.items()}))


def _prompt(processor, images: int) -> str:
    from mlx_vlm.prompt_utils import apply_chat_template

    return apply_chat_template(processor, {"model_type": "lfm2_vl"}, "Describe the picture.", num_images=images)


def _inputs(processor, geometry, size=None):
    from mlx_vlm.utils import prepare_inputs

    if size is None:
        return prepare_inputs(processor, prompts=_prompt(processor, 0))
    sent = geometry.snap(*size)
    image = Image.new("RGB", sent, (90, 140, 200))
    return prepare_inputs(processor, images=[image], prompts=_prompt(processor, 1), **geometry.processor_kwargs(*sent))


@pytest.mark.parametrize("size", SIZES)
def test_tokens_equal_the_processors_count(lfm2_vl_processor, lfm2_vl_geometry, size):
    """The predicted image tokens equal the image_token_id positions the processor writes."""
    ids = np.array(_inputs(lfm2_vl_processor, lfm2_vl_geometry, size)["input_ids"])
    assert lfm2_vl_geometry.layout(*lfm2_vl_geometry.snap(*size)).tokens == int((ids == lfm2_vl.VOCAB["<image>"]).sum())


@pytest.mark.parametrize("size", SIZES)
def test_views_equal_pixel_values(lfm2_vl_processor, lfm2_vl_geometry, size):
    """The views (tiles and thumbnail, or the one view) and its patch grid match the processor's output."""
    inputs = _inputs(lfm2_vl_processor, lfm2_vl_geometry, size)
    sent = lfm2_vl_geometry.snap(*size)
    layout = lfm2_vl_geometry.layout(*sent)
    views, padded, _ = inputs["pixel_values"].shape
    assert layout.patches == views * padded
    rows, columns = np.array(inputs["spatial_shapes"])[-1].tolist()
    assert lfm2_vl_geometry.resize(*sent) == (columns * 16, rows * 16)
    if views == 1:
        assert layout.size == sent == (columns * 16, rows * 16)


def test_snap_is_a_fixed_point(lfm2_vl_geometry):
    """A single view sent at the snapped size is not resized again."""
    for size in SIZES:
        snapped = lfm2_vl_geometry.snap(*size)
        assert lfm2_vl_geometry.snap(*snapped) == snapped


def test_wrapper_is_constant(lfm2_vl_processor, lfm2_vl_geometry):
    """Prompt length is text + image tokens + a constant wrapper at every size.

    Tile and thumbnail markers are the layout's extra tokens; the wrapper is
    ``<|image_start|>`` and ``<|image_end|>`` less the ``<image>`` placeholder they replace.
    """
    text = np.array(_inputs(lfm2_vl_processor, lfm2_vl_geometry)["input_ids"]).shape[1]
    wrappers = {
        np.array(_inputs(lfm2_vl_processor, lfm2_vl_geometry, size)["input_ids"]).shape[1]
        - text
        - lfm2_vl_geometry.prompt_tokens(*lfm2_vl_geometry.snap(*size))
        for size in SIZES
    }
    assert wrappers == {2}


def test_shrinking_drops_the_tiles(lfm2_vl_geometry):
    """A photo is six tiles and a thumbnail; at 640x480 it is one view of at most 256 tokens."""
    assert lfm2_vl_geometry.layout(1024, 768).tokens == 6 * 256 + 234
    assert lfm2_vl_geometry.layout(*lfm2_vl_geometry.snap(640, 480)).tokens <= 256


def test_greedy_generate_gives_text(lfm2_vl_dir):
    """The tiny checkpoint loads and generates from an image."""
    import mlx_vlm

    model, processor = mlx_vlm.load(str(lfm2_vl_dir))
    image = Image.new("RGB", (200, 150), (200, 40, 40))
    result = mlx_vlm.generate(model, processor, _prompt(processor, 1), image=[image], max_tokens=8, temperature=0)
    assert result.text
