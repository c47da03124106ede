"""PaliGemma / PaliGemma 2: the SigLIP tower and a linear projector.

``after_load``: mlx-vlm's Gemma 2 decoder divides by ``final_logit_softcapping`` and
``attn_logit_softcapping`` as read from config.json, where transformers' Gemma2Config
supplies 30.0 and 50.0 when a checkpoint leaves them out; a PaliGemma 2 config
without them fails at the first token (``TypeError`` dividing by None). It fills in
transformers' defaults. ``encode`` reproduces ``get_input_embeddings``' features
exactly; the model scales them by sqrt(hidden_size) itself.
"""

from __future__ import annotations

import mlx.core as mx

GEMMA2_FINAL_SOFTCAP = 30.0
GEMMA2_ATTENTION_SOFTCAP = 50.0


def after_load(model, processor) -> None:
    language = model.language_model
    if getattr(language, "model_type", None) != "gemma2":
        return
    if language.final_logit_softcapping is None:
        language.final_logit_softcapping = GEMMA2_FINAL_SOFTCAP
    for layer in language.model.layers:
        if layer.self_attn.attn_logit_softcapping is None:
            layer.self_attn.attn_logit_softcapping = GEMMA2_ATTENTION_SOFTCAP


def encode(model, pixel_values, extra):
    """The projected SigLIP features, as ``get_input_embeddings`` computes them."""
    dtype = model.language_model.model.embed_tokens(mx.array([[0]])).dtype
    hidden, _, _ = model.vision_tower(pixel_values.transpose(0, 2, 3, 1).astype(dtype), output_hidden_states=True)
    return model.multi_modal_projector(hidden[None, :].astype(pixel_values.dtype))
