"""LLaVA-NeXT / LLaVA-1.6 (llava-hf/llava-v1.6-mistral-7b-hf): anyres tiling of a 336-px CLIP tower.

The image processor picks the best of ``image_grid_pinpoints`` for the image, resizes
into it keeping the aspect ratio, pads, cuts 336-px tiles and adds a 336-px view of the
whole; the processor then counts the base view's 576 tokens plus the tiles' features
with the padding cut off and one newline feature per row, all as ``<image>`` tokens.
"""

from __future__ import annotations

from pathlib import Path

from ..family import Family, write_json, write_random_model
from .llava import CLIP_MEAN, CLIP_STD, VOCAB, clip_vision_config, text_config, write_llama_tokenizer

GRID_PINPOINTS = [[336, 672], [672, 336], [672, 672], [1008, 336], [336, 1008]]

# llava-hf/llava-v1.6-mistral-7b-hf's chat template: "[INST] <image>\n... [/INST]".
CHAT_TEMPLATE = (
    "{% for message in messages %}{% if message['role'] == 'system' %}{{ '<<SYS>>\\n' + "
    "message['content'][0]['text'] + '\\n<</SYS>>\\n\\n' }}{% elif message['role'] == 'user' %}{{ '[INST] ' }}"
    "{# Render all images first #}{% for content in message['content'] | selectattr('type', 'equalto', 'image') %}"
    "{{ '<image>\\n' }}{% endfor %}{# Render all text next #}{% for content in message['content'] | "
    "selectattr('type', 'equalto', 'text') %}{{ content['text'] }}{% endfor %}{{' [/INST]' }}"
    "{% elif message['role'] == 'assistant' %}{% for content in message['content'] | selectattr('type', "
    "'equalto', 'text') %}{% generation %}{{ content['text'] }}{% endgeneration %}{% endfor %}{{ eos_token }}"
    "{% endif %}{% endfor %}"
)


def write(directory: Path, seed: int) -> None:
    text = {**text_config("mistral"), "rope_theta": 1000000.0, "max_position_embeddings": 32768}
    config = {
        "architectures": ["LlavaNextForConditionalGeneration"],
        "model_type": "llava_next",
        "ignore_index": -100,
        "image_grid_pinpoints": GRID_PINPOINTS,
        "image_token_index": VOCAB["<image>"],
        "pad_token_id": VOCAB["<pad>"],
        "projector_hidden_act": "gelu",
        "text_config": text,
        "use_image_newline_parameter": True,
        "vision_config": clip_vision_config(),
        "vision_feature_layer": -2,
        "vision_feature_select_strategy": "default",
        "vocab_size": VOCAB.size,
        "tie_word_embeddings": False,
        "torch_dtype": "float32",
    }
    write_random_model(directory, config, kind="vision", seed=seed)
    write_llama_tokenizer(directory, CHAT_TEMPLATE)
    write_json(
        directory / "preprocessor_config.json",
        {
            "aspect_ratio_setting": "anyres",
            "crop_size": {"height": 336, "width": 336},
            "do_center_crop": True,
            "do_convert_rgb": True,
            "do_normalize": True,
            "do_rescale": True,
            "do_resize": True,
            "image_grid_pinpoints": GRID_PINPOINTS,
            "image_mean": CLIP_MEAN,
            "image_processor_type": "LlavaNextImageProcessor",
            "image_std": CLIP_STD,
            "processor_class": "LlavaNextProcessor",
            "resample": 3,
            "rescale_factor": 0.00392156862745098,
            "size": {"shortest_edge": 336},
        },
    )
    write_json(
        directory / "processor_config.json",
        {
            "image_token": "<image>",
            "num_additional_image_tokens": 1,
            "patch_size": 14,
            "processor_class": "LlavaNextProcessor",
            "vision_feature_select_strategy": "default",
        },
    )


FAMILY = Family(
    "llava_next",
    "vision",
    write,
    examples=("llava-hf/llava-v1.6-mistral-7b-hf", "mlx-community/llava-v1.6-mistral-7b-4bit"),
)
