"""Qwen3 thinking checkpoints: the chat template opens ``<think>`` for the model (or closes
it empty with ``enable_thinking: false``), so the reply begins inside its thinking."""

from __future__ import annotations

from pathlib import Path

from ..family import Family
from ._chat import text_config, write_text

CONFIG = {
    "model_type": "qwen3",
    "hidden_size": 64,
    "num_hidden_layers": 2,
    "intermediate_size": 128,
    "num_attention_heads": 4,
    "num_key_value_heads": 2,
    "head_dim": 32,
    "rms_norm_eps": 1e-06,
    "rope_theta": 5000000.0,
    "max_position_embeddings": 262144,
    "tie_word_embeddings": True,
}


def write(directory: Path, seed: int) -> None:
    write_text(directory, seed, text_config("chatml_thinking", **CONFIG), "chatml_thinking")


FAMILY = Family("qwen3_thinking", "text", write, examples=("Qwen/Qwen3-4B-Thinking-2507",))
