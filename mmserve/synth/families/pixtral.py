"""Pixtral 12B as mlx-community converts it: ``model_type`` "pixtral" (the HF original says "llava").

The processor resizes an image to fit 1024 px on its longer side, rounds each side up
to whole 16-px patches, and writes one ``[IMG]`` per patch, an ``[IMG_BREAK]`` after
every row but the last and one ``[IMG_END]``.
"""

from __future__ import annotations

from pathlib import Path

from ..family import Family, Vocabulary, write_json, write_random_model, write_tokenizer

# Tekken's control tokens, in their real order (real ids 0..; here the last ids).
VOCAB = Vocabulary(
    special=(
        "<unk>",
        "<s>",
        "</s>",
        "[INST]",
        "[/INST]",
        "[AVAILABLE_TOOLS]",
        "[/AVAILABLE_TOOLS]",
        "[TOOL_RESULTS]",
        "[/TOOL_RESULTS]",
        "[TOOL_CALLS]",
        "[IMG]",
        "<pad>",
        "[IMG_BREAK]",
        "[IMG_END]",
        "[PREFIX]",
        "[MIDDLE]",
        "[SUFFIX]",
        "[SYSTEM_PROMPT]",
        "[/SYSTEM_PROMPT]",
        "[TOOL_CONTENT]",
    )
)

# mistral-community/pixtral-12b's chat template (text chunks carry "content").
CHAT_TEMPLATE = """{%- if messages[0]["role"] == "system" %}
    {%- set system_message = messages[0]["content"] %}
    {%- set loop_messages = messages[1:] %}
{%- else %}
    {%- set loop_messages = messages %}
{%- endif %}

{{- bos_token }}
{%- for message in loop_messages %}
    {%- if (message['role'] == 'user') != (loop.index0 % 2 == 0) %}
        {{- raise_exception('After the optional system message, conversation roles must alternate user/assistant/user/assistant/...') }}
    {%- endif %}
    {%- if message["role"] == "user" %}
        {%- if loop.last and system_message is defined %}
            {{- "[INST]" + system_message + "\\n\\n" }}
        {%- else %}
            {{- "[INST]" }}
        {%- endif %}
        {%- if message["content"] is not string %}
            {%- for chunk in message["content"] %}
                {%- if chunk["type"] == "text" %}
                    {{- chunk["content"] }}
                {%- elif chunk["type"] == "image" %}
                    {{- "[IMG]" }}
                {%- else %}
                    {{- raise_exception("Unrecognized content type!") }}
                {%- endif %}
            {%- endfor %}
        {%- else %}
            {{- message["content"] }}
        {%- endif %}
        {{- "[/INST]" }}
    {%- elif message["role"] == "assistant" %}
        {{- message["content"] + eos_token}}
    {%- else %}
        {{- raise_exception("Only user and assistant roles are supported, with the exception of an initial optional system message!") }}
    {%- endif %}
{%- endfor %}"""

IMAGE_MEAN = [0.48145466, 0.4578275, 0.40821073]
IMAGE_STD = [0.26862954, 0.26130258, 0.27577711]


def write_pixtral_tokenizer(directory: Path, chat_template: str) -> None:
    """Tekken's control tokens and the processor's image tokens (shared with Mistral 3)."""
    write_tokenizer(
        directory,
        VOCAB,
        chat_template=chat_template,
        eos="</s>",
        bos="<s>",
        pad="<pad>",
        unk="<unk>",
        add_bos=True,
        extra={"processor_class": "PixtralProcessor"},
    )


def write_pixtral_preprocessor(directory: Path, *, patch: int, longest_edge: int) -> None:
    """preprocessor_config.json as the real checkpoints ship it (``patch_size`` a dict)."""
    write_json(
        directory / "preprocessor_config.json",
        {
            "do_convert_rgb": True,
            "do_normalize": True,
            "do_rescale": True,
            "do_resize": True,
            "image_mean": IMAGE_MEAN,
            "image_processor_type": "PixtralImageProcessor",
            "image_std": IMAGE_STD,
            "patch_size": {"height": patch, "width": patch},
            "processor_class": "PixtralProcessor",
            "resample": 3,
            "rescale_factor": 0.00392156862745098,
            "size": {"longest_edge": longest_edge},
        },
    )


def write(directory: Path, seed: int) -> None:
    config = {
        "architectures": ["LlavaForConditionalGeneration"],
        "model_type": "pixtral",
        "ignore_index": -100,
        "image_seq_length": 1,
        "image_token_index": VOCAB["[IMG]"],
        "projector_hidden_act": "gelu",
        "vision_feature_layer": -1,
        "vision_feature_select_strategy": "full",
        "text_config": {
            "model_type": "mistral",
            "hidden_size": 64,
            "head_dim": 32,
            "intermediate_size": 128,
            "num_hidden_layers": 2,
            "num_attention_heads": 2,
            "num_key_value_heads": 1,
            "max_position_embeddings": 1024000,
            "rms_norm_eps": 1e-05,
            "rope_theta": 1000000000.0,
            "sliding_window": None,
            "vocab_size": VOCAB.size,
        },
        "vision_config": {
            "model_type": "pixtral",
            "hidden_size": 64,
            "head_dim": 32,
            "intermediate_size": 128,
            "num_attention_heads": 2,
            "num_hidden_layers": 2,
            "hidden_act": "gelu",
            "image_size": 1024,
            "patch_size": 16,
            "rope_theta": 10000.0,
            "tie_word_embeddings": False,
        },
        "torch_dtype": "float32",
    }
    write_random_model(directory, config, kind="vision", seed=seed)
    write_pixtral_tokenizer(directory, CHAT_TEMPLATE)
    write_json(directory / "chat_template.json", {"chat_template": CHAT_TEMPLATE})
    write_pixtral_preprocessor(directory, patch=16, longest_edge=1024)
    write_json(
        directory / "processor_config.json",
        {
            "image_break_token": "[IMG_BREAK]",
            "image_end_token": "[IMG_END]",
            "image_token": "[IMG]",
            "patch_size": 16,
            "processor_class": "PixtralProcessor",
        },
    )


FAMILY = Family(
    "pixtral", "vision", write, examples=("mlx-community/pixtral-12b-4bit", "mistral-community/pixtral-12b")
)
