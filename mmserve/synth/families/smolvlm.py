"""SmolVLM2 (256M / 500M): Idefics3's tiling with 512-px tiles of 64 tokens, longest edge 2048.

The processor is Idefics3's: every image's longest edge goes to 2048 px, both sides
are rounded up to multiples of 512 and cut into tiles, plus one global 512-px image.
(SmolVLM2-2.2B uses 384-px tiles of 81 tokens and a 1536-px longest edge; same rules.)
"""

from __future__ import annotations

from pathlib import Path

from ..family import Family
from .idefics3 import vocabulary, write_idefics3_like

VOCAB = vocabulary("<|im_start|>", "<|endoftext|>")

# HuggingFaceTB/SmolVLM2-256M-Video-Instruct's chat template.
CHAT_TEMPLATE = (
    "<|im_start|>{% for message in messages %}{{message['role'] | capitalize}}"
    "{% if message['content'][0]['type'] == 'image' %}{{':'}}{% else %}{{': '}}{% endif %}"
    "{% for line in message['content'] %}{% if line['type'] == 'text' %}{{line['text']}}"
    "{% elif line['type'] == 'image' %}{{ '<image>' }}{% elif line['type'] == 'video' %}{{ '<video>' }}"
    "{% endif %}{% endfor %}<end_of_utterance>\n"
    "{% endfor %}{% if add_generation_prompt %}{{ 'Assistant:' }}{% endif %}"
)


def write(directory: Path, seed: int) -> None:
    write_idefics3_like(
        directory,
        seed,
        model_type="smolvlm",
        vision_model_type="smolvlm_vision",
        vocab=VOCAB,
        chat_template=CHAT_TEMPLATE,
        bos="<|im_start|>",
        eos="<|endoftext|>",
        tile=512,
        patch=16,
        scale_factor=4,
        longest_edge=4 * 512,
        processor_class="SmolVLMProcessor",
        image_processor_type="SmolVLMImageProcessor",
    )


FAMILY = Family(
    "smolvlm",
    "vision",
    write,
    examples=("HuggingFaceTB/SmolVLM2-256M-Video-Instruct", "mlx-community/SmolVLM2-500M-Video-Instruct-mlx"),
)
