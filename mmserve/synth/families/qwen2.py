"""Qwen2.5 (dense GQA, q/k/v biases) with the YaRN rope scaling Qwen documents for 128k."""

from __future__ import annotations

from pathlib import Path

from ..family import Family
from ._chat import text_config, write_text


def write(directory: Path, seed: int) -> None:
    config = text_config('chatml', **{'model_type': 'qwen2', 'hidden_size': 64, 'num_hidden_layers': 2, 'intermediate_size': 128, 'num_attention_heads': 4, 'num_key_value_heads': 2, 'rms_norm_eps': 1e-06, 'rope_theta': 1000000.0, 'max_position_embeddings': 32768, 'rope_scaling': {'factor': 4.0, 'original_max_position_embeddings': 32768, 'type': 'yarn'}, 'tie_word_embeddings': True})
    write_text(directory, seed, config, 'chatml')


FAMILY = Family('qwen2', "text", write, examples=('Qwen/Qwen2.5-7B-Instruct',))
