"""Shared steps of the family geometry tests: synthesize, load, run the real processor, count."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

from PIL import Image

from guards.families import Checkpoint, Geometry, geometry_for

# small, photo, page, extreme aspect (both ways)
SIZES = [(200, 150), (1024, 768), (2550, 3300), (2000, 120), (120, 2000)]


def read_checkpoint(path: Path) -> Checkpoint:
    """config.json, preprocessor_config.json and processor_config.json of a checkpoint directory."""

    def read(name: str) -> dict:
        file = path / name
        return json.loads(file.read_text()) if file.exists() else {}

    return Checkpoint(read("config.json"), read("preprocessor_config.json"), read("processor_config.json"))


def synthesize(family, tmp_path_factory) -> Path:
    """The family's tiny checkpoint, written once into a fresh directory."""
    path = tmp_path_factory.mktemp(family.name)
    family.write(path, 0)
    return path


@dataclass
class Loaded:
    """A tiny checkpoint loaded with mlx-vlm, its geometry and a one-image prompt."""

    model: object
    processor: object
    geometry: Geometry
    image_token_id: int
    prompt: str
    counted: dict = field(default_factory=dict)

    def tokenizer(self):
        return getattr(self.processor, "tokenizer", self.processor)

    def prepare(self, image: Image.Image, **kwargs) -> dict:
        from mlx_vlm.utils import prepare_inputs

        return prepare_inputs(
            self.processor, images=[image], prompts=self.prompt, image_token_index=self.image_token_id, **kwargs
        )

    def count(self, image: Image.Image, *, remember: bool = True, **kwargs) -> tuple[int, int, dict]:
        """(image-token ids, all ids, the inputs) of the prompt with ``image`` after the processor.

        Remembered per image size when no options are given (the tests' images depend on the size only).
        """
        key = image.size if remember and not kwargs else None
        if key is not None and key in self.counted:
            return self.counted[key]
        inputs = self.prepare(image, **kwargs)
        ids = inputs["input_ids"][0].tolist()
        result = sum(i == self.image_token_id for i in ids), len(ids), inputs
        if key is not None:
            self.counted[key] = result
        return result

    def text_only(self, placeholder: str) -> int:
        """Tokens of the prompt without the image: its ``placeholder`` (one special token) left out."""
        return len(self.tokenizer()(self.prompt, add_special_tokens=False)["input_ids"]) - 1


def load(path: Path, image_token_id: int) -> Loaded:
    import mlx_vlm
    from mlx_vlm.prompt_utils import apply_chat_template

    model, processor = mlx_vlm.load(str(path))
    geometry = geometry_for(read_checkpoint(path))
    prompt = apply_chat_template(processor, model.config, "Describe this.", num_images=1)
    return Loaded(model, processor, geometry, image_token_id, prompt)


def picture(width: int, height: int) -> Image.Image:
    """A deterministic non-uniform RGB image (so no tile is all zeros, which Idefics3 drops)."""
    image = Image.linear_gradient("L").resize((width, height))
    return Image.merge("RGB", (image, image.transpose(Image.Transpose.FLIP_LEFT_RIGHT), Image.new("L", (width, height), 90)))
