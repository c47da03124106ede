"""Every vision family mmserve synthesizes, served by the vision engine as mlx-vlm serves it.

For each family's tiny checkpoint: the engine loads it, the guard's geometry passes
the load-time check against the real processor, the tokens the guard plans for an
image are the processor's, and greedy text through the engine equals
``mlx_vlm.generate`` on the same resized image.
"""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

import guards
from mmserve.engines import messages
from mmserve.engines.families import UnservedFamilyError, adapter_for
from mmserve.synth.families import FAMILIES


def _refused(name: str) -> bool:
    return adapter_for(name).refuse is not None


SERVED = sorted(name for name, family in FAMILIES.items() if family.kind == "vision" and not _refused(name))
REFUSED = sorted(name for name, family in FAMILIES.items() if family.kind == "vision" and _refused(name))
MAX_SIDE = 768


@pytest.fixture(scope="module", params=SERVED)
def engine(request, tmp_path_factory):
    from mmserve.engines.vision import VisionEngine

    directory = tmp_path_factory.mktemp(request.param)
    FAMILIES[request.param].write(directory, 0)
    engine = VisionEngine(str(directory), prefix_cache_bytes=32 << 20)
    engine.check_geometry(MAX_SIDE)
    return engine


def _photo(width: int, height: int) -> Image.Image:
    pixels = np.random.default_rng(width * height).integers(0, 256, size=(height, width, 3), dtype=np.uint8)
    return Image.fromarray(pixels)


def _generate(engine, request: messages.Generate) -> list[int]:
    uid = engine.insert(engine.prepare(request)).uid
    tokens = []
    while True:
        for event_uid, token, reason in engine.step():
            if event_uid == uid:
                tokens.append(token)
                if reason is not None:
                    return tokens


def test_geometry_matches_the_processor(engine):
    """The load-time check finds the guard's image geometry equal to the real processor's counts."""
    assert engine.geometry_check["ok"], engine.geometry_check


@pytest.mark.parametrize("size", [(200, 150), (1024, 768), (2550, 3300), (2000, 120), (120, 2000)])
def test_planned_tokens_are_the_processors(engine, size):
    """The image tokens and prompt tokens the guard plans for an image are what the processor makes of it."""
    planned = guards.plan_image(*size, max_side=MAX_SIDE, spec=engine.geometry)
    ((tokens, prompt),) = engine.image_tokens([planned.resized], planned.processor_kwargs)
    assert (planned.tokens, planned.prompt_tokens) == (tokens, prompt)


# DeepSeek-VL2's merged image embeddings differ between processes about one run in three on
# mlx's CPU backend, in mlx_vlm.generate as in the engine (docs/models.md); the cause is not found.
UNSTABLE = {"deepseek_vl_v2"}


def test_greedy_text_equals_mlx_vlm(engine, request):
    """Greedy tokens through the engine equal mlx_vlm.generate's on the image the guard sized."""
    if engine.checkpoint.model_type in UNSTABLE:
        request.applymarker(pytest.mark.xfail(reason="embeddings not repeatable across processes", strict=False))
    from mlx_vlm import generate

    planned = guards.plan_image(640, 480, max_side=MAX_SIDE, spec=engine.geometry)
    image = _photo(640, 480).resize(planned.resized, Image.Resampling.BICUBIC)
    chat = [{"role": "user", "content": [{"type": "image"}, {"type": "text", "text": "What is in the picture?"}]}]
    data = messages.ImageData(image.width, image.height, image.tobytes(), "photo")
    request = messages.Generate(
        id="greedy",
        messages=chat,
        images=[data],
        max_tokens=8,
        sampling=messages.Sampling(temperature=0),
        processor_kwargs=planned.processor_kwargs,
    )
    served = _generate(engine, request)
    direct = generate(
        engine.model,
        engine.processor,
        engine.prompt(chat, 1),
        image=[image],
        max_tokens=8,
        temperature=0.0,
        verbose=False,
        **planned.processor_kwargs,
    )
    assert served == list(direct.token_ids)[: len(served)] and len(served) >= min(8, len(direct.token_ids))


@pytest.mark.parametrize("name", REFUSED)
def test_an_unserved_family_is_refused_at_start_by_name(name, tmp_path):
    """A family mmserve does not serve is refused before loading, with a message naming it."""
    from mmserve.engines.vision import VisionEngine

    FAMILIES[name].write(tmp_path, 0)
    with pytest.raises(UnservedFamilyError, match=f"does not serve the vision family '{name}'"):
        VisionEngine(str(tmp_path))
