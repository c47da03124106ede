"""LFM2-VL (450M, 1.6B) and LFM2.5-VL: SigLIP2 NaFlex over 16-px patches, 2x2 pixel unshuffle.

An image of up to about 512 tokens' worth of pixels is one view of 64-256 tokens at
its own aspect ratio; a larger one is cut into 512-px tiles (2 to 10, 256 tokens
each, marked ``<|img_row_R_col_C|>``) plus a thumbnail (``<|img_thumbnail|>``). The
text model is LFM2 (short convolutions and a few attention layers).
"""

from __future__ import annotations

from pathlib import Path

from ..family import Family, Vocabulary, write_json, write_random_model, write_tokenizer

TILE_MARKERS = tuple(f"<|img_row_{r}_col_{c}|>" for r in range(1, 11) for c in range(1, 11))
VOCAB = Vocabulary(
    special=(
        "<|pad|>",
        "<|startoftext|>",
        "<|endoftext|>",
        "<|im_start|>",
        "<|im_end|>",
        "<image>",
        "<|image_start|>",
        "<|image_end|>",
        "<|img_thumbnail|>",
        *TILE_MARKERS,
    )
)

# LiquidAI/LFM2-VL-1.6B's chat template.
CHAT_TEMPLATE = (
    "{{bos_token}}{% for message in messages %}{{'<|im_start|>' + message['role'] + '\\n'}}"
    "{% if message['content'] is string %}{{ message['content'] }}{% else %}"
    "{% for content in message['content'] %}{% if content['type'] == 'image' %}{{ '<image>' }}"
    "{% elif content['type'] == 'text' %}{{ content['text'] }}{% endif %}{% endfor %}{% endif %}"
    "{{'<|im_end|>\\n'}}{% endfor %}{% if add_generation_prompt %}{{'<|im_start|>assistant\\n'}}{% endif %}"
)

IMAGE_SETTINGS = {
    "do_image_splitting": True,
    "downsample_factor": 2,
    "encoder_patch_size": 16,
    "max_image_tokens": 256,
    "max_num_patches": 1024,
    "max_pixels_tolerance": 2.0,
    "max_tiles": 10,
    "min_image_tokens": 64,
    "min_tiles": 2,
    "tile_size": 512,
    "use_thumbnail": True,
}


def write(directory: Path, seed: int) -> None:
    layers = ["conv", "conv", "full_attention", "conv"]
    config = {
        "architectures": ["Lfm2VlForConditionalGeneration"],
        "model_type": "lfm2-vl",
        "image_token_index": VOCAB["<image>"],
        "projector_bias": True,
        "projector_hidden_act": "gelu",
        "projector_hidden_size": 128,
        "vision_feature_layer": -1,
        "use_image_special_tokens": True,
        "eos_token_id": VOCAB["<|im_end|>"],
        **IMAGE_SETTINGS,
        "text_config": {
            "model_type": "lfm2",
            "hidden_size": 64,
            "block_dim": 64,
            "conv_dim": 64,
            "conv_dim_out": 64,
            "block_ff_dim": 128,
            "block_auto_adjust_ff_dim": False,
            "block_multiple_of": 16,
            "intermediate_size": 128,
            "conv_L_cache": 3,
            "layer_types": layers,
            "num_hidden_layers": len(layers),
            "num_attention_heads": 2,
            "num_heads": 2,
            "num_key_value_heads": 1,
            "norm_eps": 1e-5,
            "max_position_embeddings": 128000,
            "rope_theta": 1000000.0,
            "vocab_size": VOCAB.size,
            "eos_token_id": VOCAB["<|im_end|>"],
            "tie_word_embeddings": True,
        },
        "vision_config": {
            "model_type": "siglip2_vision_model",
            "hidden_size": 64,
            "intermediate_size": 128,
            "num_attention_heads": 2,
            "num_hidden_layers": 2,
            "num_channels": 3,
            "num_patches": 256,
            "patch_size": 16,
            "layer_norm_eps": 1e-6,
            "vision_use_head": False,
        },
        "torch_dtype": "float32",
    }
    write_random_model(directory, config, kind="vision", seed=seed)
    write_tokenizer(
        directory,
        VOCAB,
        chat_template=CHAT_TEMPLATE,
        eos="<|im_end|>",
        bos="<|startoftext|>",
        pad="<|pad|>",
        extra={"processor_class": "Lfm2VlProcessor"},
    )
    write_json(
        directory / "preprocessor_config.json",
        {
            **IMAGE_SETTINGS,
            "do_normalize": True,
            "do_pad": True,
            "do_rescale": True,
            "do_resize": False,  # as shipped; the processor resizes regardless
            "image_mean": [0.5, 0.5, 0.5],
            "image_processor_type": "Lfm2VlImageProcessorFast",
            "image_std": [0.5, 0.5, 0.5],
            "processor_class": "Lfm2VlProcessor",
            "resample": 2,
            "rescale_factor": 0.00392156862745098,
        },
    )
    write_json(
        directory / "processor_config.json", {"processor_class": "Lfm2VlProcessor", "use_image_special_tokens": True}
    )


FAMILY = Family("lfm2_vl", "vision", write, examples=("mlx-community/LFM2-VL-1.6B-4bit", "LiquidAI/LFM2-VL-450M"))
