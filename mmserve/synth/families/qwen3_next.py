"""Qwen3-Next: gated-delta linear attention (fixed state) with one full-attention layer in four, MoE."""

from __future__ import annotations

from pathlib import Path

from ..family import Family
from ._chat import text_config, write_text


def write(directory: Path, seed: int) -> None:
    config = text_config('chatml', **{'model_type': 'qwen3_next', 'hidden_size': 64, 'num_hidden_layers': 4, 'intermediate_size': 128, 'num_attention_heads': 4, 'num_key_value_heads': 2, 'head_dim': 32, 'linear_num_value_heads': 4, 'linear_num_key_heads': 2, 'linear_key_head_dim': 16, 'linear_value_head_dim': 16, 'linear_conv_kernel_dim': 4, 'num_experts': 4, 'num_experts_per_tok': 2, 'decoder_sparse_step': 1, 'shared_expert_intermediate_size': 32, 'mlp_only_layers': [], 'moe_intermediate_size': 32, 'norm_topk_prob': True, 'full_attention_interval': 4, 'rms_norm_eps': 1e-06, 'rope_theta': 10000000.0, 'partial_rotary_factor': 0.25, 'max_position_embeddings': 262144, 'tie_word_embeddings': False})
    write_text(directory, seed, config, 'chatml')


FAMILY = Family('qwen3_next', "text", write, examples=('Qwen/Qwen3-Next-80B-A3B-Instruct',))
