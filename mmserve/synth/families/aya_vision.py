"""Aya Vision (8B): a SigLIP2 tower at 364 px over up to 12 tiles plus a thumbnail, 169 tokens each.

The processor is transformers' own (GotOcr2 image processor, ``crop_to_patches``);
each tile is ``TILE_<i>`` (the thumbnail ``TILE_GLOBAL``) followed by 13x13 = 169
``<|IMG_PATCH|>`` tokens after a 2x pixel shuffle, all inside ``<|START_OF_IMG|>`` ...
``<|END_OF_IMG|>``. The text model is Cohere2 (sliding and global layers).
"""

from __future__ import annotations

from pathlib import Path

from ..family import Family, Vocabulary, write_json, write_random_model, write_tokenizer

VOCAB = Vocabulary(
    special=(
        "<PAD>",
        "<UNK>",
        "<BOS_TOKEN>",
        "<|END_OF_TURN_TOKEN|>",
        "<|START_OF_TURN_TOKEN|>",
        "<|USER_TOKEN|>",
        "<|CHATBOT_TOKEN|>",
        "<|SYSTEM_TOKEN|>",
        "<|START_RESPONSE|>",
        "<|END_RESPONSE|>",
        "<|START_OF_IMG|>",
        "<|END_OF_IMG|>",
        "<|IMG_PATCH|>",
        "<|IMG_LINE_BREAK|>",
        "TILE",
        "TILE_GLOBAL",
        "<image>",
    )
)

# CohereForAI/aya-vision-8b's chat template, without its tool and document branches.
CHAT_TEMPLATE = (
    "{{ bos_token }}{% for message in messages %}"
    "{% if message['role'] == 'system' %}{{ '<|START_OF_TURN_TOKEN|><|SYSTEM_TOKEN|>' }}"
    "{% elif message['role'] == 'user' %}{{ '<|START_OF_TURN_TOKEN|><|USER_TOKEN|>' }}"
    "{% else %}{{ '<|START_OF_TURN_TOKEN|><|CHATBOT_TOKEN|><|START_RESPONSE|>' }}{% endif %}"
    "{% if message['content'] is string %}{{ message['content'] }}"
    "{% else %}{% for item in message['content'] %}"
    "{% if item['type'] == 'image' %}{{ '<image>' }}"
    "{% elif item['type'] == 'text' %}{{ item['text'] }}{% endif %}{% endfor %}{% endif %}"
    "{% if message['role'] == 'assistant' %}{{ '<|END_RESPONSE|>' }}{% endif %}"
    "{{ '<|END_OF_TURN_TOKEN|>' }}{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|START_OF_TURN_TOKEN|><|CHATBOT_TOKEN|><|START_RESPONSE|>' }}{% endif %}"
)


def write(directory: Path, seed: int) -> None:
    config = {
        "architectures": ["AyaVisionForConditionalGeneration"],
        "model_type": "aya_vision",
        "adapter_layer_norm_eps": 1e-6,
        "alignment_intermediate_size": 128,
        "downsample_factor": 2,
        "image_token_index": VOCAB["<|IMG_PATCH|>"],
        "vision_feature_layer": -1,
        "vision_feature_select_strategy": "full",
        "eos_token_id": [VOCAB["<|END_OF_TURN_TOKEN|>"]],
        "text_config": {
            "model_type": "cohere2",
            "hidden_size": 64,
            "head_dim": 32,
            "intermediate_size": 128,
            "num_hidden_layers": 4,
            "num_attention_heads": 2,
            "num_key_value_heads": 1,
            "layer_norm_eps": 1e-5,
            "logit_scale": 0.125,
            "max_position_embeddings": 16384,
            "rope_theta": 50000.0,
            "sliding_window": 4096,
            "sliding_window_pattern": 4,
            "vocab_size": VOCAB.size,
        },
        "vision_config": {
            "model_type": "siglip_vision_model",
            "hidden_size": 64,
            "image_size": 364,
            "intermediate_size": 128,
            "num_attention_heads": 2,
            "num_hidden_layers": 2,
            "patch_size": 14,
            "vision_use_head": False,
        },
        "torch_dtype": "float32",
    }
    write_random_model(directory, config, kind="vision", seed=seed)
    write_tokenizer(
        directory,
        VOCAB,
        chat_template=CHAT_TEMPLATE,
        eos="<|END_OF_TURN_TOKEN|>",
        bos="<BOS_TOKEN>",
        pad="<PAD>",
        unk="<UNK>",
        extra={"processor_class": "AyaVisionProcessor"},
    )
    write_json(
        directory / "preprocessor_config.json",
        {
            "crop_to_patches": True,
            "do_convert_rgb": True,
            "do_normalize": True,
            "do_rescale": True,
            "do_resize": True,
            "image_mean": [0.5, 0.5, 0.5],
            "image_processor_type": "GotOcr2ImageProcessor",
            "image_std": [0.5, 0.5, 0.5],
            "max_patches": 12,
            "min_patches": 1,
            "processor_class": "AyaVisionProcessor",
            "resample": 3,
            "rescale_factor": 0.00392156862745098,
            "size": {"height": 364, "width": 364},
        },
    )
    write_json(
        directory / "processor_config.json",
        {
            "downsample_factor": 2,
            "end_of_img_token": "<|END_OF_IMG|>",
            "image_token": "<image>",
            "img_line_break_token": "<|IMG_LINE_BREAK|>",
            "img_patch_token": "<|IMG_PATCH|>",
            "img_size": 364,
            "patch_size": 14,
            "processor_class": "AyaVisionProcessor",
            "start_of_img_token": "<|START_OF_IMG|>",
            "tile_global_token": "TILE_GLOBAL",
            "tile_token": "TILE",
        },
    )


FAMILY = Family(
    "aya_vision", "vision", write, examples=("mlx-community/aya-vision-8b-4bit", "CohereForAI/aya-vision-8b")
)
