"""InternVL 3.5 in the transformers format (``internvl``, Qwen3 text): 448-px tiles of 256 tokens.

mlx-vlm 0.7.10 serves ``internvl`` with a Qwen3 language model only, so the
InternVL3.5 ``-HF`` checkpoints load and the InternVL3 ``-hf`` ones (Qwen2.5 text,
with q/k/v biases and no q/k norms) do not. Its processor is the ``internvl_chat``
one: the chat template writes ``<IMG_CONTEXT>\\n`` and the processor expands it to
``<img>`` + 256 ``<IMG_CONTEXT>`` per tile + ``</img>``; the tiling (1 to 12 tiles by
aspect ratio, plus a thumbnail) comes from config.json's defaults.
"""

from __future__ import annotations

from pathlib import Path

from ..family import Family, Vocabulary, write_json, write_random_model, write_tokenizer

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

# OpenGVLab/InternVL3_5-1B-HF's chat template, its image part (ChatML with <IMG_CONTEXT> placeholders).
CHAT_TEMPLATE = (
    "{% for message in messages %}{{'<|im_start|>' + message['role'] + '\\n'}}"
    "{% if message['content'] is string %}{{ message['content'] }}{% else %}"
    "{% for content in message['content'] %}{% if content['type'] == 'image' %}{{ '<IMG_CONTEXT>\\n' }}"
    "{% elif content['type'] == 'text' %}{{ content['text'] }}{% endif %}{% endfor %}{% endif %}"
    "{{'<|im_end|>\\n'}}{% endfor %}{% if add_generation_prompt %}{{'<|im_start|>assistant\\n' }}{% endif %}"
)


def write(directory: Path, seed: int) -> None:
    config = {
        "architectures": ["InternVLForConditionalGeneration"],
        "model_type": "internvl",
        "downsample_ratio": 0.5,
        "image_seq_length": 256,
        "image_token_id": VOCAB["<IMG_CONTEXT>"],
        "projector_hidden_act": "gelu",
        "vision_feature_layer": -1,
        "vision_feature_select_strategy": "default",
        "text_config": {
            "model_type": "qwen3",
            "hidden_size": 64,
            "intermediate_size": 128,
            "num_hidden_layers": 2,
            "num_attention_heads": 2,
            "num_key_value_heads": 1,
            "head_dim": 32,
            "rms_norm_eps": 1e-6,
            "rope_theta": 1000000.0,
            "max_position_embeddings": 40960,
            "vocab_size": VOCAB.size,
            "tie_word_embeddings": True,
        },
        "vision_config": {
            "model_type": "internvl_vision",
            "hidden_size": 64,
            "intermediate_size": 128,
            "num_attention_heads": 2,
            "num_hidden_layers": 2,
            "image_size": [448, 448],
            "patch_size": [14, 14],
            "layer_scale_init_value": 0.1,
            "norm_type": "layer_norm",
            "use_qk_norm": False,
            "attention_bias": True,
            "layer_norm_eps": 1e-6,
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
        extra={
            "processor_class": "InternVLProcessor",
            "extra_special_tokens": {
                "context_image_token": "<IMG_CONTEXT>",
                "start_image_token": "<img>",
                "end_image_token": "</img>",
            },
        },
    )
    write_json(directory / "processor_config.json", {"image_seq_length": 256, "processor_class": "InternVLProcessor"})
    write_json(
        directory / "preprocessor_config.json",
        {
            "crop_size": None,
            "crop_to_patches": False,
            "do_convert_rgb": True,
            "do_normalize": True,
            "do_rescale": True,
            "do_resize": True,
            "image_mean": [0.485, 0.456, 0.406],
            "image_processor_type": "GotOcr2ImageProcessorFast",
            "image_std": [0.229, 0.224, 0.225],
            "max_patches": 12,
            "min_patches": 1,
            "processor_class": "InternVLProcessor",
            "resample": 3,
            "rescale_factor": 1 / 255,
            "size": {"height": 448, "width": 448},
        },
    )


FAMILY = Family("internvl", "vision", write, examples=("OpenGVLab/InternVL3_5-1B-HF", "OpenGVLab/InternVL3_5-2B-HF"))
