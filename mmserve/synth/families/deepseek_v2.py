"""DeepSeek-V2-Lite: MLA (mlx-lm caches full keys and values) and MoE with shared experts."""

from __future__ import annotations

from pathlib import Path

from ..family import Family
from ._chat import text_config, write_text


def write(directory: Path, seed: int) -> None:
    config = text_config('deepseek', **{'model_type': 'deepseek_v2', 'hidden_size': 64, 'num_hidden_layers': 2, 'intermediate_size': 128, 'moe_intermediate_size': 32, 'num_attention_heads': 4, 'num_key_value_heads': 4, 'n_shared_experts': 1, 'n_routed_experts': 4, 'routed_scaling_factor': 1.0, 'kv_lora_rank': 32, 'q_lora_rank': None, 'qk_rope_head_dim': 8, 'v_head_dim': 16, 'qk_nope_head_dim': 16, 'topk_method': 'greedy', 'n_group': 1, 'topk_group': 1, 'num_experts_per_tok': 2, 'moe_layer_freq': 1, 'first_k_dense_replace': 1, 'rms_norm_eps': 1e-06, 'rope_theta': 10000.0, 'max_position_embeddings': 163840, 'rope_scaling': {'beta_fast': 32, 'beta_slow': 1, 'factor': 40, 'mscale': 0.707, 'mscale_all_dim': 0.707, 'original_max_position_embeddings': 4096, 'type': 'yarn'}})
    write_text(directory, seed, config, 'deepseek')


FAMILY = Family('deepseek_v2', "text", write, examples=('deepseek-ai/DeepSeek-V2-Lite-Chat',))
