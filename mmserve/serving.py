"""Chat serving: a ``Job`` through image intake, the memory guard and an engine.

The controller (``api/chat.py``) owns HTTP; this module owns the order of work:
route -> fetch and decode images -> count tokens -> plan memory (resize, clamp) ->
wait for memory -> generate. Everything that can fail with a 4xx fails before the
first byte of the response.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import msgspec

from .engines import messages
from .engines.supervisor import EngineClient, EnginePool
from .errors import InternalError
from .guard import MemoryGuard
from .media import MediaLoader
from .normalize import Job, Route

__all__ = ["ChatService", "Prepared"]


@dataclass
class Prepared:
    """A request that passed every check and holds its memory reservation."""

    engine: EngineClient
    generate: messages.Generate  # id filled in per attempt
    report: dict  # the `mmserve` object of the response
    release: object  # callable: gives the memory back
    log: dict = field(default_factory=dict)


class ChatService:
    def __init__(
        self, engines: dict[str, EnginePool], guard: MemoryGuard, media: MediaLoader, request_timeout_s: float
    ) -> None:
        self.engines = engines
        self.guard = guard
        self.media = media
        self.request_timeout_s = request_timeout_s
        # Engines not started yet, by kind: what is happening instead (finding or downloading the model).
        self.loading: dict[str, str] = {}

    def routes(self) -> list[Route]:
        routes = []
        for kind, engine in self.engines.items():
            ready = engine.ready
            bounds = (ready.vocab_size, ready.context_length, ready.longest_token_chars, ready.tool_format) if ready else ()
            routes.append(Route(kind, engine.name, engine.spec.path, *bounds))
        return routes

    async def prepare(self, job: Job, log: dict) -> Prepared:
        started = time.monotonic()
        pool = self.engines[job.route.kind]
        log.update(route=job.route.kind, model=pool.name, images=len(job.images))
        engine = pool.admit(affinity=_affinity(job))
        try:
            decoded = await self.media.load_all([(ref.url, ref.param) for ref in job.images]) if job.images else []
            sizes = self.guard.sizes_to_count(pool.kind, decoded, job.images)
            counted = await engine.count(job.messages, len(job.images), sizes, job.tools, job.template_kwargs)
            planned = await self.guard.plan(engine, job, decoded, counted.text_tokens, counted.images)
        except BaseException:
            engine.leave()
            raise
        # Images fetched and decoded, tokens counted, the plan made and its memory granted.
        log.update(_guard_fields(planned), intake_ms=_ms(time.monotonic() - started))
        generate = messages.Generate(
            id="",
            messages=job.messages,
            images=planned.images,
            max_tokens=planned.max_tokens,
            sampling=job.sampling,
            stop=job.stop,
            processor_kwargs=planned.processor_kwargs,
            grammar=job.grammar,
            tools=job.tools,
            template_kwargs=job.template_kwargs,
            logprobs=job.logprobs,
        )

        released = False

        def release() -> None:
            """Give back the memory reservation and the queue place; safe to call more than once."""
            nonlocal released
            if not released:
                released = True
                planned.release()
                engine.leave()

        return Prepared(engine=engine, generate=generate, report=planned.report, release=release, log=log)

    async def events(self, prepared: Prepared) -> AsyncIterator[messages.Delta | messages.Finished]:
        """The engine's events for this request; ends the request in the worker if abandoned."""
        log = prepared.log
        started = time.monotonic()
        deadline = started + self.request_timeout_s
        stream = prepared.engine.generate(lambda rid: _with_id(prepared.generate, rid))
        try:
            while True:
                try:
                    event = await asyncio.wait_for(anext(stream), max(deadline - time.monotonic(), 0))
                except StopAsyncIteration:
                    return
                except TimeoutError:
                    raise InternalError(
                        "the request took longer than the server's request timeout", code="timeout"
                    ) from None
                if "ttft_ms" not in log:  # from the start of intake
                    log["ttft_ms"] = round(log.get("intake_ms", 0) + _ms(time.monotonic() - started), 1)
                if isinstance(event, messages.Finished):
                    log.update(
                        prompt_tokens=event.prompt_tokens,
                        completion_tokens=event.completion_tokens,
                        cached_tokens=event.cached_tokens,
                        **event.timings,
                    )
                yield event
        finally:
            await stream.aclose()


def _guard_fields(planned) -> dict:
    """What the guard did, for the request's log line: each image's size in and out, how
    many were shrunk or only snapped to the grid, a clamped max_tokens, the planned peak."""
    report = planned.report
    fields: dict = {"resized": report.get("resized_count", 0)}
    if report.get("snapped_count"):
        fields["snapped"] = report["snapped_count"]
    if report.get("images"):
        fields["image_sizes"] = [
            "{}x{}>{}x{}".format(*image["original"], *image["resized"]) for image in report["images"]
        ]
    if "max_tokens_clamped_from" in report:
        fields["max_tokens_clamped_from"] = report["max_tokens_clamped_from"]
    fields["planned_bytes"] = report.get("memory", {}).get("planned_peak_bytes")
    if getattr(planned, "decision", "admit") == "queue":
        fields["waited_for_memory"] = True
    return fields


def _affinity(job: Job) -> int:
    """A number that the request's first image decides, or else the conversation's first
    message: a page asked again, a conversation's later turns and requests sharing a
    system prompt prefer one worker, whose caches hold their features and prefix."""
    if job.images:
        return hash(job.images[0].url)
    return hash(msgspec.json.encode(job.messages[0])) if job.messages else 0


def _ms(seconds: float) -> float:
    return round(seconds * 1000, 1)


def _with_id(generate: messages.Generate, request_id: str) -> messages.Generate:
    return msgspec.structs.replace(generate, id=request_id)
