"""Qwen3-VL: the tower returns the merged features and "deepstack" features of three layers.

mlx-vlm drops the deepstack features when ``cached_image_features`` is given (it sets
them to None), so the answer would differ from direct generation. ``encode`` packs
both into one array, the features then each deepstack layer side by side on the last
axis (one row per image token, so it caches, casts and counts like any feature
array); ``after_load`` wraps the model's ``get_input_embeddings`` so that a packed
array is split again and the deepstack features are put back where mlx-vlm's own
path puts them. Features of another width are passed through untouched.
"""

from __future__ import annotations

import mlx.core as mx

MODEL_TYPES = ("qwen3_vl",)


def encode(model, pixel_values, extra: dict):
    tower = model.vision_tower
    features, deepstack = tower(pixel_values.astype(tower.patch_embed.proj.weight.dtype), extra.get("image_grid_thw"))
    return mx.concatenate([features, *deepstack], axis=-1)


def after_load(model, processor) -> None:
    width = model.config.text_config.hidden_size
    layers = len(model.config.vision_config.deepstack_visual_indexes)
    embed = model.get_input_embeddings

    def get_input_embeddings(input_ids=None, pixel_values=None, **kwargs):
        packed = kwargs.get("cached_image_features")
        if packed is None or layers == 0 or packed.shape[-1] != width * (1 + layers):
            return embed(input_ids, pixel_values, **kwargs)
        features, *deepstack = mx.split(packed, 1 + layers, axis=-1)
        result = embed(input_ids, pixel_values, **{**kwargs, "cached_image_features": features})
        result.deepstack_visual_embeds = deepstack
        return result

    model.get_input_embeddings = get_input_embeddings
