"""Llama 3.2 Vision (Mllama)'s geometry (guards.families.mllama) against mlx-vlm's real processor on a tiny checkpoint."""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image

from guards.families import Checkpoint, geometry_for
from mmserve.synth.families import mllama

SIZES = [(200, 150), (1024, 768), (2550, 3300), (2000, 120), (30, 30), (1200, 500)]
FILES = {"config": "config.json", "preprocessor": "preprocessor_config.json"}


@pytest.fixture(scope="module")
def mllama_dir(tmp_path_factory):
    directory = tmp_path_factory.mktemp("mllama")
    mllama.FAMILY.write(directory, 0)
    return directory


@pytest.fixture(scope="module")
def mllama_processor(mllama_dir):
    import mlx_vlm.models.mllama  # noqa: F401  (registers mlx-vlm's processor)
    from mlx_vlm.utils import load_processor

    return load_processor(mllama_dir)


@pytest.fixture(scope="module")
def mllama_geometry(mllama_dir):
    return geometry_for(Checkpoint(**{k: json.loads((mllama_dir / v).read_text()) for k, v in FILES.items()}))


def _prompt(processor, images: int) -> str:
    from mlx_vlm.prompt_utils import apply_chat_template

    return apply_chat_template(processor, {"model_type": "mllama"}, "Describe the picture.", num_images=images)


def _inputs(processor, geometry, size=None):
    from mlx_vlm.utils import prepare_inputs

    if size is None:
        return prepare_inputs(processor, prompts=_prompt(processor, 0))
    sent = geometry.snap(*size)
    image = Image.new("RGB", sent, (90, 140, 200))
    return prepare_inputs(processor, images=[image], prompts=_prompt(processor, 1), **geometry.processor_kwargs(*sent))


@pytest.mark.parametrize("size", SIZES)
def test_tokens_equal_the_processors_count(mllama_processor, mllama_geometry, size):
    """The predicted image tokens equal the image_token_id positions the processor writes."""
    ids = np.array(_inputs(mllama_processor, mllama_geometry, size)["input_ids"])
    assert mllama_geometry.layout(*mllama_geometry.snap(*size)).tokens == int((ids == mllama.VOCAB["<|image|>"]).sum())


@pytest.mark.parametrize("size", SIZES)
def test_tiles_equal_the_aspect_ratio_mask(mllama_processor, mllama_geometry, size):
    """The real tiles are the processor's unmasked tile slots; the encoder runs over all four slots."""
    inputs = _inputs(mllama_processor, mllama_geometry, size)
    assert mllama_geometry.tiles(*size) == int(np.array(inputs["aspect_ratio_mask"]).sum())
    assert mllama_geometry.layout(*size).patches == inputs["pixel_values"].shape[2] * 1601


def test_wrapper_is_constant(mllama_processor, mllama_geometry):
    """Prompt length is text + image tokens + a constant wrapper at every size.

    The one ``<|image|>`` is the image token; the wrapper constant is what the processor's
    own BOS handling changes against the text-only tokenization (-1 here).
    """
    text = np.array(_inputs(mllama_processor, mllama_geometry)["input_ids"]).shape[1]
    wrappers = {
        np.array(_inputs(mllama_processor, mllama_geometry, size)["input_ids"]).shape[1]
        - text
        - mllama_geometry.layout(*mllama_geometry.snap(*size)).tokens
        for size in SIZES
    }
    assert len(wrappers) == 1


def test_shrinking_gives_fewer_tiles_not_tokens(mllama_geometry):
    """One prompt token at any size; a smaller image covers fewer tiles of cross-attention K/V."""
    assert mllama_geometry.layout(1024, 768).tokens == mllama_geometry.layout(400, 300).tokens == 1
    assert (mllama_geometry.tiles(1024, 768), mllama_geometry.tiles(1000, 400), mllama_geometry.tiles(400, 300)) == (
        4,
        2,
        1,
    )


@pytest.mark.slow
def test_greedy_generate_gives_text(mllama_dir):
    """The tiny checkpoint loads and generates from an image in mlx-vlm (four 560-px tile slots: slow on CPU)."""
    import mlx_vlm

    model, processor = mlx_vlm.load(str(mllama_dir))
    image = Image.new("RGB", (200, 150), (200, 40, 40))
    result = mlx_vlm.generate(model, processor, _prompt(processor, 1), image=[image], max_tokens=8, temperature=0)
    assert result.text
