"""A family's tiny checkpoint with mlx-vlm's real processor and model, loaded as the vision engine loads them.

Shared by the family tests in ``tests/integration/guards/families`` and
``tests/integration/engines/families``: what is not already checked for every family by
``tests/integration/test_vision_families.py``.
"""

from __future__ import annotations

import json
import threading
from contextlib import nullcontext
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path

import numpy as np
from PIL import Image

from guards.families import Checkpoint, geometry_for
from mmserve.engines.families import adapter_for
from mmserve.synth.families import FAMILIES

# The sizes tests/integration/test_vision_families.py plans: small, photo, page, extreme aspects both ways.
SIZES = [(200, 150), (1024, 768), (2550, 3300), (2000, 120), (120, 2000)]


def image(width: int, height: int) -> Image.Image:
    """A noise image (a flat one could let a processor skip work, and Idefics3 drops all-zero tiles)."""
    pixels = np.random.default_rng(width * 7919 + height).integers(0, 256, (height, width, 3), dtype=np.uint8)
    return Image.fromarray(pixels)


def checkpoint(path: Path) -> Checkpoint:
    def read(name: str) -> dict:
        file = path / name
        return json.loads(file.read_text()) if file.exists() else {}

    return Checkpoint(read("config.json"), read("preprocessor_config.json"), read("processor_config.json"))


def on_a_thread(function):
    """``function()`` on a new thread with an MLX stream of its own, as mmserve's preparers run."""
    import mlx.core as mx

    outcome = {}

    def run():
        try:
            with mx.stream(mx.new_stream(mx.cpu)):
                outcome["value"] = function()
        except Exception as error:  # noqa: BLE001 - raised again on the calling thread
            outcome["error"] = error

    thread = threading.Thread(target=run)
    thread.start()
    thread.join()
    if "error" in outcome:
        raise outcome["error"]
    return outcome["value"]


@dataclass
class Served:
    """A tiny checkpoint loaded with mlx-vlm inside the family's ``before_load``, then its ``after_load``."""

    path: Path
    model: object
    processor: object
    measured: dict = field(default_factory=dict)

    @classmethod
    def write(cls, family: str, path: Path, *, after_load: bool = True, model: bool = True) -> Served:
        """Synthesize ``family``'s checkpoint into ``path`` and load it (``model=False``: the processor only)."""
        FAMILIES[family].write(path, 0)
        return cls.load(path, after_load=after_load, model=model)

    @classmethod
    def load(cls, path: Path, *, after_load: bool = True, model: bool = True) -> Served:
        import mlx_vlm
        from mlx_vlm.utils import load_processor

        config = json.loads((path / "config.json").read_text())
        adapter = adapter_for(config["model_type"])
        if not model:
            return cls(path, None, load_processor(path))
        with adapter.before_load(config) if adapter.before_load else nullcontext():
            loaded, processor = mlx_vlm.load(str(path))
        if after_load and adapter.after_load is not None:
            adapter.after_load(loaded, processor)
        return cls(path, loaded, processor)

    @cached_property
    def config(self) -> dict:
        return json.loads((self.path / "config.json").read_text())

    @cached_property
    def geometry(self):
        return geometry_for(checkpoint(self.path))

    @property
    def encode(self):
        return adapter_for(self.config["model_type"]).encode

    @cached_property
    def image_token(self) -> int:
        """The id the processor writes for image positions, chosen as the engine chooses it."""
        from mmserve.engines.vision import _token_id

        tokenizer = getattr(self.processor, "tokenizer", self.processor)
        config = self.config if self.model is None else vars(self.model.config)
        candidates = (
            getattr(self.processor, "image_token_id", None),
            _token_id(tokenizer, getattr(self.processor, "image_token", None)),
            _token_id(tokenizer, getattr(self.processor, "image_patch_token", None)),
            config.get("image_token_id"),
            config.get("image_token_index"),
        )
        return next(value for value in candidates if isinstance(value, int))

    def prompt(self, images: int) -> str:
        from mlx_vlm.prompt_utils import apply_chat_template

        config = self.config if self.model is None else self.model.config
        return apply_chat_template(self.processor, config, "Describe it.", num_images=images)

    def inputs(self, width: int | None = None, height: int | None = None, *, remember: bool = True, **kwargs) -> dict:
        """``prepare_inputs`` for one image of exactly this size (none without a size), evaluated.

        Remembered per size when no options are given: a page-sized image takes the processor seconds.
        """
        import mlx.core as mx
        from mlx_vlm.utils import prepare_inputs, should_add_special_tokens

        key = (width, height) if remember and not kwargs else None
        if key in self.measured:
            return self.measured[key]
        images = [image(width, height)] if width else None
        inputs = prepare_inputs(
            self.processor,
            images=images,
            prompts=self.prompt(1 if images else 0),
            image_token_index=self.image_token,
            add_special_tokens=should_add_special_tokens(self.config["model_type"], self.processor),
            **kwargs,
        )
        mx.eval([value for value in inputs.values() if isinstance(value, mx.array)])
        if key is not None:
            self.measured[key] = inputs
        return inputs

    def sent(self, width: int, height: int) -> dict:
        """The processor's inputs for an image sent at the guard's snapped size, with the guard's options."""
        sent = self.geometry.snap(width, height)
        return self.inputs(*sent, **self.geometry.processor_kwargs(*sent))

    def tokens(self, inputs: dict) -> int:
        """Image positions in the prompt (negative ids too: Phi-3-vision numbers its images -1, -2, ...)."""
        ids = np.array(inputs["input_ids"])
        return int(np.sum((ids == self.image_token) | (ids < 0)))

    def length(self, inputs: dict) -> int:
        return np.array(inputs["input_ids"]).shape[1]

    def text_only(self) -> int:
        """Prompt tokens without the image."""
        return self.length(self.inputs())

    def embed(self, width: int, height: int, *, cached: bool):
        """``get_input_embeddings`` for a noise image, with ``encode``'s features passed back as cached or not."""
        import mlx.core as mx

        inputs = self.inputs(width, height, remember=False)  # prepared on the calling thread
        extra = {k: v for k, v in inputs.items() if k not in ("input_ids", "pixel_values", "attention_mask")}
        if cached:
            extra["cached_image_features"] = self.encode(self.model, inputs["pixel_values"], extra)
        embedded = self.model.get_input_embeddings(
            inputs["input_ids"], inputs["pixel_values"], mask=inputs.get("attention_mask"), **extra
        )
        mx.eval([value for value in embedded.to_dict().values() if value is not None])
        return embedded
