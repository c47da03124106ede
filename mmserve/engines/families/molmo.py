"""Molmo: the ViT over every crop and the global view, pooled 2x2 and projected.

``get_input_embeddings`` adds the features to the ``<im_patch>`` embeddings at the
positions ``image_input_idx`` gives (padded slots are -100); ``encode`` is the same
tower call on the batched crops and masks, for ``cached_image_features``. The
processor is mlx-vlm's, registered when ``mlx_vlm.models.molmo`` is imported: before
that, ``AutoProcessor`` returns the bare tokenizer.
"""

from __future__ import annotations

MODEL_TYPES = ("molmo",)


def encode(model, pixel_values, extra: dict):
    """The pooled, projected crop features (``cached_image_features``)."""
    import mlx.core as mx

    masks = extra.get("image_masks")
    pixel_values = pixel_values.astype(model.vision_tower.image_vit.patch_embedding.weight.dtype)
    if pixel_values.ndim == 3:
        pixel_values = mx.expand_dims(pixel_values, 0)
        masks = mx.expand_dims(masks, 0) if masks is not None else None
    features, _ = model.vision_tower(pixel_values, masks)
    return features
