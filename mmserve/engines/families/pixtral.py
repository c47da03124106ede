"""Pixtral and Mistral 3: a Pixtral tower with 2-D rotary positions, then the projector.

``after_load`` evaluates the tower's rotary table: it is a plain attribute, not a
parameter, so ``mlx_vlm.load`` leaves it a lazy array bound to the loading thread's
stream, and the first image prepared on another thread fails with "There is no
Stream(cpu, 0) in current thread". ``encode`` runs the tower and the projector as
``get_input_embeddings`` does (Mistral 3's projector also merges 2x2 patches and
needs ``image_sizes``).
"""

from __future__ import annotations

import mlx.core as mx

MODEL_TYPES = ("pixtral", "mistral3")


def after_load(model, processor) -> None:
    mx.eval(model.vision_tower.vision_model.patch_positional_embedding.inv_freq)


def encode(model, pixel_values, extra: dict):
    image_sizes = extra.get("image_sizes")
    if pixel_values.ndim == 3:
        pixel_values = pixel_values[None, ...]
    *_, hidden_states = model.vision_tower(
        pixel_values.transpose(0, 2, 3, 1), output_hidden_states=True, image_sizes=image_sizes
    )
    selected = hidden_states[model.vision_feature_layer]
    if model.config.model_type == "mistral3":
        if selected.ndim == 3 and selected.shape[0] == 1:
            selected = selected.squeeze(0)
        return model.multi_modal_projector(selected, image_sizes)
    return model.multi_modal_projector(selected)
