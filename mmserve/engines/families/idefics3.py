"""Idefics3 and SmolVLM: the SigLIP tower over the non-empty views, then the pixel-shuffle connector.

``get_input_embeddings`` drops all-zero (padding) views and masks padded patches from
``pixel_attention_mask``; ``encode`` does the same so its features equal the ones the
model would compute. mlx-vlm serves both families itself; its ``LanguageModel`` has
``embed_tokens`` directly (there is no ``language_model.model``).
"""

from __future__ import annotations

from . import idefics2

MODEL_TYPES = ("idefics3", "smolvlm")


def encode(model, pixel_values, extra: dict):
    # The same tower call as Idefics2's; the connector's output is then one row per image token.
    features = idefics2.encode(model, pixel_values, extra)
    return features.reshape(-1, features.shape[-1])
