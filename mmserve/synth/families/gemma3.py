"""Gemma 3 (4B and up): a SigLIP tower at 896 px, 256 image tokens, no pan-and-scan by default."""

from __future__ import annotations

from pathlib import Path

from ..family import Family, Vocabulary, write_json, write_random_model, write_tokenizer

VOCAB = Vocabulary(
    special=(
        "<pad>",
        "<eos>",
        "<bos>",
        "<unk>",
        "<start_of_turn>",
        "<end_of_turn>",
        "<start_of_image>",
        "<end_of_image>",
        "<image_soft_token>",
    )
)

# google/gemma-3-4b-it's chat template.
CHAT_TEMPLATE = """{{ bos_token }}
{%- if messages[0]['role'] == 'system' -%}
    {%- if messages[0]['content'] is string -%}
        {%- set first_user_prefix = messages[0]['content'] + '\\n\\n' -%}
    {%- else -%}
        {%- set first_user_prefix = messages[0]['content'][0]['text'] + '\\n\\n' -%}
    {%- endif -%}
    {%- set loop_messages = messages[1:] -%}
{%- else -%}
    {%- set first_user_prefix = "" -%}
    {%- set loop_messages = messages -%}
{%- endif -%}
{%- for message in loop_messages -%}
    {%- if (message['role'] == 'user') != (loop.index0 % 2 == 0) -%}
        {{ raise_exception("Conversation roles must alternate user/assistant/user/assistant/...") }}
    {%- endif -%}
    {%- if (message['role'] == 'assistant') -%}
        {%- set role = "model" -%}
    {%- else -%}
        {%- set role = message['role'] -%}
    {%- endif -%}
    {{ '<start_of_turn>' + role + '\\n' + (first_user_prefix if loop.first else "") }}
    {%- if message['content'] is string -%}
        {{ message['content'] | trim }}
    {%- elif message['content'] is iterable -%}
        {%- for item in message['content'] -%}
            {%- if item['type'] == 'image' -%}
                {{ '<start_of_image>' }}
            {%- elif item['type'] == 'text' -%}
                {{ item['text'] | trim }}
            {%- endif -%}
        {%- endfor -%}
    {%- else -%}
        {{ raise_exception("Invalid content type") }}
    {%- endif -%}
    {{ '<end_of_turn>\\n' }}
{%- endfor -%}
{%- if add_generation_prompt -%}
    {{'<start_of_turn>model\\n'}}
{%- endif -%}
"""


def write(directory: Path, seed: int) -> None:
    config = {
        "architectures": ["Gemma3ForConditionalGeneration"],
        "model_type": "gemma3",
        "boi_token_index": VOCAB["<start_of_image>"],
        "eoi_token_index": VOCAB["<end_of_image>"],
        "image_token_index": VOCAB["<image_soft_token>"],
        "eos_token_id": [VOCAB["<eos>"], VOCAB["<end_of_turn>"]],
        "mm_tokens_per_image": 256,
        "initializer_range": 0.02,
        "text_config": {
            "model_type": "gemma3_text",
            "hidden_size": 64,
            "intermediate_size": 128,
            "num_hidden_layers": 6,
            "num_attention_heads": 2,
            "num_key_value_heads": 1,
            "head_dim": 32,
            "query_pre_attn_scalar": 32,
            "rms_norm_eps": 1e-6,
            "rope_theta": 1000000.0,
            "rope_local_base_freq": 10000.0,
            "rope_scaling": {"factor": 8.0, "rope_type": "linear"},
            "sliding_window": 1024,  # google/gemma-3-4b-it
            "sliding_window_pattern": 6,
            "max_position_embeddings": 131072,
            "vocab_size": VOCAB.size,
            "torch_dtype": "float32",
        },
        "vision_config": {
            "model_type": "siglip_vision_model",
            "hidden_size": 64,
            "intermediate_size": 128,
            "num_attention_heads": 2,
            "num_hidden_layers": 2,
            "image_size": 896,
            "patch_size": 14,
            "vision_use_head": False,
            "layer_norm_eps": 1e-6,
        },
        "torch_dtype": "float32",
    }
    write_random_model(directory, config, kind="vision", seed=seed)
    write_tokenizer(
        directory,
        VOCAB,
        chat_template=CHAT_TEMPLATE,
        eos="<eos>",
        bos="<bos>",
        pad="<pad>",
        unk="<unk>",
        add_bos=True,
        extra={
            "boi_token": "<start_of_image>",
            "eoi_token": "<end_of_image>",
            "image_token": "<image_soft_token>",
            "extra_special_tokens": {
                "boi_token": "<start_of_image>",
                "eoi_token": "<end_of_image>",
                "image_token": "<image_soft_token>",
            },
            "processor_class": "Gemma3Processor",
        },
    )
    write_json(
        directory / "preprocessor_config.json",
        {
            "do_convert_rgb": None,
            "do_normalize": True,
            "do_pan_and_scan": None,
            "do_rescale": True,
            "do_resize": True,
            "image_mean": [0.5, 0.5, 0.5],
            "image_processor_type": "Gemma3ImageProcessor",
            "image_seq_length": 256,
            "image_std": [0.5, 0.5, 0.5],
            "pan_and_scan_max_num_crops": None,
            "pan_and_scan_min_crop_size": None,
            "pan_and_scan_min_ratio_to_activate": None,
            "processor_class": "Gemma3Processor",
            "resample": 2,
            "rescale_factor": 0.00392156862745098,
            "size": {"height": 896, "width": 896},
        },
    )
    write_json(directory / "processor_config.json", {"image_seq_length": 256, "processor_class": "Gemma3Processor"})


FAMILY = Family("gemma3", "vision", write, examples=("mlx-community/gemma-3-4b-it-4bit", "google/gemma-3-12b-it"))
