"""Memory readings per backend (Metal, CUDA, CPU) and the ``--memory-budget`` parser.

The HTTP process never imports mlx: a worker calls ``mx.device_info()``, sends the
dict and its backend name over, and the HTTP process turns it into a reading here.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

import psutil

__all__ = [
    "MemoryReading",
    "parse_budget",
    "read_host_memory",
    "reading_from_device_info",
]

BACKENDS = ("metal", "cuda", "cpu")


@dataclass(frozen=True)
class MemoryReading:
    """How much memory one backend has, in bytes.

    ``available_bytes`` is what may be used now; on Metal it is also capped by
    ``recommended_bytes``, the GPU's recommended working set (absent elsewhere).
    """

    backend: str
    total_bytes: int
    available_bytes: int
    recommended_bytes: int | None = None


def read_host_memory() -> MemoryReading:
    """Read the host's RAM with psutil (backend ``"cpu"``)."""
    vm = psutil.virtual_memory()
    return MemoryReading(backend="cpu", total_bytes=int(vm.total), available_bytes=int(vm.available))


def reading_from_device_info(backend: str, info: dict, *, host: MemoryReading | None = None) -> MemoryReading:
    """Turn a worker's ``mx.device_info()`` dict into a reading.

    Metal reports ``memory_size`` and ``max_recommended_working_set_size``: the
    available memory is the smaller of that working set and the host's available
    RAM (memory is unified). CUDA reports ``total_memory`` and ``free_memory``.
    A dict with neither (the CPU backend) falls back to the host's RAM.
    ``host`` replaces the psutil reading (for tests, or a reading taken earlier).
    """
    if backend not in BACKENDS:
        raise ValueError(f"unknown backend {backend!r}; expected one of {', '.join(BACKENDS)}")
    if "memory_size" in info:
        total = int(info["memory_size"])
        recommended = info.get("max_recommended_working_set_size")
        recommended = int(recommended) if recommended is not None else total
        host_available = (host or read_host_memory()).available_bytes
        return MemoryReading(
            backend=backend,
            total_bytes=total,
            available_bytes=min(recommended, host_available),
            recommended_bytes=recommended,
        )
    if "total_memory" in info:
        total = int(info["total_memory"])
        return MemoryReading(
            backend=backend,
            total_bytes=total,
            available_bytes=int(info.get("free_memory", total)),
        )
    reading = host or read_host_memory()
    return MemoryReading(backend=backend, total_bytes=reading.total_bytes, available_bytes=reading.available_bytes)


_UNITS = {
    "": 1, "b": 1,
    "k": 10**3, "kb": 10**3, "m": 10**6, "mb": 10**6,
    "g": 10**9, "gb": 10**9, "t": 10**12, "tb": 10**12,
    "ki": 2**10, "kib": 2**10, "mi": 2**20, "mib": 2**20,
    "gi": 2**30, "gib": 2**30, "ti": 2**40, "tib": 2**40,
}  # fmt: skip
_BUDGET = re.compile(r"(?P<number>\d+(?:\.\d*)?|\.\d+)(?:e(?P<exp>[+-]?\d+))?\s*(?P<unit>[a-z%]*)")


def parse_budget(text: str, total_bytes: int) -> int:
    """Parse a memory budget into bytes.

    Accepted: plain bytes (``"123456"``); a size with a decimal unit (``"600MB"``,
    ``"600M"``, ``"1.5GB"``: K/M/G/T = 10**3/6/9/12) or a binary one (``"12GiB"``,
    ``"512Mi"``); a fraction of ``total_bytes`` (``"0.7"``) or a percentage
    (``"70%"``). Units are case-insensitive. Raises ValueError naming the problem
    for anything else, for zero or negative sizes, and for fractions above 1.
    """
    raw = str(text).strip()
    lowered = raw.lower()
    if lowered.startswith("-"):
        raise ValueError(f"memory budget {raw!r} must be positive")
    match = _BUDGET.fullmatch(lowered)
    if match is None:
        raise ValueError(
            f"memory budget {raw!r} is not a size: use bytes (123456), a unit "
            "(600MB, 12GiB, 1.5GB), a fraction of memory (0.7) or a percentage (70%)"
        )
    number, exp, unit = match["number"], match["exp"], match["unit"]
    value = float(f"{number}e{exp}" if exp else number)
    if not math.isfinite(value):
        raise ValueError(f"memory budget {raw!r} is not a finite number")
    if unit == "%":
        fraction = value / 100
    elif unit == "" and ("." in number or exp):
        fraction = value
    else:
        fraction = None
    if fraction is not None:
        if not 0 < fraction <= 1:
            raise ValueError(
                f"memory budget {raw!r} is a fraction of memory and must be in (0, 1] "
                "(or (0%, 100%]); for an absolute size write bytes or use a unit like GB"
            )
        nbytes = int(total_bytes * fraction)
    else:
        if unit not in _UNITS:
            raise ValueError(
                f"memory budget {raw!r} has an unknown unit {unit!r}; use B, K/KB, M/MB, "
                "G/GB, T/TB (decimal) or Ki/KiB, Mi/MiB, Gi/GiB, Ti/TiB (binary)"
            )
        nbytes = round(value * _UNITS[unit])
    if nbytes <= 0:
        raise ValueError(f"memory budget {raw!r} must be greater than zero bytes")
    return nbytes
