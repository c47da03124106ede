"""Phi-3.5-vision (and Phi-3-vision): a CLIP ViT-L/14 at 336 px over HD tiles.

The processor scales an image up to fill at most ``num_crops`` 336-px tiles at its
aspect ratio, pads to whole tiles, and adds a 336-px global view; each tile and the
global view become 144 tokens (12x12 after a 2x2 merge), plus one row separator per
tile row (12 per row) and one between the tiles and the global view. Image tokens
are negative ids (``-1`` for ``<|image_1|>``), not a vocabulary token.

mlx-vlm 0.7.10 builds the vision tower from a fixed CLIP ViT-L/14-336 description
(``VisionModel.CLIP_VIT_LARGE_PATCH14_336_CONFIG``: 1024 wide, 24 layers) whatever
config.json says; 24 layers of it are 300M parameters, far from tiny. This checkpoint
keeps the width (the merge and the separators depend on it) at one layer with narrower
MLPs, and says so in ``vision_config``; ``mmserve.engines.families.phi3_v.tower_shape``
makes ``mlx_vlm.load`` build that shape (real checkpoints keep 24 layers).
"""

from __future__ import annotations

from pathlib import Path

from ..family import Family, Vocabulary, write_json, write_random_model, write_tokenizer

VOCAB = Vocabulary(
    special=("<unk>", "<s>", "</s>", "<|endoftext|>"),
    plain=(
        "<|assistant|>",
        "<|placeholder1|>",
        "<|placeholder2|>",
        "<|placeholder3|>",
        "<|placeholder4|>",
        "<|system|>",
        "<|end|>",
        "<|placeholder5|>",
        "<|placeholder6|>",
        "<|user|>",
    ),
)

# microsoft/Phi-3.5-vision-instruct's chat template; images are "<|image_N|>\n" in the content.
CHAT_TEMPLATE = (
    "{% for message in messages %}{{'<|' + message['role'] + '|>' + '\\n' + message['content'] + '<|end|>\\n' }}"
    "{% endfor %}{% if add_generation_prompt and messages[-1]['role'] != 'assistant' %}"
    "{{- '<|assistant|>\\n' -}}{% endif %}"
)

# The real tower has 24 layers with 4096-wide MLPs (see the module docstring): two such
# layers over an image's five 336 px views took half a minute on the CPU.
TOWER = {"num_hidden_layers": 1, "intermediate_size": 1024}


def write(directory: Path, seed: int) -> None:
    from mmserve.engines.families.phi3_v import tower_shape

    head_dim = 32
    config = {
        "architectures": ["Phi3VForCausalLM"],
        "model_type": "phi3_v",
        "bos_token_id": VOCAB["<s>"],
        "eos_token_id": VOCAB["</s>"],
        "pad_token_id": VOCAB["<|endoftext|>"],
        "embd_layer": {
            "embedding_cls": "image",
            "hd_transform_order": "sub_glb",
            "projection_cls": "mlp",
            "use_hd_transform": True,
            "with_learnable_separator": True,
        },
        "img_processor": {
            "image_dim_out": 1024,
            "model_name": "openai/clip-vit-large-patch14-336",
            "name": "clip_vision_model",
            "num_img_tokens": 144,
        },
        "vision_config": TOWER,
        "hidden_act": "silu",
        "hidden_size": 64,
        "intermediate_size": 128,
        "num_hidden_layers": 2,
        "num_attention_heads": 2,
        "num_key_value_heads": 2,
        "rms_norm_eps": 1e-5,
        "rope_theta": 10000.0,
        "rope_scaling": {
            "type": "su",
            "short_factor": [1.0] * (head_dim // 2),
            "long_factor": [1.0 + i / 8 for i in range(head_dim // 2)],
        },
        "max_position_embeddings": 131072,
        "original_max_position_embeddings": 4096,
        "sliding_window": 262144,
        "tie_word_embeddings": False,
        "vocab_size": VOCAB.size,
        "torch_dtype": "float32",
    }
    with tower_shape(**TOWER):
        write_random_model(directory, config, kind="vision", seed=seed)
    write_tokenizer(
        directory,
        VOCAB,
        chat_template=CHAT_TEMPLATE,
        eos="<|end|>",
        bos="<s>",
        pad="<|endoftext|>",
        unk="<unk>",
        add_bos=True,
        extra={"processor_class": "Phi3VProcessor"},
    )
    write_json(
        directory / "preprocessor_config.json",
        {
            "do_convert_rgb": True,
            "image_mean": [0.48145466, 0.4578275, 0.40821073],
            "image_processor_type": "Phi3VImageProcessor",
            "image_std": [0.26862954, 0.26130258, 0.27577711],
            "num_crops": 4,
            "num_img_tokens": 144,
            "processor_class": "Phi3VProcessor",
        },
    )


FAMILY = Family(
    "phi3_v",
    "vision",
    write,
    examples=("mlx-community/Phi-3.5-vision-instruct-4bit", "microsoft/Phi-3.5-vision-instruct"),
)
