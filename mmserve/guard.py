"""The memory guard as the server uses it: the ``guards`` package plus server state.

``MemoryGuard`` holds the memory reading, the RAM tier, the budget, each engine's
memory shape and the ledger of what running requests hold. For every request it
makes a ``guards`` plan, resizes the images to it (cached by content), waits for
memory when the plan says so, and says what it did in the response's ``mmserve``
object.
"""

from __future__ import annotations

import asyncio
import threading
from collections import Counter
from dataclasses import dataclass, field

import structlog
from cachetools import TTLCache

import guards
import guards.families
from guards import images as guard_images
from guards.plan import start_side

from .engines.messages import ImageData
from .errors import ContextLengthError, ImageError, MMServeError, OverloadedError, PayloadTooLargeError

__all__ = ["MemoryGuard", "Planned"]

log = structlog.get_logger("mmserve.guard")

LOW_DETAIL_SIDE = 448  # where detail "low" images start (OpenAI's low detail is a 512 px square)


@dataclass
class Planned:
    images: list[ImageData]
    max_tokens: int
    report: dict
    release: object  # callable, idempotent
    processor_kwargs: dict = field(default_factory=dict)
    decision: str = "admit"  # or "queue": it waited for memory


def _image_report(image: guards.PlannedImage) -> dict:
    """What the response says the guard did to one image."""
    report = {"original": list(image.original), "resized": list(image.resized), "tokens": image.tokens}
    if image.shrunk:
        report["shrunk"] = True  # made smaller for the side limit or memory
    elif image.snapped:
        report["snapped"] = True  # only rounded to the model's grid
    if image.prompt_tokens != image.tokens:
        report["prompt_tokens"] = image.prompt_tokens
    if image.seen is not None and image.seen != image.resized:
        report["model_input"] = list(image.seen)
    if not image.resizable:
        report["fixed_resolution"] = True  # a smaller image would not have cost less
    return report


def _merged_kwargs(images) -> dict:
    """One set of processor options for a request's images (the last image's where they differ)."""
    merged: dict = {}
    for image in images:
        merged.update(image.processor_kwargs)
    return merged


def _asked(ref, name: str) -> int | None:
    """A side the request asked for (``ImageRef.max_side`` / ``min_side``); None where it asked none."""
    return getattr(ref, name, None)


def _nothing() -> None:
    pass


def _client_error(exc: guards.PlanError, job) -> MMServeError:
    """The answer a client gets for a plan that cannot run (now, or ever)."""
    if isinstance(exc, guards.ContextTooLongError):
        return ContextLengthError(str(exc), param="messages")
    if isinstance(exc, guards.AspectRatioError):
        return ImageError(str(exc), param=job.images[0].param if job.images else "messages")
    if isinstance(exc, guards.BusyError):
        return OverloadedError(str(exc), retry_after=exc.retry_after_s)
    return PayloadTooLargeError(str(exc), code="insufficient_memory")  # NeverFitsError


class MemoryGuard:
    def __init__(self, settings) -> None:
        self.settings = settings
        self.reading = guards.read_host_memory()
        self.tier = guards.tier_for(self.reading.total_bytes)
        self.budget_bytes = self._budget()
        self.max_image_side = settings.max_image_side or self.tier.max_image_side
        self.ceiling_image_side = self._ceiling()
        # Each worker keeps finished requests' KV for prefix reuse, within this bound.
        self.prefix_cache_bytes = min(self.budget_bytes // 16, 1 << 30)
        self.models: dict[str, guards.ModelMemory] = {}
        self.replicas: dict[str, int] = {}  # workers per engine, each with its own copy of the model
        # Image geometry per vision engine: its family's rules, or None where the worker's
        # processor counts each request's images (no geometry, or one that failed its check).
        self.geometries: dict[str, guards.families.Geometry | None] = {}
        self.vision_check: dict | None = None
        self.calibration: dict | None = None
        self.ledger = guards.MemoryLedger(self.budget_bytes)
        self.decisions: Counter[str] = Counter()
        # Resized images by (content hash, size): the same page asked again is decoded and resized once.
        self._resized: TTLCache = TTLCache(maxsize=settings.image_cache_items, ttl=settings.image_cache_ttl_s)
        self._resized_lock = threading.Lock()  # filled from resize threads

    def _budget(self) -> int:
        if self.settings.memory_budget:
            budget = guards.parse_budget(self.settings.memory_budget, self.reading.total_bytes)
        else:
            budget = guards.default_budget(self.reading, self.tier)
        if self.reading.backend == "cuda":
            budget = min(budget, self.reading.total_bytes // 2)  # the workers' mlx limit on CUDA
        return budget

    def _ceiling(self) -> int:
        """The most a request may ask an image to start at: ``--max-image-side`` when set
        (it bounds every request), else the tier's ceiling."""
        return self.settings.max_image_side or self.tier.ceiling_side

    def limits(self) -> dict:
        """What a client needs to size its images: the sides the guard starts at and allows,
        and the intake limits (advertised in ``/v1/models``)."""
        return {
            "image_side": self.max_image_side,
            "max_image_side": self.ceiling_image_side,
            "min_image_side": self.settings.min_image_side,
            "low_detail_side": LOW_DETAIL_SIDE,
            "max_image_bytes": self.settings.max_image_bytes,
            "max_images": self.settings.max_images,
            "max_body_bytes": self.settings.max_body_bytes,
            "max_batch_size": self.settings.max_batch_size,
            "tier": self.tier.name,
        }

    def attach(self, engine) -> None:
        """Take an engine's memory shape from its Ready message (and the device reading it
        carries), and the number of its workers."""
        ready = engine.ready
        if ready.backend != "cpu":  # the device's memory, which a --memory-budget share is of too
            self.reading = guards.reading_from_device_info(ready.backend, ready.device_info)
            self.tier = guards.tier_for(self.reading.total_bytes)
            self.budget_bytes = self._budget()
            self.max_image_side = self.settings.max_image_side or self.tier.max_image_side
            self.ceiling_image_side = self._ceiling()
        vision = None
        if ready.vision and engine.kind in self.models:
            vision = self.models[engine.kind].vision  # another or a restarted worker: keep the first calibration
        elif ready.vision:
            self._attach_geometry(engine.kind, ready.vision)
            vision = guards.DEFAULT_VISION_COST
            if len(ready.calibration) >= 3 or len({p for _, _, p, _ in ready.calibration}) == 1:
                calibration = guards.Calibration.fit(ready.calibration)
                largest = self._largest_patches(engine.kind)
                vision = calibration.safe_cost(up_to_patches=largest)
                self.calibration = {
                    **calibration.as_dict(),
                    "predicted": [vision.bytes_for(p) for _, _, p, _ in calibration.samples],
                    "planned_up_to_patches": largest,
                    "margin": round(calibration.extrapolation_margin(largest), 4),
                }
                log.info(
                    "vision calibrated",
                    max_rel_error=round(calibration.max_rel_error, 3),
                    samples=len(calibration.samples),
                )
        self.models[engine.kind] = guards.ModelMemory(
            weights_bytes=ready.weights_bytes,
            kv_bytes_per_token=ready.kv_bytes_per_token,
            context_length=ready.context_length,
            vision=vision,
            kv_layout=guards.KVLayout.from_dict(ready.kv_layout) if ready.kv_layout else None,
        )
        self.replicas[engine.kind] = engine.replicas
        self.ledger.set_capacity(max(self.budget_bytes - self._resident_bytes(), 0))

    def _attach_geometry(self, kind: str, vision: dict) -> None:
        """The engine's image geometry as its worker checked it at load (see ``VisionEngine.check_geometry``)."""
        check = vision.get("check") or {}
        self.vision_check = check
        geometry = guards.families.geometry_for(vision["checkpoint"]) if check.get("ok") else None
        if geometry is not None:
            self.geometries[kind] = geometry.with_wrapper(int(check.get("wrapper_tokens", 0)))
        else:
            self.geometries[kind] = None
            log.warning(
                "image tokens counted by the processor per request",
                model_type=guards.families.Checkpoint(**vision["checkpoint"]).model_type,
                reason=check.get("reason"),
            )

    def _largest_patches(self, kind: str) -> int | None:
        """The most patches the guard will plan for one image: a square at the ceiling side."""
        geometry = self.geometries.get(kind)
        if geometry is None:
            return None
        side = self.ceiling_image_side
        return geometry.layout(*geometry.snap(side, side)).patches

    def sizes_to_count(self, kind: str, decoded: list, refs: list = ()) -> list[tuple[int, int]]:
        """Where an engine has no trusted geometry, the sizes its images will be sent at, for
        the worker's processor to count; nothing otherwise."""
        if kind not in self.geometries or self.geometries[kind] is not None:
            return []
        refs = list(refs) or [None] * len(decoded)
        return [self._fitted(d.width, d.height, ref) for d, ref in zip(decoded, refs, strict=True)]

    def _fitted(self, width: int, height: int, ref=None) -> tuple[int, int]:
        side = self.max_image_side if ref is None else self._start_side(width, height, ref)
        return guard_images.fit_size(width, height, max_side=side, min_side=16)

    def _image_request(self, decoded, ref) -> guards.ImageRequest:
        return guards.ImageRequest(
            decoded.width,
            decoded.height,
            ref.detail,
            max_side=_asked(ref, "max_side"),
            min_side=_asked(ref, "min_side"),
        )

    def _start_side(self, width: int, height: int, ref) -> int:
        """Where the ladder starts for this image (the tier's side, the ceiling, or what it asked)."""
        return start_side(
            guards.ImageRequest(width, height, ref.detail, max_side=_asked(ref, "max_side")),
            max_side=self.max_image_side,
            ceiling_side=self.ceiling_image_side,
            low_detail_side=LOW_DETAIL_SIDE,
        )

    def replicas_for(self, kind: str, wanted: int) -> int:
        """How many copies of an attached engine's model to run: up to ``wanted``, while
        everything that stays in memory keeps within half the budget."""
        return guards.replicas_that_fit(
            wanted,
            replica_bytes=self.models[kind].weights_bytes + self.prefix_cache_bytes,
            resident_bytes=self._resident_bytes(),
            budget_bytes=self.budget_bytes,
        )

    def _resident_bytes(self) -> int:
        """What stays in memory whatever the load: the weights and prefix caches of every
        engine's workers."""
        return sum(
            (model.weights_bytes + self.prefix_cache_bytes) * self.replicas[kind] for kind, model in self.models.items()
        )

    def _model_for(self, kind: str) -> guards.ModelMemory:
        """The engine's shape, with everything resident counted as its weights."""
        model = self.models[kind]
        return guards.ModelMemory(
            weights_bytes=self._resident_bytes(),
            kv_bytes_per_token=model.kv_bytes_per_token,
            context_length=model.context_length,
            vision=model.vision,
            kv_layout=model.kv_layout,
        )

    def _geometry(self, kind: str, decoded: list, counted: list, refs: list) -> guards.families.Geometry | None:
        """The engine's geometry, or the processor's counts for these images where it has none."""
        geometry = self.geometries.get(kind)
        if geometry is not None or not decoded:
            return geometry
        return guards.families.Measured(
            images={
                (d.width, d.height): (self._fitted(d.width, d.height, ref), tokens, prompt)
                for d, ref, (tokens, prompt) in zip(decoded, refs, counted, strict=True)
            }
        )

    def _plan(self, kind: str, job, decoded: list, text_tokens: int, counted) -> guards.Plan:
        """The guards plan of a request now: image sizes and tokens, max_tokens, memory."""
        return guards.plan_request(
            text_tokens=text_tokens,
            images=[self._image_request(d, ref) for d, ref in zip(decoded, job.images)],
            max_tokens=job.max_tokens,
            model=self._model_for(kind),
            spec=self._geometry(kind, decoded, list(counted), list(job.images)),
            budget_bytes=self.budget_bytes,
            held_bytes=self.ledger.held_bytes,
            max_image_side=self.max_image_side,
            min_image_side=self.settings.min_image_side,
            ceiling_image_side=self.ceiling_image_side,
            low_detail_side=LOW_DETAIL_SIDE,
            default_max_tokens=self.settings.default_max_tokens,
            guard=not self.settings.no_guard,
        )

    def preview(self, kind: str, job, decoded: list, text_tokens: int, counted: list = ()) -> dict:
        """What ``plan`` would do to a request's images now, without resizing or reserving:
        the prompt's tokens with every image at its planned size, and each image's report."""
        try:
            plan = self._plan(kind, job, decoded, text_tokens, counted)
        except guards.PlanError as exc:
            raise _client_error(exc, job) from None
        return {"prompt_tokens": plan.prompt_tokens, "images": [_image_report(p) for p in plan.images]}

    async def plan(self, engine, job, decoded: list, text_tokens: int, counted: list = ()) -> Planned:
        """Plan, resize and reserve memory for one request; raises the client-facing errors.

        ``counted`` holds the processor's counts for the sizes of ``sizes_to_count``. A request
        for ``n`` choices holds what one sequence needs ``n`` times."""
        held_when_planned = self.ledger.held_bytes
        try:
            plan = self._plan(engine.kind, job, decoded, text_tokens, counted)
            images = await asyncio.gather(
                *(asyncio.to_thread(self._resized_image, d, p.resized) for d, p in zip(decoded, plan.images))
            )
            if plan.images_shrunk:
                self.decisions["resized"] += plan.images_shrunk
            if plan.images_snapped:
                self.decisions["snapped"] += plan.images_snapped
            if plan.max_tokens_clamped_from is not None:
                self.decisions["clamped"] += 1
            if plan.decision == "queue":
                self.decisions["queued"] += 1
            if self.settings.no_guard:  # measurement only: nothing is held back
                release, held_when_admitted = _nothing, held_when_planned
            else:
                reservation = await self.ledger.reserve(
                    plan.reserve_bytes * job.n, timeout_s=self.settings.memory_wait_s
                )
                release, held_when_admitted = reservation.release, reservation.held_before
        except guards.PlanError as exc:
            self.decisions["refused"] += 1
            raise _client_error(exc, job) from None

        report: dict = {
            "route": job.route.kind,
            "model": engine.name,
            "images": [
                {**_image_report(p), "start_side": self._start_side(d.width, d.height, ref)}
                for p, d, ref in zip(plan.images, decoded, job.images)
            ],
            "resized_count": plan.images_shrunk,  # shrunk for the side limit or memory
            "snapped_count": plan.images_snapped,  # only rounded to the model's grid
            "prompt_tokens_planned": plan.prompt_tokens,
            # The peak it was admitted under: after a wait for memory, others hold less than when it was planned.
            "memory": {
                "budget_bytes": plan.budget_bytes,
                "planned_peak_bytes": plan.planned_peak_bytes
                + plan.reserve_bytes * (job.n - 1)
                - held_when_planned
                + held_when_admitted,
            },
        }
        if plan.max_tokens_clamped_from is not None:
            report["max_tokens_clamped_from"] = plan.max_tokens_clamped_from
        return Planned(
            images=list(images),
            max_tokens=plan.max_tokens,
            report=report,
            release=release,
            processor_kwargs=_merged_kwargs(plan.images),
            decision=plan.decision,
        )

    def _resized_image(self, decoded, size: tuple[int, int]) -> ImageData:
        key = (decoded.sha256, size)
        with self._resized_lock:
            cached = self._resized.get(key)
        if cached is not None:
            return cached
        image = (
            decoded.image
            if (decoded.width, decoded.height) == tuple(size)
            else guard_images.resize(decoded.image, size)
        )
        data = ImageData(width=size[0], height=size[1], rgb=image.tobytes(), sha256=decoded.sha256)
        with self._resized_lock:
            self._resized[key] = data
        return data

    def status(self) -> dict:
        return {
            "tier": self.tier.name,
            "backend": self.reading.backend,
            "total_bytes": self.reading.total_bytes,
            "available_bytes": guards.read_host_memory().available_bytes
            if self.reading.backend == "cpu"
            else self.reading.available_bytes,
            "budget_bytes": self.budget_bytes,
            "held_bytes": self.ledger.held_bytes,
            "max_image_side": self.max_image_side,
            "ceiling_image_side": self.ceiling_image_side,
            "enabled": not self.settings.no_guard,
            "calibration": self.calibration,
            "image_geometry": self.vision_check,
            "decisions": dict(self.decisions),
        }
