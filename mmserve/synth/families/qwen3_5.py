"""Qwen3.5: a ``text_config`` wrapper around a gated-delta hybrid (three linear layers to one full)."""

from __future__ import annotations

from pathlib import Path

from ..family import Family
from ._chat import text_config, write_text


def write(directory: Path, seed: int) -> None:
    config = {**{'model_type': 'qwen3_5', 'architectures': ['Qwen3_5ForConditionalGeneration']},
              "text_config": text_config('chatml', **{'model_type': 'qwen3_5_text', 'hidden_size': 64, 'intermediate_size': 128, 'num_hidden_layers': 4, 'num_attention_heads': 4, 'num_key_value_heads': 2, 'head_dim': 32, 'rms_norm_eps': 1e-06, 'max_position_embeddings': 262144, 'linear_num_value_heads': 4, 'linear_num_key_heads': 2, 'linear_key_head_dim': 16, 'linear_value_head_dim': 16, 'linear_conv_kernel_dim': 4, 'full_attention_interval': 4, 'tie_word_embeddings': False, 'rope_parameters': {'rope_type': 'default', 'rope_theta': 10000000.0, 'partial_rotary_factor': 0.25, 'mrope_section': [11, 11, 10], 'mrope_interleaved': True}})}
    config["eos_token_id"] = config["text_config"]["eos_token_id"]
    write_text(directory, seed, config, 'chatml')


FAMILY = Family('qwen3_5', "text", write, examples=('Qwen/Qwen3.5-27B',))
