"""Gemma 3 1B (text only): five sliding-window layers to one global."""

from __future__ import annotations

from pathlib import Path

from ..family import Family
from ._chat import text_config, write_text


def write(directory: Path, seed: int) -> None:
    config = text_config('gemma', **{'model_type': 'gemma3_text', 'hidden_size': 64, 'num_hidden_layers': 6, 'intermediate_size': 128, 'num_attention_heads': 2, 'num_key_value_heads': 1, 'head_dim': 32, 'query_pre_attn_scalar': 32, 'rms_norm_eps': 1e-06, 'rope_theta': 1000000.0, 'rope_local_base_freq': 10000.0, 'rope_scaling': None, 'sliding_window': 512, 'sliding_window_pattern': 6, 'max_position_embeddings': 32768})
    write_text(directory, seed, config, 'gemma')


FAMILY = Family('gemma3_text', "text", write, examples=('google/gemma-3-1b-it',))
