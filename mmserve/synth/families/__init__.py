"""The families ``mmserve synth --family NAME`` writes, by name: one module each in this package."""

from __future__ import annotations

import importlib
import pkgutil

from ..family import Family

__all__ = ["FAMILIES"]


def _families() -> dict[str, Family]:
    found = {}
    for info in pkgutil.iter_modules(__path__):
        if info.name.startswith("_"):
            continue  # shared helpers of the family modules
        module = importlib.import_module(f"{__name__}.{info.name}")
        for family in (module.FAMILY, *getattr(module, "MORE_FAMILIES", ())):  # variants of one family
            found[family.name] = family
    return dict(sorted(found.items()))


FAMILIES = _families()
