"""InternVL in OpenGVLab's format (``internvl_chat``): InternViT over every tile, CLS dropped, pixel shuffle, MLP.

The cached features are the projected ones, which ``get_input_embeddings`` takes
back as they are. The model finds the image positions by ``image_token_index``
(the processor's ``<IMG_CONTEXT>`` id, in the prepared inputs: pass it through),
falling back to config.json's, which real checkpoints leave at mlx-vlm's default.
The transformers-format ``internvl`` model is in ``internvl.py``.

``after_load``: mlx-vlm's ``InternVLChatProcessor`` names its token
``img_context_token_id`` (no ``image_token_id``), and config.json has no
``image_token_index``, so a caller finds mlx-vlm's default 151667 (right for InternVL3
by chance, wrong for other vocabularies): both are set to the processor's id. The
prompt stays mlx-vlm's (its processor's generic ``User: ... Assistant:`` template, not
the checkpoint's ChatML), so answers are the ones mlx-vlm gives.
"""

from __future__ import annotations

MODEL_TYPES = ("internvl_chat",)


def after_load(model, processor) -> None:
    token = processor.img_context_token_id
    processor.image_token_id = token
    model.config.image_token_index = token


def encode(model, pixel_values, extra: dict):
    from mlx_vlm.models.base import pixel_shuffle

    pixel_values = pixel_values.astype(model.vision_model.embeddings.patch_embedding.weight.dtype)
    if pixel_values.ndim == 5:
        pixel_values = pixel_values[0]
    hidden, _, _ = model.vision_model(pixel_values.transpose(0, 2, 3, 1), output_hidden_states=True)
    hidden = pixel_shuffle(hidden[:, 1:, :], shuffle_ratio=model.downsample_ratio)
    for layer in model.mlp1:
        hidden = layer(hidden)
    return hidden
