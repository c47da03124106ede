"""The server's greedy answer equals what mlx-lm / mlx-vlm give when called directly."""

from __future__ import annotations

import base64
import io

import numpy as np
import openai
import pytest
from PIL import Image

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def client(server) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{server.base_url}/v1", api_key="unused", max_retries=0, timeout=120)


def test_text_equals_mlx_lm_direct(client, models):
    """Temperature 0 through the server gives mlx_lm.generate's text token for token."""
    from mlx_lm import generate, load

    messages = [{"role": "system", "content": "You are terse."}, {"role": "user", "content": "Name three rivers."}]
    model, tokenizer = load(str(models / "text"))
    prompt = tokenizer.apply_chat_template(messages, add_generation_prompt=True)
    expected = generate(model, tokenizer, prompt, max_tokens=32)
    served = client.chat.completions.create(model="auto", messages=messages, max_tokens=32, temperature=0)
    assert served.choices[0].message.content == expected
    assert served.usage.prompt_tokens == len(prompt)


def test_image_equals_mlx_vlm_direct_cold_and_warm(client, models):
    """With an image, temperature 0 gives mlx_vlm.generate's text — also when the page is asked
    again with another question (vision feature and prefix caches warm). Replies are streamed
    with mlx-lm's detokenizer, as text-only ones are, which drops a reply's leading space."""
    from mlx_vlm import generate, load
    from mlx_vlm.prompt_utils import apply_chat_template

    pixels = np.random.default_rng(7).integers(0, 255, size=(280, 336, 3), dtype=np.uint8)
    image = Image.fromarray(pixels)
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    uri = "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode()
    model, processor = load(str(models / "vision"))

    for question in ("Describe it.", "What colours are in it?", "Describe it."):
        chat = [{"role": "user", "content": [{"type": "image"}, {"type": "text", "text": question}]}]
        prompt = apply_chat_template(processor, model.config, chat, num_images=1)
        expected = generate(model, processor, prompt, image=[image], max_tokens=32, temperature=0.0).text
        served = client.chat.completions.create(
            model="auto",
            messages=[
                {
                    "role": "user",
                    "content": [{"type": "image_url", "image_url": {"url": uri}}, {"type": "text", "text": question}],
                }
            ],
            max_tokens=32,
            temperature=0,
        )
        assert served.model_extra["mmserve"]["images"][0]["resized"] == [336, 280]
        assert served.choices[0].message.content == expected.removeprefix(" "), question
