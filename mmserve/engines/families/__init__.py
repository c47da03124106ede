"""How the vision engine calls each family's model, keyed by the checkpoint's ``model_type``.

Most of a family's work is done by mlx-vlm itself: its processor prepares the inputs
and ``get_input_embeddings`` runs the encoder and merges the features. A family
module here adds what mlx-vlm leaves to the caller:

- ``REFUSE``: why mmserve does not serve the family; the worker says so at start,
  before loading anything;
- ``before_load(config)``: a context to load in, for families whose mlx-vlm model
  class builds part of itself from a fixed description rather than config.json;
- ``after_load(model, processor)``: fixes needed before serving (e.g. evaluating
  lazily built buffers on the loading thread, which other threads cannot reach);
- ``encode(model, pixel_values, extra)``: the image features that
  ``get_input_embeddings`` takes back as ``cached_image_features``, exactly as it
  would compute them, so the same image asked again skips the encoder. A family
  without it is served without the feature cache.

Adding a family here and its geometry in ``guards.families`` is all a family needs.
"""

from __future__ import annotations

import contextlib
import importlib
import pkgutil
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

__all__ = ["Adapter", "UnservedFamilyError", "adapter_for"]


class UnservedFamilyError(Exception):
    """The checkpoint's family is one mmserve does not serve (the message says why)."""


@dataclass(frozen=True)
class Adapter:
    """A family's hooks; each is None where mlx-vlm needs no help."""

    refuse: str | None = None
    before_load: Callable[[dict], contextlib.AbstractContextManager] | None = None
    after_load: Callable[[Any, Any], None] | None = None
    encode: Callable[[Any, Any, dict], Any] | None = None


def adapter_for(model_type: str) -> Adapter:
    """The hooks of ``model_type``'s module in this package (matched by ``MODEL_TYPES`` or its name)."""
    for info in pkgutil.iter_modules(__path__):
        module = importlib.import_module(f"{__name__}.{info.name}")
        if model_type in getattr(module, "MODEL_TYPES", (info.name,)):
            return Adapter(
                refuse=getattr(module, "REFUSE", None),
                before_load=getattr(module, "before_load", None),
                after_load=getattr(module, "after_load", None),
                encode=getattr(module, "encode", None),
            )
    return Adapter()
