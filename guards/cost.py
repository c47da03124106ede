"""What a model costs in memory: weights, KV cache per token, and vision encoding.

Encoding one image takes extra peak memory ``c0 + c1*patches + c2*patches**2``:
a fixed part, activations that grow with the patch count, and full attention
over all patches, which grows with its square (pixels squared).
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from dataclasses import dataclass

__all__ = [
    "DEFAULT_VISION_COST",
    "KVLayout",
    "KVWindow",
    "ModelMemory",
    "VisionCost",
    "fit_vision_cost",
    "kv_bytes_per_token",
    "replicas_that_fit",
]


@dataclass(frozen=True)
class VisionCost:
    """Extra peak bytes to encode one image of ``p`` patches: ``c0 + c1*p + c2*p**2``."""

    c0: float
    c1: float
    c2: float

    def __post_init__(self) -> None:
        for name in ("c0", "c1", "c2"):
            value = getattr(self, name)
            if not (math.isfinite(value) and value >= 0):
                raise ValueError(f"VisionCost.{name} must be finite and non-negative, got {value}")

    def bytes_for(self, patches: int) -> int:
        """Estimated extra peak bytes for encoding one image of ``patches`` patches."""
        if patches <= 0:
            return 0
        return math.ceil(self.c0 + self.c1 * patches + self.c2 * patches * patches)

    def scaled(self, factor: float) -> VisionCost:
        """The same curve multiplied by ``factor`` (a safety margin)."""
        return VisionCost(self.c0 * factor, self.c1 * factor, self.c2 * factor)


def kv_bytes_per_token(num_layers: int, num_kv_heads: int, head_dim: int, dtype_bytes: int) -> int:
    """KV-cache bytes per token: keys and values, ``2 * layers * kv_heads * head_dim * dtype_bytes``."""
    for name, value in (
        ("num_layers", num_layers),
        ("num_kv_heads", num_kv_heads),
        ("head_dim", head_dim),
        ("dtype_bytes", dtype_bytes),
    ):
        if value < 1:
            raise ValueError(f"{name} must be positive, got {value}")
    return 2 * num_layers * num_kv_heads * head_dim * dtype_bytes


def _round_up(tokens: int, step: int) -> int:
    return -(-tokens // step) * step if step > 1 else tokens


@dataclass(frozen=True)
class KVWindow:
    """Layers that keep at most ``window`` tokens (sliding-window attention), ``bytes_per_token``
    for all of them together."""

    window: int
    bytes_per_token: int

    def __post_init__(self) -> None:
        if self.window < 1 or self.bytes_per_token < 0:
            raise ValueError(f"KVWindow needs a positive window and non-negative bytes, got {self}")


@dataclass(frozen=True)
class KVLayout:
    """What one sequence's cache holds, by kind of layer, measured from the model's own cache.

    - ``bytes_per_token``: layers that keep every token (full attention, MLA latents);
    - ``windows``: layers that keep at most a window of tokens;
    - ``per_sequence_bytes``: fixed state whatever the length (linear-attention / SSM layers);
    - ``step``: caches allocate in steps of this many tokens, so a sequence holds its length
      rounded up to it; a window cache holds up to ``step - 1`` tokens past the length (it
      grows by a step from wherever the prompt ended), never past its window.
    """

    bytes_per_token: int
    per_sequence_bytes: int = 0
    windows: tuple[KVWindow, ...] = ()
    step: int = 1

    def __post_init__(self) -> None:
        if self.bytes_per_token < 0 or self.per_sequence_bytes < 0 or self.step < 1:
            raise ValueError(f"KVLayout sizes must be non-negative and step positive, got {self}")

    @classmethod
    def dense(cls, bytes_per_token: int) -> KVLayout:
        """Every layer keeps every token, no allocation step: the plain formula."""
        return cls(bytes_per_token=bytes_per_token)

    @classmethod
    def from_dict(cls, data: dict) -> KVLayout:
        """The layout a worker sent (``as_dict``)."""
        return cls(
            bytes_per_token=int(data["bytes_per_token"]),
            per_sequence_bytes=int(data.get("per_sequence_bytes", 0)),
            windows=tuple(KVWindow(int(w), int(b)) for w, b in data.get("windows", ())),
            step=int(data.get("step", 1)),
        )

    def as_dict(self) -> dict:
        """Plain data for the wire (``from_dict`` reads it back)."""
        return {
            "bytes_per_token": self.bytes_per_token,
            "per_sequence_bytes": self.per_sequence_bytes,
            "windows": [[w.window, w.bytes_per_token] for w in self.windows],
            "step": self.step,
        }

    @property
    def marginal_bytes_per_token(self) -> int:
        """The most one more token can cost (before any window is full)."""
        return self.bytes_per_token + sum(w.bytes_per_token for w in self.windows)

    def kv_bytes(self, tokens: int) -> int:
        """Cache bytes for one sequence of ``tokens`` tokens (0 for none)."""
        if tokens <= 0:
            return 0
        held = _round_up(tokens, self.step)
        windowed = sum(w.bytes_per_token * min(tokens + self.step - 1, w.window) for w in self.windows)
        return self.per_sequence_bytes + self.bytes_per_token * held + windowed

    def tokens_for(self, capacity: int) -> int:
        """The most tokens one sequence can hold within ``capacity`` bytes (-1 if not even one);
        unbounded (a very large number) when more tokens cost nothing more."""
        if self.kv_bytes(1) > capacity:
            return -1
        if self.bytes_per_token == 0:
            largest_window = max((w.window for w in self.windows), default=0)
            if self.kv_bytes(largest_window + self.step) <= capacity:
                return 1 << 40
        low, high = 1, 1
        while self.kv_bytes(high) <= capacity:
            low, high = high, high * 2
        while high - low > 1:  # kv_bytes grows with tokens: the last that fits
            middle = (low + high) // 2
            low, high = (middle, high) if self.kv_bytes(middle) <= capacity else (low, middle)
        return low


@dataclass(frozen=True)
class ModelMemory:
    """A loaded model's memory shape. ``vision`` is None for text-only models; ``kv_layout``
    None means every layer keeps ``kv_bytes_per_token`` per token (the plain formula)."""

    weights_bytes: int
    kv_bytes_per_token: int
    context_length: int
    vision: VisionCost | None = None
    kv_layout: KVLayout | None = None

    def __post_init__(self) -> None:
        if self.weights_bytes < 0 or self.kv_bytes_per_token < 0:
            raise ValueError("ModelMemory sizes must be non-negative")
        if self.context_length < 1:
            raise ValueError("ModelMemory.context_length must be positive")

    @property
    def layout(self) -> KVLayout:
        """The KV layout the plan uses."""
        return self.kv_layout if self.kv_layout is not None else KVLayout.dense(self.kv_bytes_per_token)

    def kv_bytes(self, tokens: int) -> int:
        """KV-cache bytes for a sequence of ``tokens`` tokens."""
        return self.layout.kv_bytes(tokens)

    def kv_tokens_for(self, capacity: int) -> int:
        """The most tokens a sequence's cache can hold within ``capacity`` bytes (-1: none)."""
        return self.layout.tokens_for(capacity)


def replicas_that_fit(wanted: int, *, replica_bytes: int, resident_bytes: int, budget_bytes: int) -> int:
    """How many copies of a model to run, at most ``wanted`` and at least one.

    A copy holds ``replica_bytes`` for good (its weights and prefix cache); ``resident_bytes``
    is what everything else holds for good, the first copy included. Extra copies are
    added while everything resident stays within half of ``budget_bytes``: the other half
    is left for the KV caches and activations of the requests the copies serve.
    """
    if wanted < 1:
        raise ValueError(f"wanted must be at least 1, got {wanted}")
    if replica_bytes < 0 or resident_bytes < 0 or budget_bytes < 0:
        raise ValueError("replica_bytes, resident_bytes and budget_bytes must be non-negative")
    copies = 1
    while copies < wanted and resident_bytes + copies * replica_bytes <= budget_bytes // 2:
        copies += 1
    return copies


def fit_vision_cost(samples: Sequence[tuple[int, int]]) -> VisionCost:
    """Fit ``c0 + c1*p + c2*p**2`` to measured ``(patches, peak_extra_bytes)`` samples.

    Least squares on relative error (each row weighted by 1/measured), with every
    coefficient kept non-negative: all subsets of the three terms are solved and
    the best non-negative one wins (exact NNLS for three unknowns). Needs at least
    two samples with distinct patch counts.
    """
    import numpy as np  # lazy: only the calibrating side needs it

    points = [(float(p), float(y)) for p, y in samples]
    if any(p <= 0 or y <= 0 for p, y in points):
        raise ValueError("samples must have positive patch counts and positive byte counts")
    if len({p for p, _ in points}) < 2:
        raise ValueError("fit_vision_cost needs samples at two or more distinct patch counts")
    p = np.array([pt for pt, _ in points])
    y = np.array([yt for _, yt in points])
    design = np.stack([np.ones_like(p), p, p * p], axis=1) / y[:, None]
    # Columns differ by ~10 orders of magnitude: scale them before solving.
    column_scale = np.abs(design).max(axis=0)
    scaled = design / column_scale
    target = np.ones_like(p)

    best: tuple[float, np.ndarray] | None = None
    for size in (3, 2, 1):
        for active in itertools.combinations(range(3), size):
            cols = scaled[:, active]
            if np.linalg.matrix_rank(cols) < size:
                continue
            solution, *_ = np.linalg.lstsq(cols, target, rcond=None)
            if np.any(solution < 0):
                continue
            coef = np.zeros(3)
            coef[list(active)] = solution / column_scale[list(active)]
            residual = float(np.sum((design @ coef - target) ** 2))
            # Prefer more terms on (near) ties: they extrapolate more faithfully.
            if best is None or residual < best[0] * (1 - 1e-9) - 1e-18:
                best = (residual, coef)
    assert best is not None  # a single positive column always gives a positive fit
    c0, c1, c2 = (max(0.0, float(value)) for value in best[1])
    return VisionCost(c0, c1, c2)


# Qwen2.5-VL-3B shape, vision tower in float32, measured on CUDA (shared/gpu README):
# 448^2 (1,024 patches) 2.5 GB, 1344^2 (9,216) 6.4 GB, 1792^2 (16,384) 19 GB extra
# over weights. The relative fit is c0 = 2.37e9, c1 = 0, c2 = 55.2, which is 10 %
# under at 1792^2. Instead c2 = 68 bytes per patch pair (a float32 attention score
# matrix over 16 heads is 64) and c0 = 2.7e9: at or above every measured point
# whether the README's "GB" means 10**9 or 2**30 bytes (+3..+11 % at 448^2,
# +23..+32 % at 1344^2, +3..+10 % at 1792^2). Calibration replaces it.
DEFAULT_VISION_COST = VisionCost(c0=2.7e9, c1=0.0, c2=68.0)
