"""Aya Vision: SigLIP2 over every tile, the last hidden state, then the pixel-shuffle projector.

``get_input_embeddings`` selects ``vision_feature_layer`` of the tower's hidden states
("full": every position) and projects it; ``encode`` is the same call, for
``cached_image_features``. ``max_patches`` cannot be lowered through
``prepare_inputs`` (see ``guards.families.aya_vision``).
"""

from __future__ import annotations

MODEL_TYPES = ("aya_vision",)


def encode(model, pixel_values, extra: dict):
    """The projected tile features ``get_input_embeddings`` merges (``cached_image_features``)."""
    *_, hidden = model.vision_tower(
        pixel_values.transpose(0, 2, 3, 1), spatial_shapes=extra.get("spatial_shapes"), output_hidden_states=True
    )
    selected = hidden[model.vision_feature_layer]
    if model.vision_feature_select_strategy == "default":
        selected = selected[:, 1:]
    return model.multi_modal_projector(selected)
