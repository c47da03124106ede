"""Gemma 3's geometry equals mlx-vlm's real processor on a tiny gemma-3-4b-it-shaped checkpoint.

The constant wrapper around each view is ``\\n\\n<start_of_image>`` ... ``<end_of_image>\\n\\n``.
"""

from __future__ import annotations

import dataclasses
import json

import pytest

pytest.importorskip("mlx_vlm")

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
    Served.write("gemma3", path)
    settings = json.loads((path / "preprocessor_config.json").read_text())
    settings.update(
        do_pan_and_scan=True,
        pan_and_scan_min_crop_size=256,
        pan_and_scan_max_num_crops=4,
        pan_and_scan_min_ratio_to_activate=1.2,
    )
    (path / "preprocessor_config.json").write_text(json.dumps(settings))
    return Served.load(path, "gemma3")


@pytest.mark.parametrize("size", SIZES)
def test_tokens_equal_the_processor(gemma3, size):
    """Every image becomes 256 image tokens."""
    real, _, _ = gemma3.counts(*size)
    assert gemma3.geometry().layout(*size).tokens == real == 256


@pytest.mark.parametrize("size", SIZES)
def test_view_is_fixed(gemma3, size):
    """pixel_values is one 896 x 896 view."""
    _, _, shape = gemma3.counts(*size)
    assert shape[-2:] == gemma3.geometry().layout(*size).size[::-1] == (896, 896)


def test_wrapper_is_constant(gemma3):
    """Beyond its 256 tokens an image adds the same wrapper at every size."""
    assert {gemma3.wrapper(*size) for size in SIZES} == {gemma3.wrapper(*SIZES[0])}


def test_smaller_image_buys_nothing(gemma3):
    """Without pan-and-scan (the real checkpoints) a smaller image buys nothing."""
    assert gemma3.geometry().resizable is False


@pytest.mark.parametrize("size", sorted(CROPS))
def test_pan_and_scan_tokens_equal_the_processor(gemma3_pan_and_scan, size):
    """With pan-and-scan each crop adds a 256-token view, as in pixel_values."""
    real, _, shape = gemma3_pan_and_scan.counts(*size)
    layout = gemma3_pan_and_scan.geometry().layout(*size)
    assert layout.tokens == real == 256 * (1 + CROPS[size])
    assert shape[0] == 1 + CROPS[size] and layout.patches == shape[0] * 4096


def test_pan_and_scan_prompt_length(gemma3_pan_and_scan):
    """Crop captions and markers: measured at 2 and 3 crops, they predict 4 crops and the page."""
    served = gemma3_pan_and_scan
    text = served.text_only()
    wrapper = served.counts(200, 150)[1] - text - 256
    geometry = served.geometry().with_wrapper(wrapper)
    two = served.counts(1024, 768)[1] - text - 3 * 256 - 3 * wrapper
    three = served.counts(600, 2000)[1] - text - 4 * 256 - 4 * wrapper
    separator = three - two
    geometry = dataclasses.replace(geometry, crop_caption_tokens=two - separator, crop_separator_tokens=separator)
    for size in [(2000, 500), (2550, 3300)]:
        assert served.counts(*size)[1] == text + geometry.prompt_tokens(*size)


def test_pan_and_scan_makes_shrinking_pay(gemma3_pan_and_scan):
    """With pan-and-scan a smaller image can take fewer crops."""
    geometry = gemma3_pan_and_scan.geometry()
    assert geometry.resizable and geometry.layout(500, 125).tokens < geometry.layout(2000, 500).tokens


def test_greedy_generation_gives_text(gemma3):
    """mlx_vlm.generate runs and gives text."""
    assert gemma3.generate(640, 480)
