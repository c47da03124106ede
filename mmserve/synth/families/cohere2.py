"""Command R7B (cohere2): three sliding-window layers to one global, parallel blocks."""

from __future__ import annotations

from pathlib import Path

from ..family import Family
from ._chat import text_config, write_text


def write(directory: Path, seed: int) -> None:
    config = text_config('cohere', **{'model_type': 'cohere2', 'hidden_size': 64, 'head_dim': 16, 'num_hidden_layers': 4, 'intermediate_size': 128, 'num_attention_heads': 4, 'num_key_value_heads': 2, 'rope_theta': 50000.0, 'layer_norm_eps': 1e-05, 'logit_scale': 0.25, 'attention_bias': False, 'layer_norm_bias': False, 'sliding_window': 256, 'sliding_window_pattern': 4, 'max_position_embeddings': 131072})
    write_text(directory, seed, config, 'cohere')


FAMILY = Family('cohere2', "text", write, examples=('CohereForAI/c4ai-command-r7b-12-2024',))
