"""Mistral 7B v0.3 style (model_type mistral, served by mlx-lm's llama)."""

from __future__ import annotations

from pathlib import Path

from ..family import Family
from ._chat import text_config, write_text


def write(directory: Path, seed: int) -> None:
    config = text_config('mistral', **{'model_type': 'mistral', 'hidden_size': 64, 'num_hidden_layers': 2, 'intermediate_size': 128, 'num_attention_heads': 4, 'num_key_value_heads': 2, 'head_dim': 16, 'rms_norm_eps': 1e-05, 'rope_theta': 1000000.0, 'max_position_embeddings': 32768, 'sliding_window': None, 'tie_word_embeddings': False})
    write_text(directory, seed, config, 'mistral')


FAMILY = Family('mistral', "text", write, examples=('mistralai/Mistral-7B-Instruct-v0.3',))
