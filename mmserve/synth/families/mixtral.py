"""Mixtral 8x7B style MoE."""

from __future__ import annotations

from pathlib import Path

from ..family import Family
from ._chat import text_config, write_text


def write(directory: Path, seed: int) -> None:
    config = text_config('mistral', **{'model_type': 'mixtral', 'hidden_size': 64, 'num_hidden_layers': 2, 'intermediate_size': 128, 'num_attention_heads': 4, 'num_key_value_heads': 2, 'num_local_experts': 4, 'num_experts_per_tok': 2, 'rms_norm_eps': 1e-05, 'rope_theta': 1000000.0, 'max_position_embeddings': 32768})
    write_text(directory, seed, config, 'mistral')


FAMILY = Family('mixtral', "text", write, examples=('mistralai/Mixtral-8x7B-Instruct-v0.1',))
