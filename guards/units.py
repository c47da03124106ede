"""Byte units. The guard counts in binary units: 1 GiB = 2**30 bytes.

Binary because that is what machines report: a "24 GB" Mac has exactly 24 GiB.
``parse_budget`` also accepts decimal units (GB = 10**9) for operators who write them.
"""

from __future__ import annotations

__all__ = ["GiB", "KiB", "MiB", "format_bytes"]

KiB = 2**10
MiB = 2**20
GiB = 2**30


def format_bytes(nbytes: float) -> str:
    """Render a byte count for people, in binary units: ``format_bytes(3 * 2**30) == "3.00 GiB"``."""
    value = float(nbytes)
    sign = "-" if value < 0 else ""
    value = abs(value)
    for unit, size in (("GiB", GiB), ("MiB", MiB), ("KiB", KiB)):
        if value >= size:
            scaled = value / size
            digits = 2 if scaled < 10 else 1 if scaled < 100 else 0  # three significant digits
            return f"{sign}{scaled:.{digits}f} {unit}"
    return f"{sign}{int(value)} B"
