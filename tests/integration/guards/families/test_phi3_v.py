"""Phi-3.5-vision's geometry (guards.families.phi3_v) against mlx-vlm's real processor on a tiny checkpoint."""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image

from guards.families import Checkpoint, geometry_for
from mmserve.synth.families import phi3_v

SIZES = [(200, 150), (1024, 768), (2550, 3300), (2000, 120), (120, 2000), (336, 336)]


@pytest.fixture(scope="module")
def phi3_v_dir(tmp_path_factory):
    directory = tmp_path_factory.mktemp("phi3_v")
    phi3_v.FAMILY.write(directory, 0)
    return directory


@pytest.fixture(scope="module")
def phi3_v_processor(phi3_v_dir):
    from mlx_vlm.utils import load_processor

    return load_processor(phi3_v_dir)


@pytest.fixture(scope="module")
def phi3_v_geometry(phi3_v_dir):
    files = {"config": "config.json", "preprocessor": "preprocessor_config.json"}
    return geometry_for(Checkpoint(**{k: json.loads((phi3_v_dir / v).read_text()) for k, v in files.items()}))


def _prompt(processor, images: int) -> str:
    from mlx_vlm.prompt_utils import apply_chat_template

    return apply_chat_template(processor, {"model_type": "phi3_v"}, "Describe the picture.", num_images=images)


def _inputs(processor, geometry, size):
    from mlx_vlm.utils import prepare_inputs

    sent = geometry.snap(*size)
    image = Image.new("RGB", sent, (90, 140, 200))
    return prepare_inputs(processor, images=[image], prompts=_prompt(processor, 1), **geometry.processor_kwargs(*sent))


@pytest.mark.parametrize("size", SIZES)
def test_tokens_equal_the_processors_count(phi3_v_processor, phi3_v_geometry, size):
    """The predicted image tokens equal the negative-id positions the processor writes."""
    ids = np.array(_inputs(phi3_v_processor, phi3_v_geometry, size)["input_ids"])
    assert phi3_v_geometry.layout(*phi3_v_geometry.snap(*size)).tokens == int((ids < 0).sum())


@pytest.mark.parametrize("size", SIZES)
def test_size_equals_the_tiled_pixels(phi3_v_processor, phi3_v_geometry, size):
    """The layout's size is the HD grid the processor cut: tiles plus one global view, sizes reported."""
    inputs = _inputs(phi3_v_processor, phi3_v_geometry, size)
    layout = phi3_v_geometry.layout(*size)
    height, width = np.array(inputs["image_sizes"])[0].tolist()
    assert layout.size == (width, height)
    tiles = (width // 336) * (height // 336) + 1
    assert inputs["pixel_values"].shape[1] == tiles
    assert layout.patches == tiles * 24 * 24


def test_wrapper_is_constant(phi3_v_processor, phi3_v_geometry):
    """Prompt length is text + image tokens + one wrapper constant at every size.

    The constant is the BOS the processor adds to the first text chunk, less the merges the
    split at ``<|image_1|>`` breaks in the text around it (-1 with the synth tokenizer).
    """
    text = len(_inputs_text(phi3_v_processor))
    wrappers = set()
    for size in SIZES:
        ids = np.array(_inputs(phi3_v_processor, phi3_v_geometry, size)["input_ids"])[0]
        layout = phi3_v_geometry.layout(*size)
        wrappers.add(len(ids) - text - layout.tokens - layout.extra_tokens)
    assert len(wrappers) == 1


def _inputs_text(processor):
    from mlx_vlm.utils import prepare_inputs

    return np.array(prepare_inputs(processor, prompts=_prompt(processor, 0))["input_ids"])[0]


def test_shrinking_buys_nothing(phi3_v_geometry):
    """A fixed tile budget: the same aspect ratio gives the same tokens at any size."""
    assert not phi3_v_geometry.resizable
    assert phi3_v_geometry.layout(400, 300).tokens == phi3_v_geometry.layout(4000, 3000).tokens


@pytest.mark.slow
def test_greedy_generate_gives_text(phi3_v_dir):
    """The tiny checkpoint loads (at its two-layer tower) and generates from an image; the 1024-wide tower is slow on CPU."""
    import mlx_vlm

    from mmserve.engines.families.phi3_v import before_load

    with before_load(json.loads((phi3_v_dir / "config.json").read_text())):
        model, processor = mlx_vlm.load(str(phi3_v_dir))
    image = Image.new("RGB", (200, 150), (200, 40, 40))
    result = mlx_vlm.generate(model, processor, _prompt(processor, 1), image=[image], max_tokens=8, temperature=0)
    assert result.text
