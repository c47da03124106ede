"""Idefics3 and SmolVLM: the SigLIP tower over the non-empty views, then the pixel-shuffle connector.

``get_input_embeddings`` drops all-zero (padding) views and masks padded patches from
``pixel_attention_mask``; ``encode`` does the same so its features equal the ones the
model would compute. mlx-vlm serves both families itself; its ``LanguageModel`` has
``embed_tokens`` directly (there is no ``language_model.model``).
"""

from __future__ import annotations

MODEL_TYPES = ("idefics3", "smolvlm")


def encode(model, pixel_values, extra: dict):
    import mlx.core as mx
    import numpy as np

    batch, views, channels, height, width = pixel_values.shape
    pixel_values = pixel_values.reshape(batch * views, channels, height, width)
    real = np.where((pixel_values == 0.0).sum(axis=(-1, -2, -3)) != channels * height * width)[0].tolist()
    pixel_values = pixel_values[real, ...]
    mask = extra.get("pixel_attention_mask")
    if mask is None:
        mask = mx.ones((pixel_values.shape[0], height, width), dtype=mx.bool_)
    else:
        mask = mask.reshape(batch * views, height, width)[real]
    patch = model.config.vision_config.patch_size
    rows, cols = height // patch, width // patch
    patches = mask[:, : rows * patch, : cols * patch].reshape(-1, rows, patch, cols, patch)
    patch_mask = patches.transpose(0, 1, 3, 2, 4).sum(axis=(-1, -2)) > 0
    hidden, *_ = model.vision_model(
        pixel_values.transpose(0, 2, 3, 1), patch_attention_mask=patch_mask, output_hidden_states=True
    )
    features = model.connector(hidden.astype(pixel_values.dtype))
    return features.reshape(-1, features.shape[-1])
