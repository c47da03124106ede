"""Memory readings per backend and the memory-budget parser."""

from __future__ import annotations

import pytest

from guards import (
    GiB,
    MemoryReading,
    parse_budget,
    read_host_memory,
    reading_from_device_info,
)

HOST = MemoryReading(backend="cpu", total_bytes=64 * GiB, available_bytes=40 * GiB)


def test_metal_reading_takes_memory_size_and_recommended_working_set():
    """A Metal dict gives total from memory_size and keeps the recommended working set."""
    info = {"memory_size": 64 * GiB, "max_recommended_working_set_size": 48 * GiB, "architecture": "applegpu_g15s"}
    reading = reading_from_device_info("metal", info, host=HOST)
    assert reading == MemoryReading("metal", 64 * GiB, 40 * GiB, 48 * GiB)


def test_metal_available_is_capped_by_recommended_working_set():
    """On Metal, available memory never exceeds the GPU's recommended working set."""
    info = {"memory_size": 64 * GiB, "max_recommended_working_set_size": 30 * GiB}
    reading = reading_from_device_info("metal", info, host=HOST)
    assert reading.available_bytes == 30 * GiB


def test_cuda_reading_takes_total_and_free_memory():
    """A CUDA dict gives total_memory and free_memory, with no recommended size."""
    info = {"device_name": "NVIDIA H100 80GB HBM3", "total_memory": 80 * GiB, "free_memory": 79 * GiB}
    reading = reading_from_device_info("cuda", info, host=HOST)
    assert reading == MemoryReading("cuda", 80 * GiB, 79 * GiB, None)


def test_cpu_reading_falls_back_to_host_memory():
    """The CPU backend's dict has no memory keys, so the host's RAM is used."""
    reading = reading_from_device_info("cpu", {"architecture": "x86_64", "device_name": "AMD EPYC"}, host=HOST)
    assert (reading.backend, reading.total_bytes, reading.available_bytes) == ("cpu", 64 * GiB, 40 * GiB)


def test_cpu_reading_without_host_reads_psutil():
    """Without an injected host reading, the CPU fallback reads this machine's RAM."""
    reading = reading_from_device_info("cpu", {})
    assert reading.total_bytes > 0 and 0 < reading.available_bytes <= reading.total_bytes


def test_unknown_backend_is_refused():
    """A backend name other than metal, cuda or cpu is a ValueError."""
    with pytest.raises(ValueError, match="unknown backend"):
        reading_from_device_info("rocm", {}, host=HOST)


def test_read_host_memory_reports_this_machine():
    """read_host_memory returns a cpu reading with available memory within total."""
    reading = read_host_memory()
    assert reading.backend == "cpu" and 0 < reading.available_bytes <= reading.total_bytes


TOTAL = 32 * GiB


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("123456", 123456),
        ("600MB", 600_000_000),
        ("600M", 600_000_000),
        ("600mb", 600_000_000),
        ("600 MB", 600_000_000),
        ("1.5GB", 1_500_000_000),
        ("12GiB", 12 * GiB),
        ("512Mi", 512 * 2**20),
        ("2T", 2 * 10**12),
        ("100KiB", 100 * 1024),
        ("4096B", 4096),
        ("0.7", int(TOTAL * 0.7)),
        (".5", TOTAL // 2),
        ("1.0", TOTAL),
        ("70%", int(TOTAL * 0.7)),
    ],
)
def test_parse_budget_accepts_documented_forms(text, expected):
    """Bytes, decimal and binary units, fractions and percentages parse to bytes."""
    assert parse_budget(text, TOTAL) == expected


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "not a size"),
        ("lots", "not a size"),
        ("12 GiB please", "not a size"),
        ("1,5GB", "not a size"),
        ("12XB", "unknown unit"),
        ("0", "greater than zero"),
        ("0GB", "greater than zero"),
        ("0.0", "fraction"),
        ("0.4B", "greater than zero"),
        ("-5GB", "positive"),
        ("-0.5", "positive"),
        ("1.5", "fraction"),
        ("150%", "fraction"),
        ("1e400", "finite"),
    ],
)
def test_parse_budget_rejects_with_clear_message(text, message):
    """Garbage, zero, negative sizes and fractions above 1 raise a ValueError saying why."""
    with pytest.raises(ValueError, match=message):
        parse_budget(text, TOTAL)
