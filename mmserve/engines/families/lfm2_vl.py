"""LFM2-VL: SigLIP2 NaFlex over the packed, padded views, then unshuffle and projector per view.

mlx-vlm's own ``encode_images`` is the tower call ``get_input_embeddings`` makes; its
list (one array per view) is what ``cached_image_features`` takes back. The processor
is mlx-vlm's, registered when ``mlx_vlm.models.lfm2_vl`` is imported: a process that
loads only the processor must import that module first, or transformers picks its own
image processor, which needs torch.
"""

from __future__ import annotations

MODEL_TYPES = ("lfm2_vl", "lfm2-vl")


def encode(model, pixel_values, extra: dict):
    """The per-view projected features (``cached_image_features``)."""
    return model.encode_images(
        pixel_values, spatial_shapes=extra.get("spatial_shapes"), pixel_attention_mask=extra.get("pixel_attention_mask")
    )
