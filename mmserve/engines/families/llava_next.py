"""LLaVA-NeXT: mlx-vlm 0.7.10 merges image features the processor did not count.

The processor (mlx-vlm's and transformers') writes one ``<image>`` token per feature
HF's model produces: the base view's 576, then the tiles' grid with the padding cut
off and one ``image_newline`` per row (``pack_image_features`` / ``unpad_image``).
mlx-vlm 0.7.10's ``Model.get_input_embeddings`` instead concatenates every view's 576
features with a whole view of broadcast newlines and splices one view per ``<image>``
position: a 1024x768 image gives 2360 input ids but 5780 embeddings, so the KV cache
and the positions no longer match the prompt. ``after_load`` replaces the model's
``get_input_embeddings`` with HF's packing, which puts exactly one feature on every
image-token position (the features the checkpoint was trained with).

``encode`` computes those packed features (all images' features, in prompt order);
passed back as ``cached_image_features`` they give the same embeddings bit for bit.
"""

from __future__ import annotations

import mlx.core as mx
import numpy as np
from mlx_vlm.models.base import InputEmbeddingsFeatures
from transformers.image_processing_utils import select_best_resolution

from .llava import drop_text_kwargs


def _unpad(features: mx.array, height: int, width: int) -> mx.array:
    """HF's ``unpad_image`` on (D, rows, cols) features of an image of ``height`` x ``width``."""
    rows, cols = features.shape[1:]
    if width / height > cols / rows:
        new_rows = int(round(height * (cols / width), 7))
        pad = (rows - new_rows) // 2
        return features[:, pad : rows - pad, :]
    new_cols = int(round(width * (rows / height), 7))
    pad = (cols - new_cols) // 2
    return features[:, :, pad : cols - pad]


def _pack(model, views: mx.array, height: int, width: int) -> mx.array:
    """One image's features in the processor's order: base view, then unpadded rows each ended by a newline."""
    vision = model.config.vision_config
    side = vision.image_size // vision.patch_size
    best_height, best_width = select_best_resolution([height, width], model.image_grid_pinpoints)
    grid_rows, grid_cols = best_height // vision.image_size, best_width // vision.image_size
    dim = views.shape[-1]
    tiles = views[1 : 1 + grid_rows * grid_cols].reshape(grid_rows, grid_cols, side, side, dim)
    tiles = tiles.transpose(4, 0, 2, 1, 3).reshape(dim, grid_rows * side, grid_cols * side)
    tiles = _unpad(tiles, height, width)
    newline = mx.broadcast_to(model.image_newline.astype(tiles.dtype)[:, None, None], (dim, tiles.shape[1], 1))
    tiles = mx.concatenate([tiles, newline], axis=-1).reshape(dim, -1).T
    return mx.concatenate([views[0], tiles], axis=0)


def encode(model, pixel_values, extra):
    """The packed image features (all images, prompt order), as the patched ``get_input_embeddings`` uses.

    Needs ``after_load`` first (it puts the grid pinpoints on the model)."""
    sizes = np.array(extra["image_sizes"]).reshape(-1, 2).tolist()
    packed = []
    for views, (height, width) in zip(pixel_values, sizes):
        *_, hidden_states = model.vision_tower(views.transpose(0, 2, 3, 1), output_hidden_states=True)
        selected = hidden_states[model.vision_feature_layer]
        if model.vision_feature_select_strategy == "default":
            selected = selected[:, 1:]
        packed.append(_pack(model, model.multi_modal_projector(selected), int(height), int(width)))
    return mx.concatenate(packed, axis=0)


def after_load(model, processor) -> None:
    """Give the model HF's feature packing; make the image processor ignore tokenizer options."""
    drop_text_kwargs(processor.image_processor)
    # mlx-vlm's ModelConfig drops config.json's pinpoints; the image processor has the same list.
    model.image_grid_pinpoints = [list(p) for p in processor.image_processor.image_grid_pinpoints]
    image_token = model.config.image_token_index

    def get_input_embeddings(input_ids=None, pixel_values=None, mask=None, **kwargs):
        embeds = model.language_model.model.embed_tokens(input_ids)
        if pixel_values is None:
            return InputEmbeddingsFeatures(inputs_embeds=embeds)
        features = kwargs.get("cached_image_features")
        if features is None:
            features = encode(model, pixel_values, kwargs)
        batch, length, dim = embeds.shape
        positions = np.flatnonzero(np.array(input_ids).reshape(-1) == image_token)
        if len(positions) != features.shape[0]:
            raise ValueError(f"{len(positions)} image tokens for {features.shape[0]} image features")
        flat = embeds.reshape(batch * length, dim)
        flat[mx.array(positions, mx.uint32)] = features.astype(flat.dtype)
        return InputEmbeddingsFeatures(inputs_embeds=flat.reshape(batch, length, dim))

    model.get_input_embeddings = get_input_embeddings
