"""Idefics2: the SigLIP tower over every real view with its patch mask, then the perceiver connector.

``get_input_embeddings`` flattens the views, drops all-zero (padding) views, builds the
patch mask from ``pixel_attention_mask`` and scatters the connector's 64 latents per
view into the ``<image>`` positions; ``encode`` repeats those steps up to the
connector, for ``cached_image_features``.
"""

from __future__ import annotations

MODEL_TYPES = ("idefics2",)


def encode(model, pixel_values, extra: dict):
    """The connector's latents ``get_input_embeddings`` merges (``cached_image_features``)."""
    import mlx.core as mx
    import numpy as np

    batch, views, channels, height, width = pixel_values.shape
    pixel_values = pixel_values.reshape(batch * views, channels, height, width)
    real = (pixel_values == 0.0).sum(axis=(-1, -2, -3)) != np.prod(pixel_values.shape[1:])
    keep = np.where(real)[0].tolist()
    pixel_values = pixel_values[keep, ...]
    mask = extra.get("pixel_attention_mask")
    if mask is None:
        mask = mx.ones((pixel_values.shape[0], height, width), dtype=mx.bool_)
    else:
        mask = mask.reshape(batch * views, height, width)[keep]
    patch = model.config.vision_config.patch_size
    rows, columns = height // patch, width // patch
    cells = mask[:, : rows * patch, : columns * patch].reshape(-1, rows, patch, columns, patch)
    patch_mask = cells.transpose(0, 1, 3, 2, 4).sum(axis=(-1, -2)) > 0
    pooled, *_ = model.vision_model(
        pixel_values.transpose(0, 2, 3, 1), patch_attention_mask=patch_mask, output_hidden_states=True
    )
    return model.connector(pooled.astype(pixel_values.dtype))
