"""LLaVA-1.5: mlx-vlm's processor hands the tokenizer's ``padding`` to the image processor.

``mlx_vlm.utils.prepare_inputs`` calls every processor with ``padding=True``;
mlx-vlm 0.7.10's ``LlavaProcessor.__call__`` forwards all its kwargs to the image
processor, and transformers 5 validates an image processor's kwargs against its
``ImagesKwargs`` TypedDict and raises ``TypeError: ImagesKwargs.__init__() got an
unexpected keyword argument 'padding'`` (transformers 4 ignored them). ``after_load``
drops the tokenizer's options on the way into the image processor; no version pin.

The tower: ``encode`` returns exactly what ``get_input_embeddings`` computes
(hidden state ``vision_feature_layer``, CLS dropped for the ``default`` strategy,
the projector), so it can come back as ``cached_image_features``.
"""

from __future__ import annotations

# Options of the tokenizer call that an image processor must not see.
TEXT_ONLY_KWARGS = ("padding", "padding_side", "truncation", "max_length", "add_special_tokens", "pad_to_multiple_of")


def drop_text_kwargs(image_processor) -> None:
    """Make ``image_processor`` ignore the tokenizer's options (an instance attribute, idempotent)."""
    if getattr(image_processor, "_mmserve_drops_text_kwargs", False):
        return
    preprocess = image_processor.preprocess

    def preprocess_images(images, *args, **kwargs):
        for name in TEXT_ONLY_KWARGS:
            kwargs.pop(name, None)
        return preprocess(images, *args, **kwargs)

    image_processor.preprocess = preprocess_images
    image_processor._mmserve_drops_text_kwargs = True


def after_load(model, processor) -> None:
    drop_text_kwargs(processor.image_processor)


def encode(model, pixel_values, extra):
    """The projected features of the selected hidden layer, as ``get_input_embeddings`` makes them."""
    *_, hidden_states = model.vision_tower(pixel_values.transpose(0, 2, 3, 1), output_hidden_states=True)
    selected = hidden_states[model.vision_feature_layer]
    if model.vision_feature_select_strategy == "default":
        selected = selected[:, 1:]
    return model.multi_modal_projector(selected)
