"""Kimi-VL: MoonViT over the packed patches and their grid, then the 2x2-merging projector.

``get_input_embeddings`` takes ``image_grid_hws`` and ``_grid_shapes`` from the
processor's output and fills the ``<|media_pad|>`` positions; ``encode`` is the same
tower and projector call, for ``cached_image_features``.
"""

from __future__ import annotations

MODEL_TYPES = ("kimi_vl",)


def encode(model, pixel_values, extra: dict):
    """The projected features ``get_input_embeddings`` merges (``cached_image_features``)."""
    hidden = model.vision_tower(
        pixel_values.transpose(0, 2, 3, 1),
        output_hidden_states=True,
        grid_thw=extra.get("image_grid_hws"),
        grid_shapes=extra.get("_grid_shapes"),
    )
    return model.multi_modal_projector(hidden)
