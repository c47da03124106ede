"""Phi-3 / Phi-3.5-vision: image positions are negative ids; the tower writes them in place.

``get_input_embeddings`` finds the positions with ``input_ids < 0`` and has the tower
(CLIP ViT-L/14-336 over the global view and the HD tiles, 2x2 merge, learnt row and
global separators, a two-layer projection) overwrite them. There is no ``encode``: mlx-vlm 0.7.10's
``cached_image_features`` path is wrong for this family (it walks each ``[batch,
position]`` pair as if it were a list of positions, so it writes feature 0 at position
0 and feature 1 at every image position); ``tower_features`` is the tower call a fixed
path would cache (the tower on zero text embeddings, read back at the image positions).

mlx-vlm 0.7.10 builds the tower from a fixed description (24 layers, MLPs 4096 wide)
whatever config.json says; ``tower_shape`` builds it at the depth and MLP width
config.json's ``vision_config`` gives (``num_hidden_layers``, ``intermediate_size``: the
tiny synth checkpoints have 1 and 1024), so ``before_load(config)`` must run before
``mlx_vlm.load`` for those.
"""

from __future__ import annotations

import contextlib

MODEL_TYPES = ("phi3_v",)
REAL_TOWER = {"num_hidden_layers": 24, "intermediate_size": 4096}


@contextlib.contextmanager
def tower_shape(**shape):
    """Build Phi-3-vision models with a CLIP tower of this depth and MLP width
    (``num_hidden_layers``, ``intermediate_size``) inside this block."""
    from mlx_vlm.models.phi3_v.vision import VisionModel

    fixed = VisionModel.CLIP_VIT_LARGE_PATCH14_336_CONFIG
    VisionModel.CLIP_VIT_LARGE_PATCH14_336_CONFIG = type(fixed)(**{**vars(fixed), **shape})
    try:
        yield
    finally:
        VisionModel.CLIP_VIT_LARGE_PATCH14_336_CONFIG = fixed


def before_load(config: dict) -> contextlib.AbstractContextManager:
    """The context to run ``mlx_vlm.load`` in for this checkpoint's ``config.json``."""
    given = config.get("vision_config") or {}
    shape = {key: int(given.get(key, real)) for key, real in REAL_TOWER.items()}
    return tower_shape(**shape) if shape != REAL_TOWER else contextlib.nullcontext()


def tower_features(model, pixel_values, extra: dict):
    """The features the tower writes at the image positions, in order (``extra`` holds ``input_ids``)."""
    import mlx.core as mx
    import numpy as np

    input_ids = extra["input_ids"]
    positions = np.argwhere(np.array(input_ids) < 0).tolist()
    embed = model.model.embed_tokens.weight
    blank = mx.zeros((*input_ids.shape, embed.shape[-1]), dtype=embed.dtype)
    out = model.model.vision_embed_tokens(pixel_values.astype(embed.dtype), blank, extra.get("image_sizes"), positions)
    rows = mx.array([p[1] for p in positions])
    return out[0, rows]
