"""The vision engine's prefix-cache salt: the images' content, never the question."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from mmserve.engines import messages
from mmserve.engines.vision import VisionEngine


@pytest.fixture(scope="module")
def engine(models) -> VisionEngine:
    return VisionEngine(str(models / "vision"), max_batch=4, prefix_cache_bytes=64 << 20)


def image(seed: int) -> messages.ImageData:
    pixels = np.random.default_rng(seed).integers(0, 256, size=(56, 84, 3), dtype=np.uint8)
    return messages.ImageData(84, 56, Image.fromarray(pixels).tobytes(), f"sha-{seed}")


def salt(engine: VisionEngine, question: str, *images: messages.ImageData) -> int:
    content = [{"type": "image"} for _ in images] + [{"type": "text", "text": question}]
    request = messages.Generate(
        id=question, messages=[{"role": "user", "content": content}], images=list(images), max_tokens=1
    )
    _, _, prompt_kwargs = engine.prepare(request)
    return prompt_kwargs["_apc_semantic_hash"]


def test_questions_about_one_image_share_a_salt_and_other_images_do_not(engine):
    page = salt(engine, "What is the title?", image(1))
    assert salt(engine, "Who signed it?", image(1)) == page
    assert salt(engine, "What is the title?", image(2)) != page
    assert salt(engine, "What is the title?", image(1), image(2)) != page


def test_text_only_prompts_share_a_salt(engine):
    assert salt(engine, "Hello") == salt(engine, "Something else entirely")


def test_warm_up_runs_text_bursts_and_an_image_to_the_end(engine):
    engine.warm_up([1, 2], image_side=56)
    assert not engine.features
    assert not engine.generator.has_work
