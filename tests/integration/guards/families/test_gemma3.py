"""Gemma 3's views (guards.families.gemma3) against mlx-vlm's real processor, with and without pan-and-scan."""

from __future__ import annotations

import dataclasses
import json

import pytest

pytest.importorskip("mlx_vlm")

from mmserve.synth.families import FAMILIES  # noqa: E402

from ._real_processor import SIZES, Served  # noqa: E402

# Pan-and-scan crops of each size with transformers' defaults (256 px, 4 crops, ratio 1.2).
CROPS = {(200, 150): 0, (1024, 768): 2, (2550, 3300): 2, (2000, 120): 0, (2000, 500): 4, (600, 2000): 3}


@pytest.fixture(scope="module")
def gemma3(tmp_path_factory) -> Served:
    return Served.write("gemma3", tmp_path_factory.mktemp("gemma3"))


@pytest.fixture(scope="module")
def gemma3_pan_and_scan(tmp_path_factory) -> Served:
    """The same checkpoint with pan-and-scan switched on in preprocessor_config.json."""
    path = tmp_path_factory.mktemp("gemma3_pas")
    FAMILIES["gemma3"].write(path, 0)
    settings = json.loads((path / "preprocessor_config.json").read_text())
    settings.update(
        do_pan_and_scan=True,
        pan_and_scan_min_crop_size=256,
        pan_and_scan_max_num_crops=4,
        pan_and_scan_min_ratio_to_activate=1.2,
    )
    (path / "preprocessor_config.json").write_text(json.dumps(settings))
    return Served.load(path)


@pytest.mark.parametrize("size", SIZES)
def test_view_is_fixed(gemma3, size):
    """pixel_values is one 896 x 896 view."""
    shape = gemma3.sent(*size)["pixel_values"].shape
    assert shape[-2:] == gemma3.geometry.layout(*size).size[::-1] == (896, 896)


def test_smaller_image_buys_nothing(gemma3):
    """Without pan-and-scan (the real checkpoints) every image is 256 tokens: a smaller one buys nothing."""
    geometry = gemma3.geometry
    assert geometry.resizable is False
    assert geometry.layout(200, 150).tokens == geometry.layout(2550, 3300).tokens == 256


@pytest.mark.parametrize("size", sorted(CROPS))
def test_pan_and_scan_tokens_equal_the_processor(gemma3_pan_and_scan, size):
    """With pan-and-scan each crop adds a 256-token view, as in pixel_values."""
    inputs = gemma3_pan_and_scan.sent(*size)
    layout = gemma3_pan_and_scan.geometry.layout(*size)
    assert layout.tokens == gemma3_pan_and_scan.tokens(inputs) == 256 * (1 + CROPS[size])
    views = inputs["pixel_values"].shape[0]
    assert views == 1 + CROPS[size] and layout.patches == views * 4096


def test_pan_and_scan_prompt_length(gemma3_pan_and_scan):
    """Crop captions and markers: measured at 2 and 3 crops, they predict 4 crops and the page."""
    served = gemma3_pan_and_scan
    text = served.text_only()

    def length(width: int, height: int) -> int:
        return served.length(served.sent(width, height))

    wrapper = length(200, 150) - text - 256
    geometry = served.geometry.with_wrapper(wrapper)
    two = length(1024, 768) - text - 3 * 256 - 3 * wrapper
    three = length(600, 2000) - text - 4 * 256 - 4 * wrapper
    separator = three - two
    geometry = dataclasses.replace(geometry, crop_caption_tokens=two - separator, crop_separator_tokens=separator)
    for size in [(2000, 500), (2550, 3300)]:
        assert length(*size) == text + geometry.prompt_tokens(*size)


def test_pan_and_scan_makes_shrinking_pay(gemma3_pan_and_scan):
    """With pan-and-scan a smaller image can take fewer crops."""
    geometry = gemma3_pan_and_scan.geometry
    assert geometry.resizable and geometry.layout(500, 125).tokens < geometry.layout(2000, 500).tokens
