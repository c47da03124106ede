"""Gemma 3n: a MobileNet-v5 tower at 768 px, 256 soft tokens per image, merged by token id.

``get_input_embeddings`` embeds the soft-token ids through ``embed_vision`` and then
overwrites the ``image_token_id`` positions with the tower's features, which it takes
from ``cached_image_features`` when given: ``encode`` is the same static
``get_image_features`` call (tower, reshape to 256 tokens, ``embed_vision``).

mlx-vlm 0.7.10 builds the tower from a fixed block list (``gemma3n_mobilenet_def``,
the 300M MobileNet-v5) whatever config.json says. The tiny synth checkpoints name
``vision_config.architecture = "mobilenetv5_tiny_enc"``: one narrow block per stage,
and a fusion adapter that takes their channels but still gives the real 2048-wide
features (so ``embed_vision`` and the 256 soft tokens are the real ones);
``before_load(config)`` builds that tower for them, and changes nothing for a real
checkpoint (``mobilenetv5_300m_enc``).
"""

from __future__ import annotations

import contextlib

MODEL_TYPES = ("gemma3n",)
TINY_TOWER = "mobilenetv5_tiny_enc"


# The tiny tower's last two stages, which the fusion adapter takes together.
TINY_STAGES = (64, 128)


def tiny_mobilenet_def():
    """One block of each kind per stage, narrow (32, 64, 64, 128 channels against the real
    128, 256, 640, 1280): on mlx's CPU backend the real widths and the fusion adapter they
    feed took about a minute per 768 px image, in a model whose weights are random anyway."""
    from mlx_vlm.models.gemma3n.vision import _er, _mmqa, _uir

    third, fourth = TINY_STAGES
    return [
        [_er(3, 32, 2, 1.0)],
        [_uir(3, 5, 64, 2, 2.0)],
        [_uir(5, 5, third, 2, 2.0), _mmqa(4, 32, 2), _uir(0, 0, third, 1, 1.0, is_multiscale=True)],
        [_uir(5, 5, fourth, 2, 1.0), _mmqa(4, 32, 1), _uir(0, 0, fourth, 1, 1.0, is_multiscale=True)],
    ]


@contextlib.contextmanager
def tiny_tower():
    """Build Gemma 3n models with ``tiny_mobilenet_def``'s tower inside this block, its
    fusion adapter taking the tiny stages' channels (mlx-vlm writes the real 1920) and
    still giving the real 2048-wide features."""
    from mlx_vlm.models.gemma3n import vision

    real_def, real_adapter = vision.gemma3n_mobilenet_def, vision.MobileNetV5MultiScaleFusionAdapter

    def adapter(in_chs, out_chs, output_resolution, **options):
        return real_adapter([sum(TINY_STAGES)], out_chs, output_resolution, **options)

    vision.gemma3n_mobilenet_def, vision.MobileNetV5MultiScaleFusionAdapter = tiny_mobilenet_def, adapter
    try:
        yield
    finally:
        vision.gemma3n_mobilenet_def, vision.MobileNetV5MultiScaleFusionAdapter = real_def, real_adapter


def before_load(config: dict) -> contextlib.AbstractContextManager:
    """The context to run ``mlx_vlm.load`` in for this checkpoint's ``config.json``."""
    tiny = (config.get("vision_config") or {}).get("architecture") == TINY_TOWER
    return tiny_tower() if tiny else contextlib.nullcontext()


def encode(model, pixel_values, extra: dict):
    """The soft-token features ``get_input_embeddings`` merges (``cached_image_features``)."""
    return model.get_image_features(pixel_values, model.vision_tower, model.config, model.embed_vision)
