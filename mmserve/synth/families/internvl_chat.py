"""InternVL 2.5 / 3 in OpenGVLab's own format (``internvl_chat``): InternViT 448-px tiles, 256 tokens each.

The processor picks the grid of 448-px tiles (1 to 12 of them) whose aspect ratio is
closest to the image's, resizes the image to that grid and cuts it, and adds a
448-px thumbnail when there is more than one tile; each tile is
``<img>`` + 256 ``<IMG_CONTEXT>`` + ``</img>`` in the prompt (the chat template writes
``<image>\\n``, which the processor replaces).
"""

from __future__ import annotations

from pathlib import Path

from ..family import Family, Vocabulary, write_random_model, write_tokenizer

VOCAB = Vocabulary(
    special=(
        "<|endoftext|>",
        "<|im_start|>",
        "<|im_end|>",
        "<img>",
        "</img>",
        "<IMG_CONTEXT>",
        "<quad>",
        "</quad>",
        "<ref>",
        "</ref>",
        "<box>",
        "</box>",
    )
)

SYSTEM = "你是书生·万象，英文名是InternVL，是由上海人工智能实验室、清华大学及多家合作单位联合开发的多模态大语言模型。"

# OpenGVLab/InternVL3-1B's chat template (Qwen's ChatML with InternVL's system prompt and <image> placeholders).
CHAT_TEMPLATE = (
    "{% for message in messages %}{% if loop.first and messages[0]['role'] != 'system' %}"
    "{{'<|im_start|>system\\n" + SYSTEM + "<|im_end|>\\n'}}{% endif %}"
    "{{'<|im_start|>' + message['role'] + '\\n'}}"
    "{% if message['content'] is string %}{{ message['content'] }}{% else %}"
    "{% for content in message['content'] %}{% if content['type'] == 'image' %}{{ '<image>\\n' }}"
    "{% elif content['type'] == 'text' %}{{ content['text'] }}{% endif %}{% endfor %}{% endif %}"
    "{{'<|im_end|>\\n'}}{% endfor %}{% if add_generation_prompt %}{{'<|im_start|>assistant\\n' }}{% endif %}"
)


def write(directory: Path, seed: int) -> None:
    config = {
        "architectures": ["InternVLChatModel"],
        "model_type": "internvl_chat",
        "downsample_ratio": 0.5,
        "dynamic_image_size": True,
        "force_image_size": 448,
        "max_dynamic_patch": 12,
        "min_dynamic_patch": 1,
        "use_thumbnail": True,
        "ps_version": "v2",
        "select_layer": -1,
        "template": "internvl2_5",
        "llm_config": {
            "architectures": ["Qwen2ForCausalLM"],
            "model_type": "qwen2",
            "hidden_size": 64,
            "intermediate_size": 128,
            "num_hidden_layers": 2,
            "num_attention_heads": 2,
            "num_key_value_heads": 1,
            "rms_norm_eps": 1e-6,
            "rope_theta": 1000000.0,
            "max_position_embeddings": 32768,
            "vocab_size": VOCAB.size,
            "tie_word_embeddings": False,
        },
        "vision_config": {
            "architectures": ["InternVisionModel"],
            "model_type": "intern_vit_6b",
            "hidden_size": 64,
            "intermediate_size": 128,
            "num_attention_heads": 2,
            "num_hidden_layers": 2,
            "image_size": 448,
            "patch_size": 14,
            "norm_type": "layer_norm",
            "qk_normalization": False,
            "qkv_bias": True,
            "layer_norm_eps": 1e-6,
            "drop_path_rate": 0.0,
        },
        "torch_dtype": "float32",
    }
    write_random_model(directory, config, kind="vision", seed=seed)
    write_tokenizer(
        directory,
        VOCAB,
        chat_template=CHAT_TEMPLATE,
        eos="<|im_end|>",
        pad="<|endoftext|>",
        extra={"processor_class": "InternVLChatProcessor"},
    )


FAMILY = Family(
    "internvl_chat",
    "vision",
    write,
    examples=("OpenGVLab/InternVL3-1B", "mlx-community/InternVL3-2B-4bit", "mlx-community/InternVL3-8B-4bit"),
)
