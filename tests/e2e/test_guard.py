"""The memory guard on a real server with a small budget and adversarial images."""

from __future__ import annotations

import base64
import io

import httpx
import numpy as np
import pytest
from PIL import Image

from tests.conftest import start_server, stop_server

pytestmark = pytest.mark.slow

BUDGET = 600_000_000


def encode(image: Image.Image, fmt: str = "PNG", **save) -> str:
    buffer = io.BytesIO()
    image.save(buffer, format=fmt, **save)
    mime = {"PNG": "png", "JPEG": "jpeg"}[fmt]
    return f"data:image/{mime};base64," + base64.b64encode(buffer.getvalue()).decode()


def pattern(width: int, height: int, seed: int = 0) -> np.ndarray:
    """Smooth structure plus a little noise: compresses well, still a real picture."""
    y, x = np.mgrid[0:height, 0:width]
    rng = np.random.default_rng(seed)
    base = (np.sin(x / 37.0 + seed) + np.cos(y / 23.0)) * 60 + 128
    rgb = np.stack([base, np.roll(base, 50, axis=1), base[::-1]], axis=-1) + rng.normal(0, 4, (height, width, 3))
    return rgb.clip(0, 255).astype(np.uint8)


def exif_rotated_jpeg() -> tuple[str, list[int]]:
    image = Image.fromarray(pattern(2400, 1600, 3))
    exif = image.getexif()
    exif[0x0112] = 6  # stored landscape, shown portrait
    return encode(image, "JPEG", quality=85, exif=exif), [1600, 2400]


def adversarial() -> dict[str, tuple[str, list[int]]]:
    gray16 = (pattern(1600, 1600, 5)[..., 0].astype(np.uint16) * 257).astype(np.uint16)
    rgba = np.dstack([pattern(1600, 1600, 4), np.full((1600, 1600), 128, np.uint8)])
    return {
        "huge square": (encode(Image.fromarray(pattern(4000, 4000)), "JPEG", quality=80), [4000, 4000]),
        "panorama": (encode(Image.fromarray(pattern(4000, 400, 1))), [4000, 400]),
        "strip": (encode(Image.fromarray(pattern(300, 6000, 2))), [300, 6000]),
        "exif rotated": exif_rotated_jpeg(),
        "rgba": (encode(Image.fromarray(rgba, "RGBA")), [1600, 1600]),
        "grayscale": (encode(Image.fromarray(pattern(1600, 1600, 6)[..., 1], "L")), [1600, 1600]),
        "16-bit": (encode(Image.fromarray(gray16)), [1600, 1600]),
    }


@pytest.fixture(scope="module")
def guarded(models, tmp_path_factory):
    """A server whose budget is far below what a 1600 px image needs unshrunk, and a 1792 px start side."""
    srv = start_server(
        models, tmp_path_factory.mktemp("guard-logs"), "--memory-budget", "600MB", "--max-image-side", "1792"
    )
    yield srv
    stop_server(srv)


def ask(server, uri: str, **extra) -> httpx.Response:
    body = {
        "messages": [
            {
                "role": "user",
                "content": [{"type": "image_url", "image_url": {"url": uri}}, {"type": "text", "text": "Read it."}],
            }
        ],
        "max_tokens": 8,
        "temperature": 0,
        **extra,
    }
    return httpx.post(server.base_url + "/v1/chat/completions", json=body, timeout=300)


def test_adversarial_images_are_answered_resized_and_within_budget(guarded):
    """Every adversarial image is answered, reported as resized, each vision worker stays within budget + 10%,
    and all the workers together within the budget at rest."""
    status = guarded.status()
    assert status["guard"]["budget_bytes"] == BUDGET
    full = status["guard"]["calibration"]
    assert full is not None and len(full["samples"]) >= 3
    for name, (uri, upright) in adversarial().items():
        response = ask(guarded, uri)
        assert response.status_code == 200, (name, response.text[:300])
        assert response.headers["x-mmserve-resized"] == "1", name
        report = response.json()["mmserve"]
        image = report["images"][0]
        assert image["original"] == upright, name
        assert image["resized"][0] * image["resized"][1] < upright[0] * upright[1], name
        ratio_in, ratio_out = upright[0] / upright[1], image["resized"][0] / image["resized"][1]
        assert abs(ratio_out - ratio_in) / ratio_in < 0.15 or min(image["resized"]) == 28, name
        assert report["memory"]["planned_peak_bytes"] <= BUDGET, name
    workers = guarded.status()["workers"]
    assert all(w["memory"]["peak_bytes"] <= BUDGET * 1.10 for w in workers if w["engine"] == "vision")
    assert sum(w["memory"]["active_bytes"] for w in workers) <= BUDGET  # every copy of every model, at rest


def test_guard_shrinks_below_the_start_side_when_memory_is_short(guarded):
    """With 600 MB, a 1600 px image is shrunk below the 1792 px start side to what the budget allows."""
    response = ask(guarded, encode(Image.fromarray(pattern(1600, 1600, 9)), "JPEG"))
    image = response.json()["mmserve"]["images"][0]
    assert max(image["resized"]) < 1600
    assert max(image["resized"]) >= 224  # never below the legibility floor


def test_default_tier_caps_image_side(server):
    """Without a budget, the RAM tier's max side (512 px below 24 GB) caps the image."""
    response = ask(server, encode(Image.fromarray(pattern(1000, 800, 4)), "JPEG"))
    image = response.json()["mmserve"]["images"][0]
    assert max(image["resized"]) <= server.status()["guard"]["max_image_side"]


def test_same_page_twice_is_resized_once_and_answers_match(guarded):
    """Asking about the same page twice gives the same greedy answer and the same plan."""
    uri = encode(Image.fromarray(pattern(2000, 2600, 11)), "JPEG")
    first, second = ask(guarded, uri).json(), ask(guarded, uri).json()
    assert first["choices"][0]["message"]["content"] == second["choices"][0]["message"]["content"]
    assert first["mmserve"]["images"] == second["mmserve"]["images"]


def test_prompt_twice_the_context_is_context_length_exceeded(guarded):
    """A prompt of twice the context length is refused with 400 context_length_exceeded."""
    models = httpx.get(guarded.base_url + "/v1/models", timeout=10).json()["data"]
    context = next(m["context_length"] for m in models if m.get("engine") == "text")
    body = {"messages": [{"role": "user", "content": "hello " * (2 * context)}], "max_tokens": 4}
    response = httpx.post(guarded.base_url + "/v1/chat/completions", json=body, timeout=60)
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "context_length_exceeded"


def test_ten_million_max_tokens_is_clamped(guarded):
    """max_tokens=10_000_000 is clamped (not refused) and the clamp is reported."""
    body = {"messages": [{"role": "user", "content": "hi"}], "max_tokens": 10_000_000, "stop": [" ", "e", "a"]}
    response = httpx.post(guarded.base_url + "/v1/chat/completions", json=body, timeout=120)
    assert response.status_code == 200
    report = response.json()["mmserve"]
    assert report["max_tokens_clamped_from"] == 10_000_000


def test_admin_status_reports_guard_and_worker_memory(guarded):
    """/admin/status shows the tier, budget, calibration and each worker's memory."""
    status = guarded.status()
    for key in ("tier", "total_bytes", "available_bytes", "budget_bytes", "calibration"):
        assert key in status["guard"]
    engines = {w["engine"]: w for w in status["workers"]}
    assert set(engines) == {"text", "vision"}
    for worker in engines.values():
        assert worker["pid"] and worker["state"] == "ready"
        assert worker["memory"]["active_bytes"] > 0
        assert worker["memory"]["budget_bytes"] == BUDGET
