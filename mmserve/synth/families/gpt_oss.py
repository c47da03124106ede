"""gpt-oss: MoE, sliding-window (128) and full layers alternating, YaRN to 128k."""

from __future__ import annotations

from pathlib import Path

from ..family import Family
from ._chat import text_config, write_text


def write(directory: Path, seed: int) -> None:
    config = text_config('harmony', **{'model_type': 'gpt_oss', 'hidden_size': 64, 'num_hidden_layers': 4, 'intermediate_size': 64, 'num_attention_heads': 4, 'num_key_value_heads': 2, 'head_dim': 16, 'num_local_experts': 4, 'num_experts_per_tok': 2, 'rms_norm_eps': 1e-05, 'sliding_window': 128, 'rope_theta': 150000, 'layer_types': ['sliding_attention', 'full_attention', 'sliding_attention', 'full_attention'], 'rope_scaling': {'rope_type': 'yarn', 'factor': 32.0, 'beta_fast': 32.0, 'beta_slow': 1.0, 'original_max_position_embeddings': 4096, 'truncate': False}, 'max_position_embeddings': 131072})
    write_text(directory, seed, config, 'harmony')


FAMILY = Family('gpt_oss', "text", write, examples=('openai/gpt-oss-20b',))
