"""Molmo (7B-D, 7B-O, MolmoE-1B): a CLIP ViT-L/14 at 336 px over overlapping crops plus a global view.

The processor tiles the image into up to ``max_crops`` 336-px crops that overlap by
4 patches a side, adds the whole image at 336 px, and prepends the image tokens to
the prompt itself (the chat template has no image placeholder): per view
``<im_start>``, rows of 2x2-pooled ``<im_patch>`` tokens each ended by ``<im_col>``,
``<im_end>``. Those four tokens live in the 128 ids after the text vocabulary
(``additional_vocab_size``), as in the real checkpoints.

mlx-vlm reads Molmo's shapes from nested ``text_config`` / ``vision_config`` (its
defaults are Molmo-7B-D's); the real flat keys are kept alongside. The tower here has
two layers, so it concatenates layers ``[-1, -2]`` instead of the real ``[-2, -9]``.
"""

from __future__ import annotations

from pathlib import Path

from ..family import Family, Vocabulary, write_json, write_random_model, write_tokenizer

ADDITIONAL = 128
VOCAB = Vocabulary(
    special=(
        "<|endoftext|>",
        "<im_start>",
        "<im_end>",
        "<im_patch>",
        "<im_col>",
        "<|image|>",
        *(f"<additional_{i}>" for i in range(ADDITIONAL - 5)),
    )
)
TEXT = VOCAB.size - ADDITIONAL
assert VOCAB["<im_start>"] == TEXT

# allenai/Molmo-7B-D-0924's chat template.
CHAT_TEMPLATE = (
    "{% for message in messages -%}"
    "{%- if (loop.index % 2 == 1 and message['role'] != 'user') or "
    "(loop.index % 2 == 0 and message['role'].lower() != 'assistant') -%}"
    "{{ raise_exception('Conversation roles must alternate user/assistant/user/assistant/...') }}{%- endif -%}"
    "{{ message['role'].capitalize() + ': ' + message['content'] }}"
    "{%- if not loop.last -%}{{ ' ' }}{%- endif %}{%- endfor -%}"
    "{%- if add_generation_prompt -%}{{ ' Assistant:' }}{%- endif %}"
)


def write(directory: Path, seed: int) -> None:
    text = {
        "model_type": "molmo",
        "d_model": 64,
        "n_heads": 2,
        "n_kv_heads": 1,
        "n_layers": 2,
        "mlp_ratio": 4,
        "mlp_hidden_size": 256,
        "max_position_embeddings": 4096,
        "max_sequence_length": 4096,
        "vocab_size": TEXT,
        "embedding_size": TEXT,
        "additional_vocab_size": ADDITIONAL,
        "layer_norm_eps": 1e-6,
        "rope_theta": 1000000.0,
        "weight_tying": False,
    }
    vision = {
        "model_type": "molmo",
        "image_default_input_size": [336, 336],
        "image_patch_size": 14,
        "image_pos_patch_size": 14,
        "hidden_size": 128,  # the projector's width (the real 18944 = mlp_hidden_size / 2)
        "image_emb_dim": 64,
        "image_num_heads": 2,
        "image_num_key_value_heads": 2,
        "image_num_layers": 2,
        "image_head_dim": 32,
        "image_mlp_dim": 128,
        "image_num_pos": 577,
        "image_norm_eps": 1e-5,
        "d_model": 64,
        "image_pooling_h": 2,
        "image_pooling_w": 2,
        "vit_layers": [-1, -2],
        "image_pooling_2d": "attention-meanq",
        "image_padding_embed": "pad_and_partial_pad",
    }
    config = {
        "architectures": ["MolmoForCausalLM"],
        "model_type": "molmo",
        **{k: v for k, v in text.items() if k != "model_type"},
        "image_pooling_2d": "attention-meanq",
        "image_projector": "mlp",
        "eos_token_id": VOCAB["<|endoftext|>"],
        "pad_token_id": VOCAB["<|endoftext|>"],
        "text_config": text,
        "vision_config": vision,
        "torch_dtype": "float32",
    }
    write_random_model(directory, config, kind="vision", seed=seed)
    write_tokenizer(
        directory,
        VOCAB,
        chat_template=CHAT_TEMPLATE,
        eos="<|endoftext|>",
        pad="<|endoftext|>",
        extra={"processor_class": "MolmoProcessor"},
    )
    write_json(
        directory / "preprocessor_config.json",
        {
            "base_image_input_size": [336, 336],
            "do_normalize": True,
            "image_mean": [0.48145466, 0.4578275, 0.40821073],
            "image_padding_mask": True,
            "image_patch_size": 14,
            "image_processor_type": "MolmoImageProcessor",
            "image_std": [0.26862954, 0.26130258, 0.27577711],
            "image_token_length_h": 12,
            "image_token_length_w": 12,
            "max_crops": 12,
            "overlap_margins": [4, 4],
            "processor_class": "MolmoProcessor",
        },
    )


FAMILY = Family("molmo", "vision", write, examples=("mlx-community/Molmo-7B-D-0924-4bit", "allenai/Molmo-7B-O-0924"))
