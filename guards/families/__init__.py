"""What each vision family's processor makes of an image, keyed by the checkpoint's ``model_type``.

One small module per family answers pure questions from the checkpoint's
``config.json``, ``preprocessor_config.json`` and ``processor_config.json``: the size
the processor turns an image into, how many image tokens it becomes, what else the
processor adds to the prompt for it, how many patches the encoder runs over, and
whether a smaller image buys anything. ``geometry_for`` finds the module for a
checkpoint; a family without one gets ``None`` and the server counts with the real
processor instead.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

from guards.families.base import Checkpoint, Geometry, Layout, Measured

__all__ = ["Checkpoint", "Geometry", "Layout", "Measured", "families", "geometry_for", "register"]

_BUILDERS: dict[str, Callable[[Checkpoint], Geometry]] = {}


def register(*model_types: str):
    """Class decorator: ``cls.from_checkpoint`` builds the geometry for these ``model_type`` values."""

    def decorate(cls):
        for model_type in model_types:
            _BUILDERS[model_type] = cls.from_checkpoint
        return cls

    return decorate


def families() -> list[str]:
    """The ``model_type`` values that have a geometry."""
    return sorted(_BUILDERS)


def geometry_for(checkpoint: Checkpoint | Mapping) -> Geometry | None:
    """The geometry of a checkpoint's family, or None when mmserve has none for it.

    ``checkpoint`` is a ``Checkpoint`` or a mapping with its ``config`` (and
    optionally ``preprocessor`` and ``processor``) dicts.
    """
    if not isinstance(checkpoint, Checkpoint):
        checkpoint = Checkpoint(**checkpoint)
    builder = _BUILDERS.get(checkpoint.model_type)
    return builder(checkpoint) if builder is not None else None


# Family modules register themselves on import.
from guards.families import (  # noqa: E402,F401
    aya_vision,
    deepseek_vl_v2,
    gemma3,
    gemma3n,
    idefics2,
    idefics3,
    internvl,
    kimi_vl,
    lfm2_vl,
    llava,
    llava_next,
    mllama,
    molmo,
    paligemma,
    phi3_v,
    pixtral,
    qwen2_vl,
    qwen3_vl,
)
