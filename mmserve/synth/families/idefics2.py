"""Idefics2 (8B, 8B-chatty): a SigLIP tower at up to 980 px, a perceiver to 64 latents per view.

With ``do_image_splitting`` (the real checkpoints' setting) the processor cuts every
image into four quarters plus the whole, five views of 64 ``<image>`` tokens each,
separated by ``<fake_token_around_image>``.
"""

from __future__ import annotations

from pathlib import Path

from ..family import Family, Vocabulary, write_json, write_random_model, write_tokenizer

VOCAB = Vocabulary(special=("<unk>", "<s>", "</s>", "<fake_token_around_image>", "<image>", "<end_of_utterance>"))

# HuggingFaceM4/idefics2-8b's chat template.
CHAT_TEMPLATE = (
    "{% for message in messages %}{{message['role'].capitalize()}}"
    "{% if message['content'][0]['type'] == 'image' %}{{':'}}{% else %}{{': '}}{% endif %}"
    "{% for line in message['content'] %}{% if line['type'] == 'text' %}{{line['text']}}"
    "{% elif line['type'] == 'image' %}{{ '<image>' }}{% endif %}{% endfor %}<end_of_utterance>\n"
    "{% endfor %}{% if add_generation_prompt %}{{ 'Assistant:' }}{% endif %}"
)


def write(directory: Path, seed: int) -> None:
    config = {
        "architectures": ["Idefics2ForConditionalGeneration"],
        "model_type": "idefics2",
        "image_token_id": VOCAB["<image>"],
        "tie_word_embeddings": False,
        "eos_token_id": [VOCAB["</s>"], VOCAB["<end_of_utterance>"]],
        "perceiver_config": {
            "hidden_act": "silu",
            "model_type": "idefics2",
            "num_key_value_heads": 1,
            "resampler_depth": 2,
            "resampler_head_dim": 16,
            "resampler_n_heads": 2,
            "resampler_n_latents": 64,
        },
        "text_config": {
            "model_type": "mistral",
            "hidden_size": 64,
            "intermediate_size": 128,
            "num_hidden_layers": 2,
            "num_attention_heads": 2,
            "num_key_value_heads": 1,
            "max_position_embeddings": 32768,
            "rms_norm_eps": 1e-5,
            "rope_theta": 10000.0,
            "sliding_window": 4096,
            "pad_token_id": 0,
            "vocab_size": VOCAB.size,
            "tie_word_embeddings": False,
        },
        "vision_config": {
            "model_type": "idefics2",
            "hidden_size": 64,
            "image_size": 980,
            "intermediate_size": 128,
            "num_attention_heads": 2,
            "num_hidden_layers": 2,
            "patch_size": 14,
        },
        "torch_dtype": "float32",
    }
    write_random_model(directory, config, kind="vision", seed=seed)
    write_tokenizer(
        directory,
        VOCAB,
        chat_template=CHAT_TEMPLATE,
        eos="</s>",
        bos="<s>",
        unk="<unk>",
        add_bos=True,
        extra={
            "additional_special_tokens": ["<fake_token_around_image>", "<image>", "<end_of_utterance>"],
            "processor_class": "Idefics2Processor",
        },
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
            "image_processor_type": "Idefics2ImageProcessor",
            "image_std": [0.5, 0.5, 0.5],
            "processor_class": "Idefics2Processor",
            "resample": 2,
            "rescale_factor": 0.00392156862745098,
            "size": {"longest_edge": 980, "shortest_edge": 378},
        },
    )
    write_json(directory / "processor_config.json", {"image_seq_len": 64, "processor_class": "Idefics2Processor"})


FAMILY = Family(
    "idefics2", "vision", write, examples=("mlx-community/idefics2-8b-chatty-4bit", "HuggingFaceM4/idefics2-8b")
)
