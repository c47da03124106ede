"""DeepSeek-VL2: the SigLIP tower over each image's global view and tiles, then the downsampling MLP.

Its processor has no ``image_processor`` (mlx-vlm's ``DeepseekVLV2Processor`` is a
tokenizer plus ``candidate_resolutions`` / ``image_size`` / ``patch_size`` /
``downsample_ratio`` and its own ``image_transform``): call the processor itself
(``prepare_inputs`` does), read the geometry from those attributes. The prepared
inputs carry ``images_spatial_crop`` and ``images_seq_mask``, which
``get_input_embeddings`` needs. The cached features are per view, before the newline
and separator features are inserted (the model inserts them on every call).

``after_load`` makes the processor evaluate what it returns: it builds its pixel
values and masks as lazy mlx graphs, and lazy arrays from another thread's stream fail
outright ("There is no Stream(cpu, N) in current thread"). ``prepare_inputs`` calls a
processor's ``process`` where it has one, so that is where the evaluation goes. Even
so, the merged image embeddings of one image differ between processes about one run
in three on mlx's CPU backend, in ``mlx_vlm.generate`` as here (docs/models.md); the
cause is not found.
"""

from __future__ import annotations

MODEL_TYPES = ("deepseek_vl_v2",)


def after_load(model, processor) -> None:
    import functools

    import mlx.core as mx

    call = processor.__call__

    @functools.wraps(call)
    def process(*args, **kwargs):
        outputs = call(*args, **kwargs)
        mx.eval([value for value in outputs.values() if isinstance(value, mx.array)])
        return outputs

    processor.process = process


def encode(model, pixel_values, extra: dict):
    import mlx.core as mx

    crops = extra["images_spatial_crop"]
    views = []
    for batch in range(pixel_values.shape[0]):
        count = 0
        for cols, rows in crops[batch].tolist():
            if cols == 0 or rows == 0:
                break
            count += 1 + cols * rows
        views.append(pixel_values[batch, :count])
    hidden, *_ = model.vision(mx.concatenate(views, axis=0).transpose(0, 2, 3, 1), output_hidden_states=True)
    return model.projector(hidden)
