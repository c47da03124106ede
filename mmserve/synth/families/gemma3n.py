"""Gemma 3n (E2B, E4B): a MobileNet-v5 tower at 768x768, 256 soft tokens per image.

The text vocabulary ends with two 128-id ranges the real checkpoints also have: the
vision soft tokens (``<end_of_image>`` first, then ``<image_soft_token>``) and the
audio soft tokens, embedded by ``embed_vision`` / ``embed_audio``; their offsets are
``vocab_size_per_layer_input`` and that plus 128, as in the real config (262144 / 262272).
The tower is one block per stage (see ``mmserve.engines.families.gemma3n``).
"""

from __future__ import annotations

from pathlib import Path

from ..family import Family, Vocabulary, write_json, write_random_model, write_tokenizer

SIZE = 2048
TEXT = SIZE - 256  # vocab_size_per_layer_input: the vision range starts here
VOCAB = Vocabulary(
    special=(
        "<pad>",
        "<eos>",
        "<bos>",
        "<unk>",
        "<start_of_turn>",
        "<end_of_turn>",
        "<start_of_image>",
        "<start_of_audio>",
        "<end_of_image>",
        "<image_soft_token>",
        *(f"<vision_{i}>" for i in range(126)),
        "<end_of_audio>",
        "<audio_soft_token>",
        *(f"<audio_{i}>" for i in range(126)),
    ),
    size=SIZE,
)
assert VOCAB["<end_of_image>"] == TEXT and VOCAB["<end_of_audio>"] == TEXT + 128

# google/gemma-3n-E2B-it's chat template.
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
            {%- if item['type'] == 'audio' -%}
                {{ '<audio_soft_token>' }}
            {%- elif item['type'] == 'image' -%}
                {{ '<image_soft_token>' }}
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

LAYERS = 10  # the real pattern: four sliding layers then a full one; the last third share KV


def write(directory: Path, seed: int) -> None:
    from mmserve.engines.families.gemma3n import TINY_TOWER, before_load

    config = {
        "architectures": ["Gemma3nForConditionalGeneration"],
        "model_type": "gemma3n",
        "audio_soft_tokens_per_image": 188,
        "audio_token_id": VOCAB["<audio_soft_token>"],
        "boa_token_id": VOCAB["<start_of_audio>"],
        "boi_token_id": VOCAB["<start_of_image>"],
        "eoa_token_id": VOCAB["<end_of_audio>"],
        "eoi_token_id": VOCAB["<end_of_image>"],
        "eos_token_id": [VOCAB["<eos>"], VOCAB["<end_of_turn>"]],
        "image_token_id": VOCAB["<image_soft_token>"],
        "initializer_range": 0.02,
        "vision_soft_tokens_per_image": 256,
        "text_config": {
            "model_type": "gemma3n_text",
            "activation_sparsity_pattern": [0.95] * 3 + [0.0] * (LAYERS - 3),
            "altup_active_idx": 0,
            "altup_coef_clip": 120.0,
            "altup_correct_scale": True,
            "altup_num_inputs": 4,
            "final_logit_softcapping": 30.0,
            "head_dim": 32,
            "hidden_activation": "gelu_pytorch_tanh",
            "hidden_size": 64,
            "hidden_size_per_layer_input": 16,
            "intermediate_size": [128] * LAYERS,
            "laurel_rank": 8,
            "layer_types": (["sliding_attention"] * 4 + ["full_attention"]) * (LAYERS // 5),
            "max_position_embeddings": 32768,
            "num_attention_heads": 2,
            "num_hidden_layers": LAYERS,
            "num_key_value_heads": 1,
            "num_kv_shared_layers": 4,
            "rms_norm_eps": 1e-6,
            "rope_local_base_freq": 10000.0,
            "rope_scaling": None,
            "rope_theta": 1000000.0,
            "sliding_window": 512,
            "vocab_size": SIZE,
            "vocab_size_per_layer_input": TEXT,
        },
        "vision_config": {
            "architecture": TINY_TOWER,  # the real checkpoints: "mobilenetv5_300m_enc"
            "do_pooling": False,
            "hidden_size": 2048,
            "model_type": "gemma3n_vision",
            "rms_norm_eps": 1e-6,
            "vocab_offset": TEXT,
            "vocab_size": 128,
        },
        "audio_config": {
            "model_type": "gemma3n_audio",
            "conf_attention_chunk_size": 12,
            "conf_attention_context_left": 13,
            "conf_attention_context_right": 0,
            "conf_attention_logit_cap": 50.0,
            "conf_conv_kernel_size": 5,
            "conf_num_attention_heads": 2,
            "conf_num_hidden_layers": 1,
            "conf_reduction_factor": 4,
            "conf_residual_weight": 0.5,
            "hidden_size": 64,
            "input_feat_size": 128,
            "rms_norm_eps": 1e-6,
            "sscp_conv_channel_size": [16, 8],
            "vocab_offset": TEXT + 128,
            "vocab_size": 128,
        },
        "torch_dtype": "float32",
    }
    with before_load(config):
        write_random_model(directory, config, kind="vision", seed=seed)
    tokens = {
        "audio_token": "<audio_soft_token>",
        "boa_token": "<start_of_audio>",
        "boi_token": "<start_of_image>",
        "eoa_token": "<end_of_audio>",
        "eoi_token": "<end_of_image>",
        "image_token": "<image_soft_token>",
    }
    write_tokenizer(
        directory,
        VOCAB,
        chat_template=CHAT_TEMPLATE,
        eos="<eos>",
        bos="<bos>",
        pad="<pad>",
        unk="<unk>",
        add_bos=True,
        extra={**tokens, "extra_special_tokens": tokens, "processor_class": "Gemma3nProcessor"},
    )
    write_json(
        directory / "preprocessor_config.json",
        {
            "do_convert_rgb": None,
            "do_normalize": False,
            "do_rescale": True,
            "do_resize": True,
            "image_mean": [0.5, 0.5, 0.5],
            "image_processor_type": "SiglipImageProcessorFast",
            "image_seq_length": 256,
            "image_std": [0.5, 0.5, 0.5],
            "processor_class": "Gemma3nProcessor",
            "resample": 2,
            "rescale_factor": 0.00392156862745098,
            "size": {"height": 768, "width": 768},
        },
    )
    write_json(
        directory / "processor_config.json",
        {"audio_seq_length": 188, "image_seq_length": 256, "processor_class": "Gemma3nProcessor"},
    )


FAMILY = Family("gemma3n", "vision", write, examples=("mlx-community/gemma-3n-E2B-it-4bit", "google/gemma-3n-E4B-it"))
