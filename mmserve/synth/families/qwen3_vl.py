"""Qwen3-VL (2B / 4B / 8B Instruct): dynamic patches on a 32-px grid (16-px patches merged 2x2).

The tower also returns "deepstack" features from three of its layers, which the
language model adds to the hidden states at the image positions of its first layers.
"""

from __future__ import annotations

from pathlib import Path

from .. import PLAIN_ADDED_TOKENS, SPECIAL_TOKENS
from ..family import Family, Vocabulary, write_json, write_random_model, write_tokenizer

VOCAB = Vocabulary(
    special=SPECIAL_TOKENS,
    plain=PLAIN_ADDED_TOKENS + ("<tool_response>", "</tool_response>", "<think>", "</think>"),
)

# Qwen/Qwen3-VL-2B-Instruct's chat template, without its tool-calling branches.
CHAT_TEMPLATE = """{%- if messages[0].role == 'system' %}
    {{- '<|im_start|>system\\n' }}
    {%- if messages[0].content is string %}
        {{- messages[0].content }}
    {%- else %}
        {%- for content in messages[0].content %}
            {%- if 'text' in content %}
                {{- content.text }}
            {%- endif %}
        {%- endfor %}
    {%- endif %}
    {{- '<|im_end|>\\n' }}
{%- endif %}
{%- set image_count = namespace(value=0) %}
{%- set video_count = namespace(value=0) %}
{%- for message in messages %}
    {%- if message.role == "user" or (message.role == "system" and not loop.first) %}
        {{- '<|im_start|>' + message.role + '\\n' }}
        {%- if message.content is string %}
            {{- message.content }}
        {%- else %}
            {%- for content in message.content %}
                {%- if content.type == 'image' or 'image' in content or 'image_url' in content %}
                    {%- set image_count.value = image_count.value + 1 %}
                    {%- if add_vision_id %}Picture {{ image_count.value }}: {% endif -%}
                    <|vision_start|><|image_pad|><|vision_end|>
                {%- elif content.type == 'video' or 'video' in content %}
                    {%- set video_count.value = video_count.value + 1 %}
                    {%- if add_vision_id %}Video {{ video_count.value }}: {% endif -%}
                    <|vision_start|><|video_pad|><|vision_end|>
                {%- elif 'text' in content %}
                    {{- content.text }}
                {%- endif %}
            {%- endfor %}
        {%- endif %}
        {{- '<|im_end|>\\n' }}
    {%- elif message.role == "assistant" %}
        {{- '<|im_start|>' + message.role + '\\n' }}
        {%- if message.content is string %}
            {{- message.content }}
        {%- else %}
            {%- for content_item in message.content %}
                {%- if 'text' in content_item %}
                    {{- content_item.text }}
                {%- endif %}
            {%- endfor %}
        {%- endif %}
        {{- '<|im_end|>\\n' }}
    {%- endif %}
{%- endfor %}
{%- if add_generation_prompt %}
    {{- '<|im_start|>assistant\\n' }}
{%- endif %}
"""

IMAGE_SETTINGS = {
    "size": {"longest_edge": 16777216, "shortest_edge": 65536},
    "patch_size": 16,
    "temporal_patch_size": 2,
    "merge_size": 2,
    "image_mean": [0.5, 0.5, 0.5],
    "image_std": [0.5, 0.5, 0.5],
}


def write(directory: Path, seed: int) -> None:
    config = {
        "architectures": ["Qwen3VLForConditionalGeneration"],
        "model_type": "qwen3_vl",
        "image_token_id": VOCAB["<|image_pad|>"],
        "video_token_id": VOCAB["<|video_pad|>"],
        "vision_start_token_id": VOCAB["<|vision_start|>"],
        "vision_end_token_id": VOCAB["<|vision_end|>"],
        "tie_word_embeddings": True,
        "text_config": {
            "model_type": "qwen3_vl_text",
            "attention_bias": False,
            "bos_token_id": VOCAB["<|endoftext|>"],
            "eos_token_id": VOCAB["<|im_end|>"],
            "head_dim": 32,
            "hidden_act": "silu",
            "hidden_size": 64,
            "intermediate_size": 128,
            "max_position_embeddings": 262144,
            "num_attention_heads": 2,
            "num_hidden_layers": 2,
            "num_key_value_heads": 1,
            "rms_norm_eps": 1e-06,
            "rope_scaling": {"mrope_interleaved": True, "mrope_section": [6, 5, 5], "rope_type": "default"},
            "rope_theta": 5000000,
            "tie_word_embeddings": True,
            "vocab_size": VOCAB.size,
        },
        "vision_config": {
            "model_type": "qwen3_vl",
            "deepstack_visual_indexes": [0, 1],
            "depth": 3,
            "hidden_act": "gelu_pytorch_tanh",
            "hidden_size": 64,
            "in_channels": 3,
            "intermediate_size": 128,
            "num_heads": 2,
            "num_position_embeddings": 2304,
            "out_hidden_size": 64,
            "patch_size": 16,
            "spatial_merge_size": 2,
            "temporal_patch_size": 2,
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
        extra={"processor_class": "Qwen3VLProcessor", "errors": "replace", "split_special_tokens": False},
    )
    write_json(
        directory / "preprocessor_config.json",
        {**IMAGE_SETTINGS, "processor_class": "Qwen3VLProcessor", "image_processor_type": "Qwen2VLImageProcessorFast"},
    )
    write_json(
        directory / "video_preprocessor_config.json",
        {
            **IMAGE_SETTINGS,
            "size": {"longest_edge": 25165824, "shortest_edge": 4096},
            "fps": 2,
            "min_frames": 4,
            "max_frames": 768,
            "do_sample_frames": True,
            "processor_class": "Qwen3VLProcessor",
            "video_processor_type": "Qwen3VLVideoProcessor",
        },
    )
    write_json(
        directory / "generation_config.json",
        {
            "bos_token_id": VOCAB["<|endoftext|>"],
            "pad_token_id": VOCAB["<|endoftext|>"],
            "eos_token_id": [VOCAB["<|im_end|>"], VOCAB["<|endoftext|>"]],
        },
    )


FAMILY = Family(
    "qwen3_vl",
    "vision",
    write,
    examples=("Qwen/Qwen3-VL-2B-Instruct", "Qwen/Qwen3-VL-4B-Instruct", "mlx-community/Qwen3-VL-8B-Instruct-4bit"),
)
