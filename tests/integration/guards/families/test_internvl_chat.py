"""InternVL's geometry in guards equals mlx-vlm's real processor on a tiny internvl_chat checkpoint.

The wrapper (the same for every image): ``<img>`` before the tiles' ``<IMG_CONTEXT>``
tokens and ``</img>`` after them; the processor adds nothing that depends on the size.
"""

from __future__ import annotations

import pytest

pytest.importorskip("mlx_vlm")

from mlx_vlm.prompt_utils import apply_chat_template  # noqa: E402

from mmserve.engines.families.internvl_chat import after_load  # noqa: E402
from mmserve.synth.families import internvl_chat  # noqa: E402
from tests.integration.guards.families.probe import SIZES, load, picture, synthesize  # noqa: E402


@pytest.fixture(scope="module")
def internvl_chat_model(tmp_path_factory):
    path = synthesize(internvl_chat.FAMILY, tmp_path_factory)
    loaded = load(path, internvl_chat.VOCAB["<IMG_CONTEXT>"])
    after_load(loaded.model, loaded.processor)  # the image token on the config, as the engine serves it
    loaded.prompt = apply_chat_template(loaded.processor, loaded.model.config, "Describe this.", num_images=1)
    return loaded


@pytest.mark.parametrize(("width", "height"), SIZES + [(300, 300), (1000, 1000)])
def test_tokens_equal_the_processor(internvl_chat_model, width, height):
    """The guard's image tokens equal the <IMG_CONTEXT> ids the processor writes for the image as sent."""
    geometry = internvl_chat_model.geometry
    sent = geometry.snap(width, height)
    real, _, _ = internvl_chat_model.count(picture(*sent), **geometry.processor_kwargs(*sent))
    assert geometry.layout(*sent).tokens == real


def test_prompt_length_is_text_plus_tokens_and_one_wrapper(internvl_chat_model):
    """All prompt ids are the text's plus tokens + a wrapper of 2 (<img>, </img>) at every size."""
    geometry = internvl_chat_model.geometry
    tokenizer = internvl_chat_model.tokenizer()
    # the template's "<image>" is plain text the processor replaces: count the text around it
    text = len(tokenizer(internvl_chat_model.prompt.replace("<image>", "<img></img>"))["input_ids"]) - 2
    wrappers = set()
    for width, height in SIZES:
        _, total, _ = internvl_chat_model.count(picture(width, height))
        layout = geometry.layout(width, height)
        wrappers.add(total - text - layout.tokens - layout.extra_tokens)
    assert wrappers == {2}


def test_tiles_equal_the_pixel_values(internvl_chat_model):
    """Grid tiles plus the thumbnail equal the processor's pixel_values views of 448 px."""
    geometry = internvl_chat_model.geometry
    _, _, inputs = internvl_chat_model.count(picture(1024, 768))
    assert geometry.grid(1024, 768) == (4, 3)
    assert inputs["pixel_values"].shape[1:] == (13, 3, 448, 448)
    assert geometry.layout(1024, 768).size == (4 * 448, 3 * 448)
    assert geometry.layout(1024, 768).patches == 13 * 32 * 32


def test_size_only_breaks_aspect_ties(internvl_chat_model):
    """A square photo gets 2x2 tiles and a thumbnail, the same square shrunk gets one tile; a 4:3 one stays 12+1."""
    geometry = internvl_chat_model.geometry
    assert internvl_chat_model.count(picture(1000, 1000))[0] == 5 * 256 == geometry.layout(1000, 1000).tokens
    assert internvl_chat_model.count(picture(300, 300))[0] == 256 == geometry.layout(300, 300).tokens
    assert geometry.layout(200, 150).tokens == geometry.layout(2000, 1500).tokens == 13 * 256


def test_greedy_generate_gives_text(internvl_chat_model):
    """mlx_vlm.generate on an image runs and returns text."""
    import mlx_vlm

    result = mlx_vlm.generate(
        internvl_chat_model.model, internvl_chat_model.processor, internvl_chat_model.prompt,
        image=[picture(300, 300)], max_tokens=8, temperature=0, verbose=False,
    )  # fmt: skip
    assert result.text
