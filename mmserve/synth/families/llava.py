"""LLaVA-1.5 (llava-hf/llava-1.5-7b-hf): a CLIP ViT-L/14 tower at 336 px, 576 image tokens.

The CLIP image processor resizes the shorter side to 336 and centre-crops 336 x 336,
so every image becomes the same 576 ``<image>`` tokens (24 x 24 patches, the CLS
feature dropped by the ``default`` feature strategy).
"""

from __future__ import annotations

from pathlib import Path

from ..family import Family, Vocabulary, write_json, write_random_model, write_tokenizer

VOCAB = Vocabulary(special=("<unk>", "<s>", "</s>", "<image>", "<pad>"))

# llava-hf/llava-1.5-7b-hf's chat template: images first, then the text, "USER: ... ASSISTANT:".
CHAT_TEMPLATE = (
    "{% for message in messages %}{% if message['role'] != 'system' %}{{ message['role'].upper() + ': '}}"
    "{% endif %}{# Render all images first #}{% for content in message['content'] | selectattr('type', "
    "'equalto', 'image') %}{{ '<image>\\n' }}{% endfor %}{# Render all text next #}{% if message['role'] != "
    "'assistant' %}{% for content in message['content'] | selectattr('type', 'equalto', 'text') %}"
    "{{ content['text'] + ' '}}{% endfor %}{% else %}{% for content in message['content'] | selectattr('type', "
    "'equalto', 'text') %}{% generation %}{{ content['text'] + ' '}}{% endgeneration %}{% endfor %}{% endif %}"
    "{% endfor %}{% if add_generation_prompt %}{{ 'ASSISTANT:' }}{% endif %}"
)

CLIP_MEAN = [0.48145466, 0.4578275, 0.40821073]
CLIP_STD = [0.26862954, 0.26130258, 0.27577711]


def clip_vision_config() -> dict:
    """CLIP ViT-L/14-336's structure at a tiny width."""
    return {
        "model_type": "clip_vision_model",
        "hidden_size": 64,
        "intermediate_size": 128,
        "num_attention_heads": 2,
        "num_hidden_layers": 2,
        "image_size": 336,
        "patch_size": 14,
        "projection_dim": 64,
        "vocab_size": 32000,
        "layer_norm_eps": 1e-5,
    }


def text_config(model_type: str) -> dict:
    return {
        "model_type": model_type,
        "hidden_size": 64,
        "intermediate_size": 128,
        "num_hidden_layers": 2,
        "num_attention_heads": 2,
        "num_key_value_heads": 1,
        "rms_norm_eps": 1e-5,
        "max_position_embeddings": 4096,
        "vocab_size": VOCAB.size,
        "tie_word_embeddings": False,
    }


def write_llama_tokenizer(directory: Path, chat_template: str) -> None:
    """The Llama / Mistral sentencepiece conventions: ``<s>`` added, ``<image>`` and ``<pad>`` at the end."""
    write_tokenizer(
        directory,
        VOCAB,
        chat_template=chat_template,
        eos="</s>",
        bos="<s>",
        pad="<pad>",
        unk="<unk>",
        add_bos=True,
        extra={"image_token": "<image>", "extra_special_tokens": {"image_token": "<image>"}},
    )


def write(directory: Path, seed: int) -> None:
    config = {
        "architectures": ["LlavaForConditionalGeneration"],
        "model_type": "llava",
        "ignore_index": -100,
        "image_token_index": VOCAB["<image>"],
        "pad_token_id": VOCAB["<pad>"],
        "projector_hidden_act": "gelu",
        "text_config": text_config("llama"),
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
            "crop_size": {"height": 336, "width": 336},
            "do_center_crop": True,
            "do_convert_rgb": True,
            "do_normalize": True,
            "do_rescale": True,
            "do_resize": True,
            "image_mean": CLIP_MEAN,
            "image_processor_type": "CLIPImageProcessor",
            "image_std": CLIP_STD,
            "processor_class": "LlavaProcessor",
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
            "processor_class": "LlavaProcessor",
            "vision_feature_select_strategy": "default",
        },
    )


FAMILY = Family("llava", "vision", write, examples=("llava-hf/llava-1.5-7b-hf", "mlx-community/llava-1.5-7b-4bit"))
