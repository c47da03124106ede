"""Gemma 3 4B and up, as the text engine loads it: the ``gemma3`` checkpoint (a ``text_config``
wrapper with a vision tower mlx-lm drops), plus the top-level ``vocab_size`` mlx-lm reads
(its default is the real 262,208)."""

from __future__ import annotations

import json
from pathlib import Path

from ..family import Family, write_json
from . import gemma3


def write(directory: Path, seed: int) -> None:
    gemma3.write(directory, seed)
    config = json.loads((directory / "config.json").read_text(encoding="utf-8"))
    config["vocab_size"] = config["text_config"]["vocab_size"]
    write_json(directory / "config.json", config)


FAMILY = Family("gemma3_wrapped", "text", write, examples=("mlx-community/gemma-3-4b-it-4bit",))
