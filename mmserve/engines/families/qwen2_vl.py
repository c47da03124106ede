"""Qwen2-VL and Qwen2.5-VL: the tower takes the patches and their grid, and returns the merged features."""

from __future__ import annotations

MODEL_TYPES = ("qwen2_vl", "qwen2_5_vl")


def encode(model, pixel_values, extra: dict):
    tower = model.vision_tower
    dtype = tower.patch_embed.proj.weight.dtype
    return tower(pixel_values.astype(dtype), extra.get("image_grid_thw"), output_hidden_states=False)
