"""Llama 3.2 Vision (11B, 90B): a two-stage ViT over up to four 560-px tiles, read by cross-attention.

The prompt holds one ``<|image|>`` per image (the id right after the text vocabulary,
128256 in the real checkpoints, embedded by the 8 extra rows of ``embed_tokens``); the
image reaches the text model only through cross-attention layers, as
``cross_attention_states`` of ``tiles x 1601`` positions.
"""

from __future__ import annotations

from pathlib import Path

from ..family import Family, Vocabulary, write_json, write_random_model, write_tokenizer

VOCAB = Vocabulary(
    special=(
        "<|begin_of_text|>",
        "<|end_of_text|>",
        "<|start_header_id|>",
        "<|end_header_id|>",
        "<|eom_id|>",
        "<|eot_id|>",
        "<|python_tag|>",
        "<|image|>",
        *(f"<|reserved_special_token_{i}|>" for i in range(7)),
    )
)
TEXT = VOCAB.size - 8
assert VOCAB["<|image|>"] == TEXT

# meta-llama/Llama-3.2-11B-Vision-Instruct's chat template, without its tool and date branches.
CHAT_TEMPLATE = (
    "{{- bos_token }}{%- for message in messages %}"
    "{{- '<|start_header_id|>' + message['role'] + '<|end_header_id|>\\n\\n' }}"
    "{%- if message['content'] is string %}{{- message['content'] }}{%- else %}"
    "{%- for content in message['content'] %}{%- if content['type'] == 'image' %}{{- '<|image|>' }}"
    "{%- elif content['type'] == 'text' %}{{- content['text'] }}{%- endif %}{%- endfor %}{%- endif %}"
    "{{- '<|eot_id|>' }}{%- endfor %}"
    "{%- if add_generation_prompt %}{{- '<|start_header_id|>assistant<|end_header_id|>\\n\\n' }}{%- endif %}"
)


def write(directory: Path, seed: int) -> None:
    config = {
        "architectures": ["MllamaForConditionalGeneration"],
        "model_type": "mllama",
        "image_token_index": VOCAB["<|image|>"],
        "eos_token_id": [VOCAB["<|end_of_text|>"], VOCAB["<|eom_id|>"], VOCAB["<|eot_id|>"]],
        "text_config": {
            "model_type": "mllama_text_model",
            "hidden_size": 64,
            "intermediate_size": 128,
            "num_hidden_layers": 5,
            "cross_attention_layers": [3],
            "num_attention_heads": 2,
            "num_key_value_heads": 1,
            "rms_norm_eps": 1e-5,
            "rope_theta": 500000.0,
            "rope_scaling": {
                "factor": 8.0,
                "high_freq_factor": 4.0,
                "low_freq_factor": 1.0,
                "original_max_position_embeddings": 8192,
                "rope_type": "llama3",
            },
            "max_position_embeddings": 131072,
            "vocab_size": TEXT,
            "tie_word_embeddings": False,
        },
        "vision_config": {
            "model_type": "mllama_vision_model",
            "image_size": 560,
            "patch_size": 14,
            "hidden_size": 64,
            "intermediate_size": 128,
            "num_hidden_layers": 2,
            "num_global_layers": 1,
            "num_attention_heads": 2,
            "max_num_tiles": 4,
            "intermediate_layers_indices": [0, 1],
            "vision_output_dim": 192,
            "norm_eps": 1e-5,
            "supported_aspect_ratios": [[1, 1], [1, 2], [1, 3], [1, 4], [2, 1], [2, 2], [3, 1], [4, 1]],
        },
        "torch_dtype": "float32",
    }
    write_random_model(directory, config, kind="vision", seed=seed)
    _open_cross_attention_gates(directory / "model.safetensors")
    write_tokenizer(
        directory,
        VOCAB,
        chat_template=CHAT_TEMPLATE,
        eos="<|eot_id|>",
        bos="<|begin_of_text|>",
        add_bos=False,
        extra={"processor_class": "MllamaProcessor"},
    )
    write_json(
        directory / "preprocessor_config.json",
        {
            "do_convert_rgb": True,
            "do_normalize": True,
            "do_pad": True,
            "do_rescale": True,
            "do_resize": True,
            "image_mean": [0.48145466, 0.4578275, 0.40821073],
            "image_processor_type": "MllamaImageProcessor",
            "image_std": [0.26862954, 0.26130258, 0.27577711],
            "max_image_tiles": 4,
            "processor_class": "MllamaProcessor",
            "resample": 2,
            "rescale_factor": 0.00392156862745098,
            "size": {"height": 560, "width": 560},
        },
    )


def _open_cross_attention_gates(weights_file: Path) -> None:
    """The cross-attention gates start at 0 (tanh(0) = 0: the image is ignored); trained ones are not."""
    import mlx.core as mx

    weights = mx.load(str(weights_file))
    for name in weights:
        if name.endswith(("cross_attn_attn_gate", "cross_attn_mlp_gate")):
            weights[name] = mx.ones_like(weights[name])
    mx.save_safetensors(str(weights_file), weights, metadata={"format": "mlx"})


FAMILY = Family(
    "mllama",
    "vision",
    write,
    examples=("mlx-community/Llama-3.2-11B-Vision-Instruct-4bit", "meta-llama/Llama-3.2-11B-Vision-Instruct"),
)
