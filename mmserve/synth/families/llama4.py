"""Llama 4 (text of the ``text_config`` wrapper): chunked-attention layers, MoE every other layer."""

from __future__ import annotations

from pathlib import Path

from ..family import Family
from ._chat import text_config, write_text


def write(directory: Path, seed: int) -> None:
    config = {**{'model_type': 'llama4', 'architectures': ['Llama4ForConditionalGeneration']},
              "text_config": text_config('llama4', **{'model_type': 'llama4_text', 'attention_bias': False, 'attention_chunk_size': 8192, 'head_dim': 16, 'hidden_size': 64, 'interleave_moe_layer_step': 2, 'intermediate_size': 64, 'intermediate_size_mlp': 128, 'max_position_embeddings': 10485760, 'num_attention_heads': 4, 'num_experts_per_tok': 1, 'num_hidden_layers': 4, 'num_key_value_heads': 2, 'num_local_experts': 4, 'rms_norm_eps': 1e-05, 'rope_scaling': {'factor': 16.0, 'high_freq_factor': 4.0, 'low_freq_factor': 1.0, 'original_max_position_embeddings': 8192, 'rope_type': 'llama3'}, 'rope_theta': 500000.0, 'use_qk_norm': True, 'no_rope_layers': [1, 1, 1, 0]})}
    config["eos_token_id"] = config["text_config"]["eos_token_id"]
    write_text(directory, seed, config, 'llama4')


FAMILY = Family('llama4', "text", write, examples=('meta-llama/Llama-4-Scout-17B-16E-Instruct',))
