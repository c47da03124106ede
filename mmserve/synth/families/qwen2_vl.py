"""Qwen2-VL (2B / 7B Instruct): dynamic patches on a 28-px grid (14-px patches merged 2x2)."""

from __future__ import annotations

from pathlib import Path

from .. import _VISION_CHAT_TEMPLATE, PLAIN_ADDED_TOKENS, SPECIAL_TOKENS
from ..family import Family, Vocabulary, write_json, write_random_model, write_tokenizer

VOCAB = Vocabulary(special=SPECIAL_TOKENS, plain=PLAIN_ADDED_TOKENS)


def write(directory: Path, seed: int) -> None:
    config = {
        "architectures": ["Qwen2VLForConditionalGeneration"],
        "model_type": "qwen2_vl",
        "bos_token_id": VOCAB["<|endoftext|>"],
        "eos_token_id": VOCAB["<|im_end|>"],
        "vision_start_token_id": VOCAB["<|vision_start|>"],
        "vision_end_token_id": VOCAB["<|vision_end|>"],
        "vision_token_id": VOCAB["<|vision_pad|>"],
        "image_token_id": VOCAB["<|image_pad|>"],
        "video_token_id": VOCAB["<|video_pad|>"],
        "hidden_act": "silu",
        "hidden_size": 64,
        "intermediate_size": 128,
        "max_position_embeddings": 32768,
        "max_window_layers": 2,
        "num_attention_heads": 2,
        "num_hidden_layers": 2,
        "num_key_value_heads": 1,
        "rms_norm_eps": 1e-06,
        "rope_theta": 1000000.0,
        "rope_scaling": {"type": "mrope", "mrope_section": [4, 6, 6]},
        "sliding_window": 32768,
        "use_sliding_window": False,
        "tie_word_embeddings": True,
        "vocab_size": VOCAB.size,
        "vision_config": {
            "model_type": "qwen2_vl",
            "depth": 2,
            "embed_dim": 64,
            "mlp_ratio": 4,
            "num_heads": 2,
            "in_chans": 3,
            "hidden_size": 64,
            "patch_size": 14,
            "spatial_merge_size": 2,
            "spatial_patch_size": 14,
            "temporal_patch_size": 2,
        },
        "torch_dtype": "float32",
    }
    write_random_model(directory, config, kind="vision", seed=seed)
    write_tokenizer(
        directory,
        VOCAB,
        chat_template=_VISION_CHAT_TEMPLATE,
        eos="<|im_end|>",
        pad="<|endoftext|>",
        extra={"processor_class": "Qwen2VLProcessor", "errors": "replace", "split_special_tokens": False},
    )
    write_json(
        directory / "preprocessor_config.json",
        {
            "min_pixels": 3136,
            "max_pixels": 12845056,
            "patch_size": 14,
            "temporal_patch_size": 2,
            "merge_size": 2,
            "image_mean": [0.48145466, 0.4578275, 0.40821073],
            "image_std": [0.26862954, 0.26130258, 0.27577711],
            "image_processor_type": "Qwen2VLImageProcessor",
            "processor_class": "Qwen2VLProcessor",
        },
    )


FAMILY = Family(
    "qwen2_vl", "vision", write, examples=("Qwen/Qwen2-VL-2B-Instruct", "mlx-community/Qwen2-VL-2B-Instruct-4bit")
)
