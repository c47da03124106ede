"""The questions every family's geometry answers, and the checkpoint files it reads."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

__all__ = ["Checkpoint", "Geometry", "Layout", "Measured"]


@dataclass(frozen=True)
class Checkpoint:
    """The JSON files of a checkpoint that decide its image geometry, as dicts.

    ``preprocessor`` is ``preprocessor_config.json``; ``processor`` is
    ``processor_config.json``, whose nested ``image_processor`` section (the
    newer layout) ``image_settings`` merges over the preprocessor's.
    """

    config: Mapping[str, Any]
    preprocessor: Mapping[str, Any] = field(default_factory=dict)
    processor: Mapping[str, Any] = field(default_factory=dict)

    @property
    def model_type(self) -> str:
        return str(self.config.get("model_type", ""))

    @property
    def image_settings(self) -> dict[str, Any]:
        """The image processor's settings: the preprocessor config, then the processor config's."""
        nested = self.processor.get("image_processor")
        return {**self.preprocessor, **(nested if isinstance(nested, Mapping) else {})}

    def setting(self, *names: str, default: Any = None) -> Any:
        """The first of ``names`` set in the image settings, the processor config or config.json."""
        for source in (self.image_settings, self.processor, self.config):
            for name in names:
                if source.get(name) is not None:
                    return source[name]
        return default

    def section(self, name: str) -> Mapping[str, Any]:
        """A sub-config of config.json (``vision_config``, ``text_config``), empty if absent."""
        value = self.config.get(name)
        return value if isinstance(value, Mapping) else {}


@dataclass(frozen=True)
class Layout:
    """What the processor makes of one image of a given size.

    ``size`` is what it resizes the image to before cutting it into patches (for a
    tiling family, the whole before it is cut into tiles); ``tokens`` is how many
    image-token positions the image takes in the prompt (the positions the encoder's
    features fill); ``extra_tokens`` counts the other tokens the processor adds for
    it that depend on its size (row breaks, tile separators); ``patches`` is how many
    patches the encoder runs over, every tile and view together (the cost model's p).
    """

    size: tuple[int, int]
    tokens: int
    patches: int
    extra_tokens: int = 0


@dataclass(frozen=True)
class Geometry:
    """A family's image rules. Subclasses implement ``layout`` and ``from_checkpoint``.

    ``resizable`` is False for a fixed-resolution family: every image becomes the
    same tokens, so a smaller image buys nothing. ``wrapper_tokens`` is what the
    processor adds around every image whatever its size (markers, newlines); it
    depends on the tokenizer, so the worker measures it at load.
    """

    family = "?"
    resizable = True
    max_aspect_ratio = None  # the processor refuses images beyond this ratio of the sides

    wrapper_tokens: int = field(default=0, kw_only=True)

    @classmethod
    def from_checkpoint(cls, checkpoint: Checkpoint) -> Geometry:
        raise NotImplementedError

    def layout(self, width: int, height: int) -> Layout:
        """What the processor makes of an image of ``width`` x ``height`` pixels."""
        raise NotImplementedError

    def snap(self, width: int, height: int) -> tuple[int, int]:
        """The size to send an image at, near ``width`` x ``height``, so that the processor's
        own resizing changes nothing the plan did not foresee. By default the size itself."""
        return width, height

    def processor_kwargs(self, width: int, height: int) -> dict[str, Any]:
        """Options for the processor call that keep an image sent at this size to its plan
        (e.g. a tiling family's longest edge), as JSON-ready values. None by default."""
        return {}

    def prompt_tokens(self, width: int, height: int) -> int:
        """All prompt tokens one image takes: image tokens, size-dependent extras and the wrapper."""
        layout = self.layout(width, height)
        return layout.tokens + layout.extra_tokens + self.wrapper_tokens

    def with_wrapper(self, tokens: int) -> Geometry:
        """The same geometry with ``wrapper_tokens`` set (measured by the worker)."""
        return dataclasses.replace(self, wrapper_tokens=tokens)


@dataclass(frozen=True)
class Measured(Geometry):
    """Counts the real processor made, for a family whose geometry is missing or failed its check.

    Nothing is predicted: the server fits each image to the tier's max side, asks the
    worker's processor what it becomes at that size, and plans with the answer.
    ``images`` maps each image's original size to the size it is sent at and the
    processor's (image tokens, all its prompt tokens) there. Such images are not
    shrunk further.
    """

    images: Mapping[tuple[int, int], tuple[tuple[int, int], int, int]] = field(default_factory=dict)

    family = "measured"
    resizable = False

    def snap(self, width: int, height: int) -> tuple[int, int]:
        return self.images[(width, height)][0]

    def layout(self, width: int, height: int) -> Layout:
        for sent, tokens, prompt in self.images.values():
            if sent == (width, height):
                return Layout(size=sent, tokens=tokens, patches=tokens, extra_tokens=prompt - tokens)
        raise KeyError(f"no count for an image of {width}x{height}")
