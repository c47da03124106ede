"""Llama 3.2 Vision: the image enters through cross-attention, not the input embeddings.

``get_input_embeddings`` returns the prompt's plain token embeddings plus
``cross_attention_states`` (tower then projector, ``tiles x 1601`` positions per image
slot), ``cross_attention_mask`` and ``full_text_row_masked_out_mask``; the language
model must receive all three on the prefill, and ``cross_attention_states`` again on
every decode step (its output carries them; the cross-attention layers project K/V
from them each step rather than caching them) — as ``mlx_vlm.generate`` does. With
that, a greedy loop over ``get_input_embeddings`` gives ``generate``'s text. ``encode`` is the tower and projector
call (``cached_image_features`` becomes ``cross_attention_states`` as it is). An engine
that keeps only ``inputs_embeds`` from ``get_input_embeddings`` generates as if there
were no image; see docs/notes/unserved-families.md.
"""

from __future__ import annotations

MODEL_TYPES = ("mllama",)

REFUSE = (
    "mmserve does not serve the vision family 'mllama': Llama 3.2 Vision reads images through "
    "cross-attention layers, which mmserve's engine and memory plan do not support yet. Serve an "
    "image-token vision model (e.g. Qwen2.5-VL, Gemma 3)."
)


def encode(model, pixel_values, extra: dict):
    """``cross_attention_states`` for one prompt (``cached_image_features``)."""
    states = model.vision_tower(
        pixel_values=pixel_values,
        aspect_ratio_ids=extra.get("aspect_ratio_ids"),
        aspect_ratio_mask=extra.get("aspect_ratio_mask"),
    )[0]
    return model.multi_modal_projector(states).reshape(1, -1, model.config.text_config.hidden_size)
