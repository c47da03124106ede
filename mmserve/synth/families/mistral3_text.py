"""Mistral-Small-3.1/3.2: a ``text_config`` wrapper (model_type mistral3) around a Mistral text model."""

from __future__ import annotations

from pathlib import Path

from ..family import Family
from ._chat import text_config, write_text


def write(directory: Path, seed: int) -> None:
    config = {**{'model_type': 'mistral3', 'architectures': ['Mistral3ForConditionalGeneration']},
              "text_config": text_config('mistral', **{'model_type': 'mistral', 'hidden_size': 64, 'num_hidden_layers': 2, 'intermediate_size': 128, 'num_attention_heads': 4, 'num_key_value_heads': 2, 'head_dim': 16, 'rms_norm_eps': 1e-05, 'rope_theta': 1000000000.0, 'max_position_embeddings': 131072, 'sliding_window': None})}
    config["eos_token_id"] = config["text_config"]["eos_token_id"]
    write_text(directory, seed, config, 'mistral')


FAMILY = Family('mistral3_text', "text", write, examples=('mistralai/Mistral-Small-3.1-24B-Instruct-2503',))
