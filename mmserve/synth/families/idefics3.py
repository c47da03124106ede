"""Idefics3 (8B, Llama 3): 364-px tiles of a SigLIP tower, 169 tokens each, plus a global image.

The processor resizes every image's longest edge to 1456 px, rounds both sides up to
multiples of 364 and cuts that many tiles, each written as
``<fake_token_around_image><row_i_col_j>`` + 169 ``<image>``; a ``\\n`` ends every
row, then ``\\n<fake_token_around_image><global-img>`` + 169 ``<image>`` +
``<fake_token_around_image>`` for the whole image at 364 px.
"""

from __future__ import annotations

from pathlib import Path

from ..family import Family, Vocabulary, write_json, write_random_model, write_tokenizer

GRID = tuple(f"<row_{r}_col_{c}>" for r in range(1, 7) for c in range(1, 7))


def vocabulary(bos: str, eos: str) -> Vocabulary:
    """The family's added tokens: the tile grid's ``<row_i_col_j>`` names are single tokens."""
    return Vocabulary(
        special=(bos, eos, "<fake_token_around_image>", "<image>", "<end_of_utterance>", "<global-img>") + GRID
    )


VOCAB = vocabulary("<|begin_of_text|>", "<|end_of_text|>")

# HuggingFaceM4/Idefics3-8B-Llama3's chat template (SmolVLM's starts with <|im_start|> instead).
CHAT_TEMPLATE = (
    "<|begin_of_text|>{% for message in messages %}{{message['role'].capitalize()}}"
    "{% if message['content'][0]['type'] == 'image' %}{{':'}}{% else %}{{': '}}{% endif %}"
    "{% for line in message['content'] %}{% if line['type'] == 'text' %}{{line['text']}}"
    "{% elif line['type'] == 'image' %}{{ '<image>' }}{% endif %}{% endfor %}<end_of_utterance>\n"
    "{% endfor %}{% if add_generation_prompt %}{{ 'Assistant:' }}{% endif %}"
)


def write_idefics3_like(
    directory: Path,
    seed: int,
    *,
    model_type: str,
    vision_model_type: str,
    vocab: Vocabulary,
    chat_template: str,
    bos: str,
    eos: str,
    tile: int,
    patch: int,
    scale_factor: int,
    longest_edge: int,
    processor_class: str,
    image_processor_type: str,
) -> None:
    """An Idefics3-style checkpoint (Idefics3, SmolVLM) at tiny hidden sizes with the real tiling."""
    image_seq_len = (tile // patch) ** 2 // scale_factor**2
    config = {
        "architectures": [f"{'Idefics3' if model_type == 'idefics3' else 'SmolVLM'}ForConditionalGeneration"],
        "model_type": model_type,
        "image_token_id": vocab["<image>"],
        "scale_factor": scale_factor,
        "vocab_size": vocab.size,
        "tie_word_embeddings": False,
        "text_config": {
            "model_type": "llama",
            "hidden_size": 64,
            "intermediate_size": 128,
            "num_hidden_layers": 2,
            "num_attention_heads": 2,
            "num_key_value_heads": 1,
            "rms_norm_eps": 1e-5,
            "rope_theta": 500000.0,
            "max_position_embeddings": 131072,
            "vocab_size": vocab.size,
            "tie_word_embeddings": False,
        },
        "vision_config": {
            "model_type": vision_model_type,
            "hidden_size": 64,
            "intermediate_size": 128,
            "num_attention_heads": 2,
            "num_hidden_layers": 2,
            "image_size": tile,
            "patch_size": patch,
            "layer_norm_eps": 1e-6,
        },
        "torch_dtype": "float32",
    }
    write_random_model(directory, config, kind="vision", seed=seed)
    write_tokenizer(
        directory,
        vocab,
        chat_template=chat_template,
        eos=eos,
        bos=bos,
        pad=eos,
        add_bos=False,
        extra={"processor_class": processor_class},
    )
    write_json(
        directory / "preprocessor_config.json",
        {
            "do_convert_rgb": True,
            "do_image_splitting": True,
            "do_normalize": True,
            "do_pad": True,
            "do_rescale": True,
            "do_resize": True,
            "image_mean": [0.5, 0.5, 0.5],
            "image_processor_type": image_processor_type,
            "image_std": [0.5, 0.5, 0.5],
            "max_image_size": {"longest_edge": tile},
            "processor_class": processor_class,
            "resample": 1,
            "rescale_factor": 1 / 255,
            "size": {"longest_edge": longest_edge},
        },
    )
    write_json(directory / "processor_config.json", {"image_seq_len": image_seq_len, "processor_class": processor_class})


def write(directory: Path, seed: int) -> None:
    write_idefics3_like(
        directory,
        seed,
        model_type="idefics3",
        vision_model_type="idefics3",
        vocab=VOCAB,
        chat_template=CHAT_TEMPLATE,
        bos="<|begin_of_text|>",
        eos="<|end_of_text|>",
        tile=364,
        patch=14,
        scale_factor=2,
        longest_edge=4 * 364,
        processor_class="Idefics3Processor",
        image_processor_type="Idefics3ImageProcessor",
    )


FAMILY = Family(
    "idefics3",
    "vision",
    write,
    examples=("HuggingFaceM4/Idefics3-8B-Llama3", "mlx-community/Idefics3-8B-Llama3-4bit"),
)
