"""Llama 3.x (dense GQA, llama3 rope scaling)."""

from __future__ import annotations

from pathlib import Path

from ..family import Family
from ._chat import text_config, write_text


def write(directory: Path, seed: int) -> None:
    config = text_config('llama3', **{'model_type': 'llama', 'hidden_size': 64, 'num_hidden_layers': 2, 'intermediate_size': 128, 'num_attention_heads': 4, 'num_key_value_heads': 2, 'rms_norm_eps': 1e-05, 'rope_theta': 500000.0, 'max_position_embeddings': 131072, 'rope_scaling': {'factor': 8.0, 'low_freq_factor': 1.0, 'high_freq_factor': 4.0, 'original_max_position_embeddings': 8192, 'rope_type': 'llama3'}, 'tie_word_embeddings': True})
    write_text(directory, seed, config, 'llama3')


FAMILY = Family('llama', "text", write, examples=('meta-llama/Llama-3.2-1B-Instruct',))
