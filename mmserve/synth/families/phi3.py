"""Phi-3 / Phi-3.5 mini (fused qkv, LongRoPE to 128k)."""

from __future__ import annotations

from pathlib import Path

from ..family import Family
from ._chat import text_config, write_text


def write(directory: Path, seed: int) -> None:
    config = text_config('phi3', **{'model_type': 'phi3', 'hidden_size': 64, 'num_hidden_layers': 2, 'intermediate_size': 128, 'num_attention_heads': 4, 'num_key_value_heads': 4, 'rms_norm_eps': 1e-05, 'rope_theta': 10000.0, 'max_position_embeddings': 131072, 'original_max_position_embeddings': 4096, 'rope_scaling': {'type': 'longrope', 'short_factor': [1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0], 'long_factor': [1.5, 1.5, 1.5, 1.5, 1.5, 1.5, 1.5, 1.5]}, 'tie_word_embeddings': False})
    write_text(directory, seed, config, 'phi3')


FAMILY = Family('phi3', "text", write, examples=('microsoft/Phi-3.5-mini-instruct',))
