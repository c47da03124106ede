"""The tiny checkpoints' narrower towers are built only for them: a real checkpoint's
config.json loads mlx-vlm's own tower."""

from __future__ import annotations

import contextlib

import pytest

pytest.importorskip("mlx_vlm")

from mmserve.engines.families import gemma3n, phi3_v  # noqa: E402


def test_a_real_phi3_vision_config_builds_the_real_tower():
    from mlx_vlm.models.phi3_v.vision import VisionModel

    assert isinstance(phi3_v.before_load({"model_type": "phi3_v"}), contextlib.nullcontext)
    real = vars(VisionModel.CLIP_VIT_LARGE_PATCH14_336_CONFIG).copy()
    with phi3_v.before_load({"vision_config": {"num_hidden_layers": 1, "intermediate_size": 1024}}):
        inside = VisionModel.CLIP_VIT_LARGE_PATCH14_336_CONFIG
        assert (inside.num_hidden_layers, inside.intermediate_size, inside.hidden_size) == (1, 1024, 1024)
    assert vars(VisionModel.CLIP_VIT_LARGE_PATCH14_336_CONFIG) == real


def test_a_real_gemma3n_config_builds_the_real_tower():
    from mlx_vlm.models.gemma3n import vision

    real = {"vision_config": {"architecture": "mobilenetv5_300m_enc"}}
    assert isinstance(gemma3n.before_load(real), contextlib.nullcontext)
    with gemma3n.before_load({"vision_config": {"architecture": gemma3n.TINY_TOWER}}):
        assert vision.gemma3n_mobilenet_def is gemma3n.tiny_mobilenet_def
    assert vision.gemma3n_mobilenet_def is not gemma3n.tiny_mobilenet_def
