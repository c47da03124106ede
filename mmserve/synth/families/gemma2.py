"""Gemma 2 (soft-capped logits, alternating window in HF; mlx-lm keeps every layer's KV)."""

from __future__ import annotations

from pathlib import Path

from ..family import Family
from ._chat import text_config, write_text


def write(directory: Path, seed: int) -> None:
    config = text_config('gemma', **{'model_type': 'gemma2', 'hidden_size': 64, 'num_hidden_layers': 4, 'intermediate_size': 128, 'num_attention_heads': 2, 'num_key_value_heads': 1, 'head_dim': 32, 'rms_norm_eps': 1e-06, 'query_pre_attn_scalar': 32, 'attn_logit_softcapping': 50.0, 'final_logit_softcapping': 30.0, 'rope_theta': 10000.0, 'max_position_embeddings': 8192, 'sliding_window': 4096})
    write_text(directory, seed, config, 'gemma')


FAMILY = Family('gemma2', "text", write, examples=('google/gemma-2-2b-it',))
