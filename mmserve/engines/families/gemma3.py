"""Gemma 3: the SigLIP tower then the pooling projector; nothing to fix at load.

``encode`` reproduces ``get_input_embeddings``' features exactly (the tower runs in
the text embeddings' dtype); the model scales them by sqrt(hidden_size) itself when
they come back as ``cached_image_features``, so the cache holds unscaled features.
Pan-and-scan crops arrive as extra views in ``pixel_values`` and need nothing more.
"""

from __future__ import annotations

import mlx.core as mx


def _text_dtype(model):
    return model.language_model.model.embed_tokens(mx.array([[0]])).dtype


def encode(model, pixel_values, extra):
    """The projected, pooled features of every view, as ``get_input_embeddings`` computes them."""
    hidden, _, _ = model.vision_tower(
        pixel_values.transpose(0, 2, 3, 1).astype(_text_dtype(model)), output_hidden_states=True
    )
    return model.multi_modal_projector(hidden)
