"""What mlx-vlm's real processor makes of an image, for the family geometry tests."""

from __future__ import annotations

import importlib
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from guards.families import Checkpoint, geometry_for
from mmserve.synth.families import FAMILIES

SIZES = [(200, 150), (1024, 768), (2550, 3300), (2000, 120)]  # small, photo, page, extreme aspect


def image(width: int, height: int) -> Image.Image:
    """A noise image (a flat one could let a processor skip work)."""
    pixels = np.random.default_rng(width * 7919 + height).integers(0, 256, (height, width, 3), dtype=np.uint8)
    return Image.fromarray(pixels)


def checkpoint(path: Path) -> Checkpoint:
    def read(name: str) -> dict:
        file = path / name
        return json.loads(file.read_text()) if file.exists() else {}

    return Checkpoint(read("config.json"), read("preprocessor_config.json"), read("processor_config.json"))


@dataclass
class Served:
    """A tiny checkpoint loaded as the vision worker loads it, with its geometry."""

    path: Path
    model: object
    processor: object
    family: str

    @classmethod
    def write(cls, family: str, path: Path, engine_module: str | None = None) -> Served:
        FAMILIES[family].write(path, 0)
        return cls.load(path, engine_module or family)

    @classmethod
    def load(cls, path: Path, engine_module: str) -> Served:
        import mlx_vlm

        model, processor = mlx_vlm.load(str(path))
        adapter = importlib.import_module(f"mmserve.engines.families.{engine_module}")
        if hasattr(adapter, "after_load"):
            adapter.after_load(model, processor)
        return cls(path, model, processor, engine_module)

    @property
    def image_token(self) -> int:
        return self.model.config.image_token_index

    def geometry(self):
        return geometry_for(checkpoint(self.path))

    def prompt(self, images: int) -> str:
        from mlx_vlm.prompt_utils import apply_chat_template

        return apply_chat_template(
            self.processor, self.model.config, [{"role": "user", "content": "Describe it."}], num_images=images
        )

    def inputs(self, width: int | None = None, height: int | None = None, **kwargs) -> dict:
        """``prepare_inputs`` for one image of this size (none without a size), as the worker calls it."""
        from mlx_vlm.utils import prepare_inputs, should_add_special_tokens

        images = [image(width, height)] if width else None
        return prepare_inputs(
            self.processor,
            images=images,
            prompts=self.prompt(1 if images else 0),
            image_token_index=self.image_token,
            add_special_tokens=should_add_special_tokens(self.model.config.model_type, self.processor),
            **kwargs,
        )

    def counts(self, width: int, height: int) -> tuple[int, int, tuple]:
        """(image-token ids, all ids, pixel_values shape) for an image sent at ``snap``'s size."""
        geometry = self.geometry()
        sent = geometry.snap(width, height)
        inputs = self.inputs(*sent, **geometry.processor_kwargs(*sent))
        ids = np.array(inputs["input_ids"])
        return int((ids == self.image_token).sum()), ids.shape[1], tuple(inputs["pixel_values"].shape)

    def text_only(self) -> int:
        return np.array(self.inputs()["input_ids"]).shape[1]

    def wrapper(self, width: int, height: int) -> int:
        """Prompt tokens the image takes beyond its image tokens and size-dependent extras."""
        layout = self.geometry().layout(*self.geometry().snap(width, height))
        return self.counts(width, height)[1] - self.text_only() - layout.tokens - layout.extra_tokens

    def generate(self, width: int, height: int) -> str:
        import mlx_vlm

        return mlx_vlm.generate(
            self.model, self.processor, self.prompt(1), image=[image(width, height)], max_tokens=8, temperature=0
        ).text
