"""Kimi-VL (A3B Instruct / Thinking): a MoonViT tower over native-resolution 14-px patches, merged 2x2.

The text model is DeepSeek-V3 shaped (MLA attention, sigmoid-routed experts with a
shared one, the first layer dense), here at 64 wide with four experts. The image
token is ``<|media_pad|>``, repeated once per merged 28x28 cell.
"""

from __future__ import annotations

from pathlib import Path

from ..family import Family, Vocabulary, write_json, write_random_model, write_tokenizer

VOCAB = Vocabulary(
    special=(
        "[BOS]",
        "[EOS]",
        "<|im_end|>",
        "<|im_user|>",
        "<|im_assistant|>",
        "<|im_system|>",
        "<|im_middle|>",
        "<|media_start|>",
        "<|media_content|>",
        "<|media_end|>",
        "<|media_pad|>",
        "[PAD]",
        "[UNK]",
    )
)

# moonshotai/Kimi-VL-A3B-Instruct's chat template.
CHAT_TEMPLATE = (
    "{%- for message in messages -%}"
    "{%- if loop.first and messages[0]['role'] != 'system' -%}"
    "{{'<|im_system|>system<|im_middle|>You are a helpful assistant<|im_end|>'}}{%- endif -%}"
    "{%- if message['role'] == 'system' -%}{{'<|im_system|>'}}{%- endif -%}"
    "{%- if message['role'] == 'user' -%}{{'<|im_user|>'}}{%- endif -%}"
    "{%- if message['role'] == 'assistant' -%}{{'<|im_assistant|>'}}{%- endif -%}"
    "{{- message['role'] -}}{{'<|im_middle|>'}}"
    "{%- if message['content'] is string -%}{{- message['content'] + '<|im_end|>' -}}"
    "{%- else -%}{%- for content in message['content'] -%}"
    "{%- if content['type'] == 'image' or 'image' in content or 'image_url' in content -%}"
    "{{'<|media_start|>image<|media_content|><|media_pad|><|media_end|>'}}"
    "{%- else -%}{{content['text']}}{%- endif -%}{%- endfor -%}{{'<|im_end|>'}}{%- endif -%}"
    "{%- endfor -%}"
    "{%- if add_generation_prompt -%}{{'<|im_assistant|>assistant<|im_middle|>'}}{%- endif -%}"
)


def write(directory: Path, seed: int) -> None:
    config = {
        "architectures": ["KimiVLForConditionalGeneration"],
        "model_type": "kimi_vl",
        "ignore_index": -100,
        "media_placeholder_token_id": VOCAB["<|media_pad|>"],
        "pad_token_id": VOCAB["[PAD]"],
        "eos_token_id": [VOCAB["[EOS]"], VOCAB["<|im_end|>"]],
        "vocab_size": VOCAB.size,
        "text_config": {
            "model_type": "deepseek_v3",
            "vocab_size": VOCAB.size,
            "hidden_size": 64,
            "intermediate_size": 128,
            "moe_intermediate_size": 32,
            "num_hidden_layers": 2,
            "num_attention_heads": 2,
            "num_key_value_heads": 2,
            "n_shared_experts": 1,
            "n_routed_experts": 4,
            "routed_scaling_factor": 2.446,
            "kv_lora_rank": 32,
            "q_lora_rank": None,
            "qk_rope_head_dim": 16,
            "v_head_dim": 32,
            "qk_nope_head_dim": 32,
            "topk_method": "noaux_tc",
            "n_group": 1,
            "topk_group": 1,
            "num_experts_per_tok": 2,
            "moe_layer_freq": 1,
            "first_k_dense_replace": 1,
            "norm_topk_prob": True,
            "scoring_func": "sigmoid",
            "max_position_embeddings": 131072,
            "rms_norm_eps": 1e-5,
            "rope_theta": 800000.0,
            "bos_token_id": VOCAB["[BOS]"],
            "eos_token_id": VOCAB["[EOS]"],
        },
        "vision_config": {
            "model_type": "moonvit",
            "patch_size": 14,
            "init_pos_emb_height": 64,
            "init_pos_emb_width": 64,
            "num_attention_heads": 2,
            "num_hidden_layers": 2,
            "hidden_size": 64,
            "intermediate_size": 128,
            "merge_kernel_size": [2, 2],
            # the names mlx-vlm's MoonViT reads (its defaults are the real 27 x 1152 x 16)
            "depth": 2,
            "embed_dim": 64,
            "num_heads": 2,
        },
        "torch_dtype": "float32",
    }
    write_random_model(directory, config, kind="vision", seed=seed)
    write_tokenizer(
        directory,
        VOCAB,
        chat_template=CHAT_TEMPLATE,
        eos="[EOS]",
        bos="[BOS]",
        pad="[PAD]",
        unk="[UNK]",
        extra={"processor_class": "KimiVLProcessor"},
    )
    write_json(
        directory / "preprocessor_config.json",
        {
            "image_mean": [0.5, 0.5, 0.5],
            "image_processor_type": "KimiVLImageProcessor",
            "image_std": [0.5, 0.5, 0.5],
            "in_token_limit": 4096,
            "merge_kernel_size": [2, 2],
            "num_pooled_tokens": 1024,
            "pad_input": False,
            "patch_size": 14,
            "processor_class": "KimiVLProcessor",
        },
    )


FAMILY = Family(
    "kimi_vl",
    "vision",
    write,
    examples=("mlx-community/Kimi-VL-A3B-Instruct-4bit", "moonshotai/Kimi-VL-A3B-Thinking-2506"),
)
