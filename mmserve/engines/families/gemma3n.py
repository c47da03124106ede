"""Gemma 3n: a MobileNet-v5 tower at 768 px, 256 soft tokens per image, merged by token id.

``get_input_embeddings`` embeds the soft-token ids through ``embed_vision`` and then
overwrites the ``image_token_id`` positions with the tower's features, which it takes
from ``cached_image_features`` when given: ``encode`` is the same static
``get_image_features`` call (tower, reshape to 256 tokens, ``embed_vision``).

mlx-vlm 0.7.10 builds the tower from a fixed block list (``gemma3n_mobilenet_def``,
the 300M MobileNet-v5) whatever config.json says. The tiny synth checkpoints name
``vision_config.architecture = "mobilenetv5_tiny_enc"``, one block per stage (same
channels, so the fusion adapter and the 2048-wide output are the real ones);
``before_load(config)`` builds that block list for them, and changes nothing for a
real checkpoint (``mobilenetv5_300m_enc``).
"""

from __future__ import annotations

import contextlib

MODEL_TYPES = ("gemma3n",)
TINY_TOWER = "mobilenetv5_tiny_enc"


def tiny_mobilenet_def():
    """One block of each kind per stage, with the real stages' widths (128, 256, 640, 1280)."""
    from mlx_vlm.models.gemma3n.vision import _er, _mmqa, _uir

    return [
        [_er(3, 128, 2)],
        [_uir(3, 5, 256, 2, 6.0)],
        [_uir(5, 5, 640, 2, 6.0), _mmqa(12, 64, 2), _uir(0, 0, 640, 1, 2.0, is_multiscale=True)],
        [_uir(5, 5, 1280, 2, 6.0), _mmqa(16, 96, 1), _uir(0, 0, 1280, 1, 2.0, is_multiscale=True)],
    ]


@contextlib.contextmanager
def tiny_tower():
    """Build Gemma 3n models with ``tiny_mobilenet_def``'s tower inside this block."""
    from mlx_vlm.models.gemma3n import vision

    real = vision.gemma3n_mobilenet_def
    vision.gemma3n_mobilenet_def = tiny_mobilenet_def
    try:
        yield
    finally:
        vision.gemma3n_mobilenet_def = real


def before_load(config: dict) -> contextlib.AbstractContextManager:
    """The context to run ``mlx_vlm.load`` in for this checkpoint's ``config.json``."""
    tiny = (config.get("vision_config") or {}).get("architecture") == TINY_TOWER
    return tiny_tower() if tiny else contextlib.nullcontext()


def encode(model, pixel_values, extra: dict):
    """The soft-token features ``get_input_embeddings`` merges (``cached_image_features``)."""
    return model.get_image_features(pixel_values, model.vision_tower, model.config, model.embed_vision)
