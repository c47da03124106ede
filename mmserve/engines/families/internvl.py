"""InternVL in the transformers format (``internvl``): mlx-vlm 0.7.10 needs a load fix and has no feature cache.

Its ``ModelConfig`` has no ``eos_token_id``, which ``mlx_vlm.generate`` reads
(``AttributeError: 'ModelConfig' object has no attribute 'eos_token_id'``):
``after_load`` sets it from config.json (None when absent, as other families have).
``get_input_embeddings`` takes no ``cached_image_features``, so there is no ``encode``.
Only Qwen3-based checkpoints (InternVL3.5 ``-HF``) load; InternVL3 ``-hf`` (Qwen2.5)
does not (mlx-vlm builds a Qwen3 language model for ``internvl``).
"""

from __future__ import annotations

MODEL_TYPES = ("internvl",)

encode = None


def after_load(model, processor) -> None:
    config = model.config
    if getattr(config, "eos_token_id", None) is None:
        text = getattr(config, "text_config", None)
        config.eos_token_id = getattr(text, "eos_token_id", None)
