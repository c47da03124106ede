"""The per-request memory plan: image sizes, max_tokens, admit / queue / refuse.

Pure arithmetic, computed before any work runs (a Metal out-of-memory cannot be
caught; it kills the process). The peak a request may reach is

    weights + max(vision cost of each image) + kv_bytes(prompt + max_tokens) + held

where ``kv_bytes`` follows the model's KV layout (``guards.KVLayout``): per token for
full-attention layers, up to a window for sliding-window layers, a constant for
linear-attention state, rounded up to the cache's allocation step.

where images are encoded one at a time and ``held`` is what running requests
already reserved. The plan's shape (sizes, max_tokens) depends only on the request
and the budget, never on the current load, so a request gets the same answer on
an idle server and a busy one; the load only decides admit versus queue.

Ladder, against the budget left after the weights:
  1. start images at the tier's max side (``detail="low"``: at most 448 px;
     ``detail="high"`` or an image's own ``max_side``: up to the server's ceiling);
  2. shrink them step by step (x0.85 on the longer side) down to the legibility
     floor (224 px on the longer side, or the image's ``min_side``; smaller
     originals stay as they are) until
     the request fits the memory left and the prompt leaves room in the context;
  3. clamp max_tokens to what fits (not below ``min(max_tokens, 16)``);
  4. still too big: NeverFitsError saying what would fit.
Then: fits beside what is held -> "admit", else "queue" (wait on the ledger).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Literal

from guards.cost import (
    DEFAULT_VISION_COST,
    ModelMemory,
    VisionCost,
    fit_vision_cost,
    kv_bytes_per_token,
)
from guards.errors import (
    AspectRatioError,
    BusyError,
    ContextTooLongError,
    NeverFitsError,
    PlanError,
)
from guards.families import Geometry
from guards.families.qwen2_vl import QwenGeometry
from guards.images import fit_size
from guards.units import format_bytes
from guards.vision import VisionSpec

__all__ = [
    "DEFAULT_VISION_COST",
    "DETAILS",
    "AspectRatioError",
    "BusyError",
    "ContextTooLongError",
    "ImageRequest",
    "ModelMemory",
    "NeverFitsError",
    "Plan",
    "PlanError",
    "PlannedImage",
    "VisionCost",
    "fit_vision_cost",
    "kv_bytes_per_token",
    "plan_image",
    "plan_request",
    "start_side",
]

DETAILS = ("auto", "low", "high")
ADMIT: Literal["admit"] = "admit"
QUEUE: Literal["queue"] = "queue"


@dataclass(frozen=True)
class ImageRequest:
    """One image of a request: its upright size, the OpenAI ``detail`` hint and the sides asked for.

    ``max_side`` asks for a starting longer side (up to the server's ceiling);
    ``min_side`` asks the ladder not to shrink below it (a refusal instead).
    """

    width: int
    height: int
    detail: str = "auto"
    max_side: int | None = None
    min_side: int | None = None

    def __post_init__(self) -> None:
        if self.width < 1 or self.height < 1:
            raise ValueError(f"image size must be positive, got {self.width}x{self.height}")
        if self.detail not in DETAILS:
            raise ValueError(f"detail must be one of {', '.join(DETAILS)}, got {self.detail!r}")
        for name in ("max_side", "min_side"):
            value = getattr(self, name)
            if value is not None and value < 1:
                raise ValueError(f"{name} must be positive, got {value}")


@dataclass(frozen=True)
class PlannedImage:
    """An image as the model will see it.

    ``resized`` is the size it is sent at, chosen so that the processor's own resizing
    holds no surprise (for a dynamic-patch family it is already on the processor's
    grid); ``seen`` is what the processor turns it into. ``tokens`` are its image-token
    positions in the prompt, ``prompt_tokens`` everything it adds to the prompt (row
    breaks, tile markers and the wrapper included), ``patches`` what the encoder runs
    over. ``processor_kwargs`` go with it to the processor; ``resizable`` is False for
    a fixed-resolution family, where a smaller image buys nothing. ``shrunk`` says the
    image was made smaller to fit the side limit or memory; a size that differs from
    the original only by snapping to the family's grid is not shrunk.
    """

    original: tuple[int, int]
    resized: tuple[int, int]
    tokens: int
    patches: int
    prompt_tokens: int = 0
    seen: tuple[int, int] | None = None
    processor_kwargs: dict = field(default_factory=dict)
    resizable: bool = True
    shrunk: bool = False

    @property
    def snapped(self) -> bool:
        """Sent at a size other than the original only to fit the family's grid."""
        return not self.shrunk and self.resized != self.original


@dataclass(frozen=True)
class Plan:
    """The outcome of ``plan_request``: what to run and whether to run it now.

    ``reserve_bytes`` is what the request holds while it runs (its KV cache plus
    its largest image encode); ``planned_peak_bytes`` adds the weights and what
    other requests held when planned.
    """

    images: tuple[PlannedImage, ...]
    prompt_tokens: int
    max_tokens: int
    max_tokens_clamped_from: int | None
    planned_peak_bytes: int
    reserve_bytes: int
    budget_bytes: int
    decision: Literal["admit", "queue"]

    @property
    def image_tokens(self) -> int:
        """Tokens taken by all images together."""
        return sum(image.tokens for image in self.images)

    @property
    def images_resized(self) -> int:
        """How many images the model sees at a size other than the one sent."""
        return sum(image.resized != image.original for image in self.images)

    @property
    def images_shrunk(self) -> int:
        """How many images were made smaller for the side limit or memory."""
        return sum(image.shrunk for image in self.images)

    @property
    def images_snapped(self) -> int:
        """How many images changed size only to fit the family's grid."""
        return sum(image.snapped for image in self.images)


def as_geometry(spec: Geometry | VisionSpec | None) -> Geometry | None:
    """A family geometry; a bare ``VisionSpec`` means Qwen2-VL's rules with it."""
    return QwenGeometry(spec) if isinstance(spec, VisionSpec) else spec


def plan_image(width: int, height: int, *, max_side: int | None, spec: Geometry | VisionSpec) -> PlannedImage:
    """Plan one image: fit its longer side to ``max_side``, then snap it to the family's rules.

    The aspect ratio is kept and the image never grows, except for the processor's own
    rounding to its grid (<= 14 px for Qwen2.5-VL). The shorter side never drops below
    16 px, so thin images keep their shape. ``max_side=None`` leaves sizing to the
    processor, and so does a fixed-resolution family (``resizable`` False), for which
    a smaller image changes nothing. Raises AspectRatioError beyond the ratio the
    family's processor accepts.
    """
    geometry = as_geometry(spec)
    limit = geometry.max_aspect_ratio
    if limit is not None and max(width, height) / min(width, height) > limit:
        raise AspectRatioError(width, height, limit)
    fitted = (width, height)
    if max_side is not None and geometry.resizable:
        fitted = fit_size(width, height, max_side=max_side, min_side=_min_side(geometry))
    resized = geometry.snap(*fitted)
    layout = geometry.layout(*resized)
    return PlannedImage(
        original=(width, height),
        resized=resized,
        tokens=layout.tokens,
        patches=layout.patches,
        prompt_tokens=layout.tokens + layout.extra_tokens + geometry.wrapper_tokens,
        seen=layout.size,
        processor_kwargs=geometry.processor_kwargs(*resized),
        resizable=geometry.resizable,
        shrunk=fitted != (width, height),
    )


def _min_side(geometry: Geometry) -> int:
    """The shortest side an image is shrunk to: one grid cell where the family has a grid."""
    spec = getattr(geometry, "spec", None)
    return spec.factor if isinstance(spec, VisionSpec) else 16


@dataclass(frozen=True)
class _Shape:
    """Images at one rung of the ladder, with the prompt they make."""

    images: tuple[PlannedImage, ...]
    prompt_tokens: int
    vision_bytes: int

    @property
    def image_tokens(self) -> int:
        return sum(image.prompt_tokens for image in self.images)


@dataclass(frozen=True)
class _Costing:
    """Prices shapes for one request: its text, the model and the processor."""

    text_tokens: int
    model: ModelMemory
    spec: Geometry | None

    def shape(self, images: Sequence[ImageRequest], sides: Sequence[int | None]) -> _Shape:
        planned = tuple(
            plan_image(image.width, image.height, max_side=side, spec=self.spec)  # type: ignore[arg-type]
            for image, side in zip(images, sides, strict=True)
        )
        largest = max((image.patches for image in planned), default=0)
        vision = self.model.vision
        return _Shape(
            images=planned,
            prompt_tokens=self.text_tokens + sum(image.prompt_tokens for image in planned),
            vision_bytes=vision.bytes_for(largest) if vision is not None else 0,
        )

    def used(self, shape: _Shape, max_tokens: int) -> int:
        """Bytes the request holds while running: largest image encode plus its KV cache."""
        return shape.vision_bytes + self.model.kv_bytes(shape.prompt_tokens + max_tokens)


def start_side(image: ImageRequest, *, max_side: int, ceiling_side: int, low_detail_side: int) -> int:
    """Where an image's ladder starts: its ``max_side`` up to the ceiling, else the ceiling for
    ``detail="high"``, ``low_detail_side`` for ``"low"``, the tier's side for ``"auto"``."""
    ceiling = max(ceiling_side, max_side)
    if image.max_side is not None:
        return min(image.max_side, ceiling)
    if image.detail == "high":
        return ceiling
    if image.detail == "low":
        return min(max_side, low_detail_side)
    return max_side


def _rungs(
    images: Sequence[ImageRequest],
    *,
    max_side: int,
    ceiling_side: int,
    floor_side: int,
    low_detail_side: int,
    shrink_factor: float,
) -> list[list[int]]:
    """Target longer sides per image, rung by rung, from the start down to the floor."""
    starts = [
        start_side(image, max_side=max_side, ceiling_side=ceiling_side, low_detail_side=low_detail_side)
        for image in images
    ]
    floors = [min(max(floor_side, image.min_side or 0), start) for image, start in zip(images, starts, strict=True)]
    rungs: list[list[int]] = []
    scale = 1.0
    while True:
        rung = [max(floor, round(start * scale)) for start, floor in zip(starts, floors)]
        if not rungs or rung != rungs[-1]:
            rungs.append(rung)
        if rung == floors:
            return rungs
        scale *= shrink_factor


def _check_arguments(
    *,
    text_tokens: int,
    max_tokens: int | None,
    sizes: dict[str, int],
    positives: dict[str, int],
    shrink_factor: float,
) -> None:
    if text_tokens < 0:
        raise ValueError(f"text_tokens must be non-negative, got {text_tokens}")
    if max_tokens is not None and max_tokens < 1:
        raise ValueError(f"max_tokens must be at least 1, got {max_tokens}")
    for name, value in sizes.items():
        if value < 0:
            raise ValueError(f"{name} must be non-negative, got {value}")
    for name, value in positives.items():
        if value < 1:
            raise ValueError(f"{name} must be positive, got {value}")
    if not 0 < shrink_factor < 1:
        raise ValueError(f"shrink_factor must be in (0, 1), got {shrink_factor}")


def plan_request(
    *,
    text_tokens: int,
    images: Sequence[ImageRequest],
    max_tokens: int | None,
    model: ModelMemory,
    spec: Geometry | VisionSpec | None,
    budget_bytes: int,
    held_bytes: int,
    max_image_side: int,
    min_image_side: int = 224,
    ceiling_image_side: int | None = None,
    guard: bool = True,
    default_max_tokens: int = 4096,
    min_max_tokens: int = 16,
    low_detail_side: int = 448,
    shrink_factor: float = 0.85,
) -> Plan:
    """Plan one request against the memory budget (the ladder is in the module docstring).

    ``budget_bytes`` is what this model may use, its weights included (subtract
    other loaded models' weights first); ``held_bytes`` is what running requests
    hold (``MemoryLedger.held_bytes``). ``max_tokens=None`` means
    ``min(default_max_tokens, context left)``. A ``max_tokens`` above the context
    left, or above what memory allows, is clamped rather than refused, and
    ``max_tokens_clamped_from`` keeps the value asked for. ``max_image_side`` is where
    images start by default; ``ceiling_image_side`` (default: the same) is the most an
    image may start at when it asks for more (``detail="high"``, ``max_side``). ``guard=False``
    measures only: images go to the processor as sent, nothing is clamped or
    refused for memory, and the decision is "admit".

    Raises ContextTooLongError, NeverFitsError, AspectRatioError (all PlanError),
    and ValueError for arguments no client can cause (e.g. images for a text model).
    """
    _check_arguments(
        text_tokens=text_tokens,
        max_tokens=max_tokens,
        sizes={"budget_bytes": budget_bytes, "held_bytes": held_bytes},
        positives={
            "max_image_side": max_image_side,
            "min_image_side": min_image_side,
            "default_max_tokens": default_max_tokens,
            "min_max_tokens": min_max_tokens,
            "low_detail_side": low_detail_side,
        },
        shrink_factor=shrink_factor,
    )
    images = tuple(images)
    spec = as_geometry(spec)
    if images and spec is None:
        raise ValueError("this model takes no images (no geometry); route images elsewhere")
    wanted = max_tokens if max_tokens is not None else default_max_tokens
    context = model.context_length
    costing = _Costing(text_tokens, model, spec)

    if not guard:
        shape = costing.shape(images, [None] * len(images))
        generated = _context_max_tokens(shape, wanted, context)
    else:
        capacity = budget_bytes - model.weights_bytes
        rungs = _rungs(
            images,
            max_side=max_image_side,
            ceiling_side=ceiling_image_side or max_image_side,
            floor_side=min_image_side,
            low_detail_side=low_detail_side,
            shrink_factor=shrink_factor,
        )
        for sides in rungs:
            shape = costing.shape(images, sides)
            room = context - shape.prompt_tokens
            if room < min(wanted, min_max_tokens):
                continue  # the images must shrink for the prompt to fit the context
            if costing.used(shape, min(wanted, room)) <= capacity:
                break
        generated = _context_max_tokens(shape, wanted, context)
        if costing.used(shape, generated) > capacity:
            # Images are at the floor and it is still too big: clamp max_tokens, or refuse.
            least = min(generated, min_max_tokens)
            spare = capacity - shape.vision_bytes
            fits = model.kv_tokens_for(spare) - shape.prompt_tokens
            if fits < least:
                raise _never_fits(costing, images, rungs[-1], least, budget_bytes)
            generated = min(generated, fits)

    reserve = costing.used(shape, generated)
    peak = model.weights_bytes + reserve + held_bytes
    clamped = max_tokens is not None and generated < max_tokens
    return Plan(
        images=shape.images,
        prompt_tokens=shape.prompt_tokens,
        max_tokens=generated,
        max_tokens_clamped_from=max_tokens if clamped else None,
        planned_peak_bytes=peak,
        reserve_bytes=reserve,
        budget_bytes=budget_bytes,
        decision=ADMIT if not guard or peak <= budget_bytes else QUEUE,
    )


def _context_max_tokens(shape: _Shape, wanted: int, context: int) -> int:
    """max_tokens clamped to the context left; ContextTooLongError when none is left."""
    room = context - shape.prompt_tokens
    if room < 1:
        raise ContextTooLongError(shape.prompt_tokens, context, image_tokens=shape.image_tokens)
    return min(wanted, room)


def _never_fits(
    costing: _Costing,
    images: tuple[ImageRequest, ...],
    floor_sides: list[int],
    least_tokens: int,
    budget_bytes: int,
) -> NeverFitsError:
    """Build the 413: what the smallest plan needs, and what would fit instead."""
    weights = costing.model.weights_bytes
    capacity = budget_bytes - weights
    smallest = costing.shape(images, floor_sides)
    tokens = smallest.prompt_tokens + least_tokens
    message = (
        f"This request needs at least {format_bytes(weights + costing.used(smallest, least_tokens))} "
        f"of memory (model weights {format_bytes(weights)}, image encoding "
        f"{format_bytes(smallest.vision_bytes)}, KV cache for {tokens} tokens "
        f"{format_bytes(costing.model.kv_bytes(tokens))}), more than the memory budget "
        f"of {format_bytes(budget_bytes)}."
    )

    def fits(shape: _Shape) -> bool:
        return costing.used(shape, least_tokens) <= capacity

    if capacity <= 0:
        would_fit = f"nothing: the model weights ({format_bytes(weights)}) take the whole budget"
    elif not fits(costing.shape((), ())):
        longest = max(0, costing.model.kv_tokens_for(capacity) - least_tokens)
        would_fit = f"a prompt of at most {longest} tokens with max_tokens={least_tokens}"
        if images:
            would_fit += ", without images"
    else:
        low, high = 0, max(floor_sides)
        while low < high:  # the largest longer side at which all images fit
            middle = (low + high + 1) // 2
            if fits(costing.shape(images, [min(side, middle) for side in floor_sides])):
                low = middle
            else:
                high = middle - 1
        if low >= 1:
            would_fit = (
                f"images no larger than {low} px on the longer side (this server does "
                f"not shrink images below {max(floor_sides)} px itself)"
            )
        else:
            count = len(images) - 1
            while count > 0 and not fits(costing.shape(images[:count], floor_sides[:count])):
                count -= 1
            if count:
                would_fit = f"at most {count} of these {len(images)} images"
            else:
                tiny = costing.shape(images[:1], [1])
                would_fit = (
                    f"no images: encoding even the smallest image takes "
                    f"{format_bytes(tiny.vision_bytes)} and {format_bytes(max(0, capacity))} "
                    "is left after the weights"
                )
    return NeverFitsError(f"{message} What would fit: {would_fit}.", would_fit=would_fit)
