"""The guards package's boundaries: what it imports and what it documents."""

from __future__ import annotations

import inspect
import subprocess
import sys

import guards


def test_importing_guards_loads_no_mlx_mmserve_or_litestar():
    """The HTTP process can import guards without loading mlx, mmserve or litestar."""
    code = (
        "import sys, guards, guards.calibrate, guards.ledger\n"
        "bad = sorted(m for m in sys.modules if m.split('.')[0] in {'mlx', 'mlx_vlm', 'mlx_lm', 'mmserve', 'litestar'})\n"
        "print(bad)"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "[]"


def test_every_exported_name_exists():
    """Every name in guards.__all__ is importable from guards."""
    assert all(hasattr(guards, name) for name in guards.__all__)


def test_every_public_function_and_class_has_a_docstring():
    """Exported functions, classes and their public methods carry docstrings."""
    missing = []
    for name in guards.__all__:
        item = getattr(guards, name)
        if (inspect.isfunction(item) or inspect.isclass(item)) and not inspect.getdoc(item):
            missing.append(name)
        if inspect.isclass(item):
            for attribute, member in vars(item).items():
                if attribute.startswith("_"):
                    continue
                function = member.__func__ if isinstance(member, (classmethod, staticmethod)) else member
                if isinstance(function, property):
                    function = function.fget
                if inspect.isfunction(function) and not function.__doc__:
                    missing.append(f"{name}.{attribute}")
    assert missing == []


def test_format_bytes_uses_binary_units_with_three_digits():
    """Sizes read as GiB / MiB / KiB with three significant digits."""
    assert [guards.format_bytes(n) for n in (3 * 2**30, 19.5 * 2**30, 240 * 2**20, 512)] == [
        "3.00 GiB", "19.5 GiB", "240 MiB", "512 B",
    ]  # fmt: skip
