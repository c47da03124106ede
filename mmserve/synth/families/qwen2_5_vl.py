"""Qwen2.5-VL: the tiny checkpoint ``mmserve.synth.synthesize`` writes as its vision model."""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

from .. import synthesize
from ..family import Family


def write(directory: Path, seed: int) -> None:
    with tempfile.TemporaryDirectory(prefix="qwen2_5_vl-", dir=directory) as staging:
        vision = synthesize(staging, seed=seed, profile="tiny").vision
        for item in vision.iterdir():
            shutil.move(str(item), directory / item.name)


FAMILY = Family(
    "qwen2_5_vl", "vision", write, examples=("Qwen/Qwen2.5-VL-3B-Instruct", "mlx-community/Qwen2.5-VL-3B-Instruct-4bit")
)
