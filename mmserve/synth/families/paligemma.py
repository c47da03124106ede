"""PaliGemma 2 (google/paligemma2-3b-mix-224 / -448): one fixed SigLIP view, a Gemma 2 decoder.

No chat template: mlx-vlm prompts it with ``<image>`` times the images followed by
the text ("caption en"); the processor expands each ``<image>`` to
``image_seq_length`` tokens (256 at 224 px, 1024 at 448 px), puts ``<bos>`` after
them and a newline at the end. The tokenizer carries the 1024 ``<locNNNN>`` and 128
``<segNNN>`` tokens of the real one (the processor adds them otherwise).
"""

from __future__ import annotations

from functools import partial
from pathlib import Path

from ..family import Family, Vocabulary, write_json, write_random_model, write_tokenizer

LOCATION_TOKENS = tuple(f"<loc{i:0>4}>" for i in range(1024)) + tuple(f"<seg{i:0>3}>" for i in range(128))
VOCAB = Vocabulary(special=("<pad>", "<eos>", "<bos>", "<unk>", "<image>"), plain=LOCATION_TOKENS, size=4096)


def write(directory: Path, seed: int, *, image_size: int = 224) -> None:
    tokens = (image_size // 14) ** 2
    config = {
        "_vocab_size": VOCAB.size,
        "architectures": ["PaliGemmaForConditionalGeneration"],
        "bos_token_id": VOCAB["<bos>"],
        "eos_token_id": VOCAB["<eos>"],
        "hidden_size": 64,
        "image_token_index": VOCAB["<image>"],
        "model_type": "paligemma",
        "pad_token_id": VOCAB["<pad>"],
        "projection_dim": 64,
        "text_config": {
            "hidden_activation": "gelu_pytorch_tanh",
            "hidden_size": 64,
            "intermediate_size": 128,
            "model_type": "gemma2",
            "num_attention_heads": 2,
            "num_hidden_layers": 2,
            "num_image_tokens": tokens,
            "num_key_value_heads": 1,
            "head_dim": 32,
            "query_pre_attn_scalar": 32,
            "sliding_window": 4096,
            "attn_logit_softcapping": 50.0,
            "final_logit_softcapping": 30.0,
            "vocab_size": VOCAB.size,
        },
        "torch_dtype": "float32",
        "vision_config": {
            "hidden_size": 64,
            "image_size": image_size,
            "intermediate_size": 128,
            "model_type": "siglip_vision_model",
            "num_attention_heads": 2,
            "num_hidden_layers": 2,
            "num_image_tokens": tokens,
            "num_positions": tokens,
            "patch_size": 14,
            "projection_dim": 64,
            "vision_use_head": False,
        },
    }
    write_random_model(directory, config, kind="vision", seed=seed)
    write_tokenizer(
        directory,
        VOCAB,
        chat_template=None,
        eos="<eos>",
        bos="<bos>",
        pad="<pad>",
        unk="<unk>",
        add_bos=True,
        extra={"image_token": "<image>", "extra_special_tokens": {"image_token": "<image>"}},
    )
    write_json(
        directory / "preprocessor_config.json",
        {
            "do_convert_rgb": None,
            "do_normalize": True,
            "do_rescale": True,
            "do_resize": True,
            "image_mean": [0.5, 0.5, 0.5],
            "image_processor_type": "SiglipImageProcessor",
            "image_seq_length": tokens,
            "image_std": [0.5, 0.5, 0.5],
            "processor_class": "PaliGemmaProcessor",
            "resample": 3,
            "rescale_factor": 0.00392156862745098,
            "size": {"height": image_size, "width": image_size},
        },
    )


FAMILY = Family(
    "paligemma",
    "vision",
    write,
    examples=("google/paligemma2-3b-mix-224", "mlx-community/paligemma2-3b-mix-224-8bit"),
)
MORE_FAMILIES = (
    Family(
        "paligemma-448",
        "vision",
        partial(write, image_size=448),
        examples=("google/paligemma2-3b-mix-448", "mlx-community/paligemma2-3b-mix-448-8bit"),
    ),
)
