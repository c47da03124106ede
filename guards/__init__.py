"""The memory guard: plan every request to fit memory before it runs.

Pure Python: imports nothing from mmserve or litestar, and never mlx (the HTTP
process uses it and must not load mlx). Workers measure; this package decides.
"""

from guards.calibrate import Calibration, calibration_sizes
from guards.cost import (
    DEFAULT_VISION_COST,
    KVLayout,
    KVWindow,
    ModelMemory,
    VisionCost,
    fit_vision_cost,
    kv_bytes_per_token,
    replicas_that_fit,
)
from guards.errors import (
    AspectRatioError,
    BusyError,
    ContextTooLongError,
    NeverFitsError,
    PlanError,
)
from guards.images import exif_upright, fit_size, resize, upright_size
from guards.ledger import MemoryLedger, Reservation
from guards.plan import ImageRequest, Plan, PlannedImage, plan_image, plan_request
from guards.probe import (
    MemoryReading,
    parse_budget,
    read_host_memory,
    reading_from_device_info,
)
from guards.tiers import DEFAULT_TIERS, Tier, default_budget, tier_for
from guards.units import GiB, format_bytes
from guards.vision import VisionSpec, patches, smart_resize, vision_tokens

__all__ = [
    "DEFAULT_TIERS",
    "DEFAULT_VISION_COST",
    "AspectRatioError",
    "BusyError",
    "Calibration",
    "ContextTooLongError",
    "GiB",
    "ImageRequest",
    "KVLayout",
    "KVWindow",
    "MemoryLedger",
    "MemoryReading",
    "ModelMemory",
    "NeverFitsError",
    "Plan",
    "PlanError",
    "PlannedImage",
    "Reservation",
    "Tier",
    "VisionCost",
    "VisionSpec",
    "calibration_sizes",
    "default_budget",
    "exif_upright",
    "fit_size",
    "fit_vision_cost",
    "format_bytes",
    "kv_bytes_per_token",
    "parse_budget",
    "patches",
    "plan_image",
    "plan_request",
    "read_host_memory",
    "reading_from_device_info",
    "replicas_that_fit",
    "resize",
    "smart_resize",
    "tier_for",
    "upright_size",
    "vision_tokens",
]
