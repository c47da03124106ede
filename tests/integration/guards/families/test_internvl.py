"""InternVL's geometry in guards equals mlx-vlm's real processor on a tiny transformers-format (internvl) checkpoint.

The wrapper (the same for every image): ``<img>`` before the tiles' ``<IMG_CONTEXT>``
tokens and ``</img>`` after them; the template's one ``<IMG_CONTEXT>`` placeholder is
replaced by them.
"""

from __future__ import annotations

import pytest

pytest.importorskip("mlx_vlm")

from mmserve.engines.families.internvl import after_load  # noqa: E402
from mmserve.synth.families import internvl  # noqa: E402
from tests.integration.guards.families.probe import SIZES, load, picture, synthesize  # noqa: E402


@pytest.fixture(scope="module")
def internvl_model(tmp_path_factory):
    path = synthesize(internvl.FAMILY, tmp_path_factory)
    loaded = load(path, internvl.VOCAB["<IMG_CONTEXT>"])
    after_load(loaded.model, loaded.processor)
    return loaded


@pytest.mark.parametrize(("width", "height"), SIZES + [(300, 300), (1000, 1000)])
def test_tokens_equal_the_processor(internvl_model, width, height):
    """The guard's image tokens equal the <IMG_CONTEXT> ids the processor writes for the image as sent."""
    geometry = internvl_model.geometry
    sent = geometry.snap(width, height)
    real, _, _ = internvl_model.count(picture(*sent), **geometry.processor_kwargs(*sent))
    assert geometry.layout(*sent).tokens == real


def test_prompt_length_is_text_plus_tokens_and_one_wrapper(internvl_model):
    """All prompt ids are the text's plus tokens + a wrapper of 2 (<img>, </img>) at every size."""
    geometry = internvl_model.geometry
    text = internvl_model.text_only("<IMG_CONTEXT>")
    wrappers = set()
    for width, height in SIZES:
        _, total, _ = internvl_model.count(picture(width, height))
        layout = geometry.layout(width, height)
        wrappers.add(total - text - layout.tokens - layout.extra_tokens)
    assert wrappers == {2}


def test_tiles_equal_the_pixel_values(internvl_model):
    """Grid tiles plus the thumbnail equal the processor's pixel_values views of 448 px."""
    _, _, inputs = internvl_model.count(picture(2000, 120))
    cols, rows = internvl_model.geometry.grid(2000, 120)
    assert inputs["pixel_values"].shape[1:] == (cols * rows + 1, 3, 448, 448)


def test_greedy_generate_gives_text(internvl_model):
    """mlx_vlm.generate on an image runs and returns text once after_load has set eos_token_id."""
    import mlx_vlm

    result = mlx_vlm.generate(
        internvl_model.model, internvl_model.processor, internvl_model.prompt,
        image=[picture(300, 300)], max_tokens=8, temperature=0, verbose=False,
    )  # fmt: skip
    assert result.text
