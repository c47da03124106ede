"""IBM Granite 4.0 hybrid: Mamba-2 layers (fixed state) with a few attention layers, MoE."""

from __future__ import annotations

from pathlib import Path

from ..family import Family
from ._chat import text_config, write_text


def write(directory: Path, seed: int) -> None:
    config = text_config('granite', **{'model_type': 'granitemoehybrid', 'hidden_size': 64, 'num_hidden_layers': 4, 'intermediate_size': 128, 'num_attention_heads': 4, 'num_key_value_heads': 2, 'attention_bias': False, 'embedding_multiplier': 12.0, 'attention_multiplier': 0.0078125, 'logits_scaling': 6.0, 'residual_multiplier': 0.22, 'layer_types': ['mamba', 'mamba', 'attention', 'mamba'], 'rms_norm_eps': 1e-05, 'num_local_experts': 4, 'num_experts_per_tok': 2, 'shared_intermediate_size': 128, 'mamba_n_heads': 8, 'mamba_d_head': 16, 'mamba_proj_bias': False, 'mamba_d_state': 16, 'mamba_d_conv': 4, 'mamba_n_groups': 1, 'mamba_conv_bias': True, 'position_embedding_type': 'nope', 'max_position_embeddings': 131072, 'tie_word_embeddings': True})
    write_text(directory, seed, config, 'granite')


FAMILY = Family('granitemoehybrid', "text", write, examples=('ibm-granite/granite-4.0-h-tiny',))
