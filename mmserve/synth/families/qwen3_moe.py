"""Qwen3 MoE (sparse experts in every layer)."""

from __future__ import annotations

from pathlib import Path

from ..family import Family
from ._chat import text_config, write_text


def write(directory: Path, seed: int) -> None:
    config = text_config('chatml', **{'model_type': 'qwen3_moe', 'hidden_size': 64, 'num_hidden_layers': 2, 'intermediate_size': 128, 'num_attention_heads': 4, 'num_key_value_heads': 2, 'head_dim': 16, 'num_experts': 4, 'num_experts_per_tok': 2, 'decoder_sparse_step': 1, 'mlp_only_layers': [], 'moe_intermediate_size': 32, 'norm_topk_prob': True, 'rms_norm_eps': 1e-06, 'rope_theta': 1000000.0, 'max_position_embeddings': 40960, 'tie_word_embeddings': False})
    write_text(directory, seed, config, 'chatml')


FAMILY = Family('qwen3_moe', "text", write, examples=('Qwen/Qwen3-30B-A3B',))
