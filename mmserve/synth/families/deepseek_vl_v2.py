"""DeepSeek-VL2 (tiny / small / full): a SigLIP tower on 384-px views, a global view plus local tiles.

The processor picks the candidate resolution (a grid of 384-px tiles) that keeps most
of the image's pixels with the least padding, pads the image onto it and cuts tiles,
and pads the whole image onto one 384-px global view. Its prompt repeats ``<image>``
for every feature position: the global view's 14 x (14 + 1) (a newline per row), one
view separator, and the tiles' (rows * 14) x (cols * 14 + 1): 1023 for 2x2 tiles.
"""

from __future__ import annotations

from pathlib import Path

from ..family import Family, Vocabulary, write_json, write_random_model, write_tokenizer

VOCAB = Vocabulary(
    special=(
        "<｜begin▁of▁sentence｜>",
        "<｜end▁of▁sentence｜>",
        "<｜▁pad▁｜>",
        "<image>",
        "<|ref|>",
        "<|/ref|>",
        "<|det|>",
        "<|/det|>",
        "<|grounding|>",
        "<|User|>",
        "<|Assistant|>",
    )
)

# deepseek-ai/deepseek-vl2-tiny's processor_config.json: grids of 384-px tiles, up to 9 tiles.
CANDIDATE_RESOLUTIONS = [
    [384, 384], [384, 768], [768, 384], [384, 1152], [1152, 384], [384, 1536], [1536, 384], [768, 768],
    [384, 1920], [1920, 384], [384, 2304], [2304, 384], [768, 1152], [1152, 768], [384, 2688], [2688, 384],
    [384, 3072], [3072, 384], [768, 1536], [1536, 768], [384, 3456], [3456, 384], [1152, 1152],
]  # fmt: skip

# The processor's default (the "deepseek" SFT format), taking content parts as mlx-vlm writes them.
CHAT_TEMPLATE = (
    "{% for message in messages %}"
    "{% if message['role'] == 'user' %}<|User|>:{% elif message['role'] == 'assistant' %}<|Assistant|>:{% endif %} "
    "{% if message['content'] is string %}{{ message['content'] }}{% else %}"
    "{% for part in message['content'] %}{% if part['type'] == 'image' %}<image>\n"
    "{% elif part['type'] == 'text' %}{{ part['text'] }}{% endif %}{% endfor %}{% endif %}\n\n"
    "{% endfor %}{% if add_generation_prompt %}<|Assistant|>:{% endif %}"
)


def write(directory: Path, seed: int) -> None:
    config = {
        "architectures": ["DeepseekVLV2ForCausalLM"],
        "model_type": "deepseek_vl_v2",
        "candidate_resolutions": CANDIDATE_RESOLUTIONS,
        "global_view_pos": "head",
        "tile_tag": "2D",
        "language_config": {
            "architectures": ["DeepseekV2ForCausalLM"],
            "model_type": "deepseek_v2",
            "bos_token_id": VOCAB["<｜begin▁of▁sentence｜>"],
            "eos_token_id": VOCAB["<｜end▁of▁sentence｜>"],
            "hidden_size": 64,
            "intermediate_size": 128,
            "moe_intermediate_size": 32,
            "num_hidden_layers": 2,
            "num_attention_heads": 2,
            "num_key_value_heads": 2,
            "n_routed_experts": 4,
            "n_shared_experts": 1,
            "num_experts_per_tok": 2,
            "first_k_dense_replace": 1,
            "n_group": 1,
            "topk_group": 1,
            "topk_method": "greedy",
            "kv_lora_rank": None,
            "q_lora_rank": None,
            "qk_nope_head_dim": 0,
            "qk_rope_head_dim": 0,
            "v_head_dim": 0,
            "use_mla": False,
            "max_position_embeddings": 4096,
            "rms_norm_eps": 1e-6,
            "vocab_size": VOCAB.size,
        },
        "projector_config": {
            "model_type": "mlp_projector",
            "projector_type": "downsample_mlp_gelu",
            "input_dim": 64,
            "n_embed": 64,
            "depth": 2,
            "mlp_ratio": 1,
            "downsample_ratio": 2,
            "token_pooling": False,
        },
        "vision_config": {
            "model_type": "vision",
            "model_name": "siglip_so400m_patch14_384",
            "layers": 2,
            "width": 64,
            "num_attention_heads": 2,
            "mlp_ratio": 3.7362,
            "image_size": 384,
            "patch_size": 14,
        },
        "torch_dtype": "float32",
    }
    write_random_model(directory, config, kind="vision", seed=seed)
    write_tokenizer(
        directory,
        VOCAB,
        chat_template=CHAT_TEMPLATE,
        eos="<｜end▁of▁sentence｜>",
        bos="<｜begin▁of▁sentence｜>",
        pad="<｜▁pad▁｜>",
        extra={"processor_class": "DeepseekVLV2Processor"},
    )
    write_json(
        directory / "processor_config.json",
        {
            "add_special_token": False,
            "candidate_resolutions": CANDIDATE_RESOLUTIONS,
            "downsample_ratio": 2,
            "ignore_id": -100,
            "image_mean": [0.5, 0.5, 0.5],
            "image_std": [0.5, 0.5, 0.5],
            "image_token": "<image>",
            "mask_prompt": False,
            "normalize": True,
            "pad_token": "<｜▁pad▁｜>",
            "patch_size": 14,
            "processor_class": "DeepseekVLV2Processor",
            "sft_format": "deepseek",
        },
    )


FAMILY = Family(
    "deepseek_vl_v2",
    "vision",
    write,
    examples=("deepseek-ai/deepseek-vl2-tiny", "mlx-community/deepseek-vl2-tiny-8bit"),
)
