"""OLMo 2 (post-norm, q/k norms)."""

from __future__ import annotations

from pathlib import Path

from ..family import Family
from ._chat import text_config, write_text


def write(directory: Path, seed: int) -> None:
    config = text_config('chatml', **{'model_type': 'olmo2', 'hidden_size': 64, 'num_hidden_layers': 2, 'intermediate_size': 128, 'num_attention_heads': 4, 'num_key_value_heads': 4, 'rms_norm_eps': 1e-06, 'rope_theta': 500000.0, 'max_position_embeddings': 4096, 'tie_word_embeddings': False})
    write_text(directory, seed, config, 'chatml')


FAMILY = Family('olmo2', "text", write, examples=('allenai/OLMo-2-1124-7B-Instruct',))
