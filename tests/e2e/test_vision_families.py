"""Vision families other than Qwen served by a real server and asked through the openai SDK.

One family of each kind of geometry: fixed resolution (Gemma 3), anyres tiles with
newline features (LLaVA-NeXT), dynamic patches with row breaks (Pixtral) and upscaled
tiles with markers (SmolVLM). For each, the prompt the guard planned is the prompt the
model ran, token for token.
"""

from __future__ import annotations

import base64
import io

import numpy as np
import openai
import pytest
from PIL import Image

from mmserve.synth.families import FAMILIES
from tests.conftest import start_server, stop_server

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module", params=["gemma3", "llava_next", "pixtral", "smolvlm"])
def family_server(request, models, tmp_path_factory):
    root = tmp_path_factory.mktemp(f"{request.param}-models")
    (root / "text").symlink_to(models / "text")
    (root / "vision").mkdir()
    FAMILIES[request.param].write(root / "vision", 0)
    server = start_server(root, tmp_path_factory.mktemp("logs"), "--max-image-side", "1024")
    yield request.param, server
    stop_server(server)


def _data_uri(width: int, height: int) -> str:
    pixels = np.random.default_rng(width + height).integers(0, 256, size=(height, width, 3), dtype=np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="PNG")
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode()


def _ask(server, width: int, height: int):
    client = openai.OpenAI(base_url=f"{server.base_url}/v1", api_key="none", max_retries=0)
    content = [
        {"type": "image_url", "image_url": {"url": _data_uri(width, height)}},
        {"type": "text", "text": "What does this page say?"},
    ]
    return client.chat.completions.create(
        model="auto", messages=[{"role": "user", "content": content}], max_tokens=4, temperature=0
    )


def test_the_geometry_passes_its_check_at_load(family_server):
    """/admin/status shows the family's geometry checked against the processor and trusted."""
    family, server = family_server
    check = server.status()["guard"]["image_geometry"]
    assert check["ok"] is True and all(row["planned"] == row["real"] for row in check["sizes"])


@pytest.mark.parametrize("size", [(640, 480), (1700, 2200), (1800, 200)])
def test_the_planned_prompt_is_the_prompt_the_model_ran(family_server, size):
    """An image of any shape is answered 200 and the guard's planned prompt tokens equal the real ones."""
    family, server = family_server
    reply = _ask(server, *size)
    report = reply.model_extra["mmserve"]
    assert report["route"] == "vision"
    assert report["prompt_tokens_planned"] == reply.usage.prompt_tokens, report
    (image,) = report["images"]
    assert image["original"] == list(size) and max(image["resized"]) <= max(1024, *size)
