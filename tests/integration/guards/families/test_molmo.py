"""Molmo's geometry (guards.families.molmo) against mlx-vlm's real processor on a tiny checkpoint."""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image

from guards.families import Checkpoint, geometry_for
from mmserve.synth.families import molmo

SIZES = [(200, 150), (1024, 768), (2550, 3300), (2000, 120), (30, 30), (500, 500)]
FILES = {"config": "config.json", "preprocessor": "preprocessor_config.json"}


@pytest.fixture(scope="module")
def molmo_dir(tmp_path_factory):
    directory = tmp_path_factory.mktemp("molmo")
    molmo.FAMILY.write(directory, 0)
    return directory


@pytest.fixture(scope="module")
def molmo_processor(molmo_dir):
    import mlx_vlm.models.molmo  # noqa: F401  (registers mlx-vlm's processor; else AutoProcessor gives a tokenizer)
    from mlx_vlm.utils import load_processor

    return load_processor(molmo_dir)


@pytest.fixture(scope="module")
def molmo_geometry(molmo_dir):
    return geometry_for(Checkpoint(**{k: json.loads((molmo_dir / v).read_text()) for k, v in FILES.items()}))


def _prompt(processor, images: int) -> str:
    from mlx_vlm.prompt_utils import apply_chat_template

    return apply_chat_template(processor, {"model_type": "molmo"}, "Describe the picture.", num_images=images)


def _inputs(processor, geometry, size=None):
    from mlx_vlm.utils import prepare_inputs

    if size is None:
        return prepare_inputs(processor, prompts=_prompt(processor, 0))
    sent = geometry.snap(*size)
    image = Image.new("RGB", sent, (90, 140, 200))
    return prepare_inputs(processor, images=[image], prompts=_prompt(processor, 1), **geometry.processor_kwargs(*sent))


@pytest.mark.parametrize("size", SIZES)
def test_tokens_equal_the_processors_count(molmo_processor, molmo_geometry, size):
    """The predicted image tokens equal the image_token_id positions the processor writes."""
    ids = np.array(_inputs(molmo_processor, molmo_geometry, size)["input_ids"])
    assert molmo_geometry.layout(*molmo_geometry.snap(*size)).tokens == int((ids == molmo.VOCAB["<im_patch>"]).sum())


@pytest.mark.parametrize("size", SIZES)
def test_views_equal_pixel_values(molmo_processor, molmo_geometry, size):
    """The crops plus the global view the layout counts are the 336-px views in pixel_values."""
    pixels = _inputs(molmo_processor, molmo_geometry, size)["pixel_values"]
    assert molmo_geometry.layout(*size).patches == pixels.shape[0] * pixels.shape[1] == pixels.shape[0] * 576


def test_wrapper_is_constant(molmo_processor, molmo_geometry):
    """Prompt length is text + image tokens + a constant wrapper at every size.

    The processor prepends the image to the prompt's tokens (the template has no
    placeholder); ``<im_col>`` row ends are the extra tokens, and the wrapper is the
    ``<im_start>`` / ``<im_end>`` pairs around the global view and the crops.
    """
    text = np.array(_inputs(molmo_processor, molmo_geometry)["input_ids"]).shape[1]
    wrappers = {
        np.array(_inputs(molmo_processor, molmo_geometry, size)["input_ids"]).shape[1]
        - text
        - molmo_geometry.prompt_tokens(*molmo_geometry.snap(*size))
        for size in SIZES
    }
    assert wrappers == {4}


def test_shrinking_gives_fewer_crops(molmo_geometry):
    """A photo is 12 crops; at 500x500 it is four, at 336x336 one."""
    assert [molmo_geometry.layout(*size).patches // 576 - 1 for size in ((1024, 768), (500, 500), (336, 336))] == [
        12,
        4,
        1,
    ]


def test_greedy_generate_gives_text(molmo_dir):
    """The tiny checkpoint loads and generates from an image."""
    import mlx_vlm

    model, processor = mlx_vlm.load(str(molmo_dir))
    image = Image.new("RGB", (200, 150), (200, 40, 40))
    result = mlx_vlm.generate(model, processor, _prompt(processor, 1), image=[image], max_tokens=8, temperature=0)
    assert result.text
