"""Mistral Small 3.1 / Magistral Small (``model_type`` "mistral3"): Pixtral's processor with 2x2 merging.

The processor fits the image to 1540 px on its longer side, rounds each side up to
whole 28-px cells (14-px patches merged 2x2), and writes one ``[IMG]`` per cell, an
``[IMG_BREAK]`` after every row but the last and one ``[IMG_END]``.
"""

from __future__ import annotations

from pathlib import Path

from ..family import Family, write_json, write_random_model
from .pixtral import VOCAB, write_pixtral_preprocessor, write_pixtral_tokenizer

# mistralai/Mistral-Small-3.1-24B-Instruct-2503's chat template, its default system
# message shortened and without the date (strftime_now) so that prompts are reproducible.
CHAT_TEMPLATE = """{%- set default_system_message = "You are Mistral Small 3.1, a Large Language Model (LLM) created by Mistral AI, a French startup headquartered in Paris." %}

{{- bos_token }}

{%- if messages[0]['role'] == 'system' %}
    {%- if messages[0]['content'] is string %}
        {%- set system_message = messages[0]['content'] %}
    {%- else %}
        {%- set system_message = messages[0]['content'][0]['text'] %}
    {%- endif %}
    {%- set loop_messages = messages[1:] %}
{%- else %}
    {%- set system_message = default_system_message %}
    {%- set loop_messages = messages %}
{%- endif %}
{{- '[SYSTEM_PROMPT]' + system_message + '[/SYSTEM_PROMPT]' }}

{%- for message in loop_messages %}
    {%- if message['role'] == 'user' %}
        {%- if message['content'] is string %}
            {{- '[INST]' + message['content'] + '[/INST]' }}
        {%- else %}
            {{- '[INST]' }}
            {%- for block in message['content'] %}
                {%- if block['type'] == 'text' %}
                    {{- block['text'] }}
                {%- elif block['type'] in ['image', 'image_url'] %}
                    {{- '[IMG]' }}
                {%- else %}
                    {{- raise_exception('Only text and image blocks are supported in message content!') }}
                {%- endif %}
            {%- endfor %}
            {{- '[/INST]' }}
        {%- endif %}
    {%- elif message['role'] == 'system' %}
        {%- if message['content'] is string %}
            {{- '[SYSTEM_PROMPT]' + message['content'] + '[/SYSTEM_PROMPT]' }}
        {%- else %}
            {{- '[SYSTEM_PROMPT]' + message['content'][0]['text'] + '[/SYSTEM_PROMPT]' }}
        {%- endif %}
    {%- elif message['role'] == 'assistant' %}
        {%- if message['content'] is string %}
            {{- message['content'] + eos_token }}
        {%- else %}
            {{- message['content'][0]['text'] + eos_token }}
        {%- endif %}
    {%- else %}
        {{- raise_exception('Only user, system and assistant roles are supported!') }}
    {%- endif %}
{%- endfor %}"""


def write(directory: Path, seed: int) -> None:
    config = {
        "architectures": ["Mistral3ForConditionalGeneration"],
        "model_type": "mistral3",
        "image_token_index": VOCAB["[IMG]"],
        "multimodal_projector_bias": False,
        "projector_hidden_act": "gelu",
        "spatial_merge_size": 2,
        "vision_feature_layer": -1,
        "text_config": {
            "model_type": "mistral",
            "hidden_size": 64,
            "head_dim": 32,
            "hidden_act": "silu",
            "intermediate_size": 128,
            "num_hidden_layers": 2,
            "num_attention_heads": 2,
            "num_key_value_heads": 1,
            "max_position_embeddings": 131072,
            "rms_norm_eps": 1e-05,
            "rope_theta": 1000000000.0,
            "sliding_window": None,
            "vocab_size": VOCAB.size,
        },
        "vision_config": {
            "model_type": "pixtral",
            "hidden_size": 64,
            "head_dim": 32,
            "hidden_act": "silu",
            "intermediate_size": 128,
            "num_attention_heads": 2,
            "num_hidden_layers": 2,
            "num_channels": 3,
            "image_size": 1540,
            "patch_size": 14,
            "rope_theta": 10000.0,
        },
        "torch_dtype": "float32",
    }
    write_random_model(directory, config, kind="vision", seed=seed)
    write_pixtral_tokenizer(directory, CHAT_TEMPLATE)
    write_pixtral_preprocessor(directory, patch=14, longest_edge=1540)
    write_json(
        directory / "processor_config.json",
        {
            "image_break_token": "[IMG_BREAK]",
            "image_end_token": "[IMG_END]",
            "image_token": "[IMG]",
            "patch_size": 14,
            "processor_class": "PixtralProcessor",
            "spatial_merge_size": 2,
        },
    )


FAMILY = Family(
    "mistral3",
    "vision",
    write,
    examples=(
        "mistralai/Mistral-Small-3.1-24B-Instruct-2503",
        "mlx-community/Mistral-Small-3.1-24B-Instruct-2503-4bit",
        "mistralai/Magistral-Small-2509",
    ),
)
