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

from guards.families.base import Checkpoint, Geometry, Layout

__all__ = ["Checkpoint", "Geometry", "Layout", "families", "geometry_for", "register"]

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
from guards.families import qwen2_vl  # noqa: E402,F401
from guards.families import phi3_v  # noqa: E402,F401
from guards.families import gemma3n  # noqa: E402,F401
from guards.families import kimi_vl  # noqa: E402,F401
from guards.families import idefics2  # noqa: E402,F401
from guards.families import aya_vision  # noqa: E402,F401
from guards.families import lfm2_vl  # noqa: E402,F401
from guards.families import molmo  # noqa: E402,F401
from guards.families import mllama  # noqa: E402,F401
