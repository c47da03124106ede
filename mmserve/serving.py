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
from .errors import InternalError, InvalidRequestError
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
    choices: int = 1  # n


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
            bounds = (
                (ready.vocab_size, ready.context_length, ready.longest_token_chars, ready.tool_format) if ready else ()
            )
            routes.append(Route(kind, engine.name, engine.spec.path, *bounds))
        return routes

    async def prepare(self, job: Job, log: dict) -> Prepared:
        started = time.monotonic()
        if job.n > self.guard.settings.max_choices:
            raise InvalidRequestError(
                f"n is {job.n}; this server gives at most {self.guard.settings.max_choices} choices (max_choices)",
                param="n",
                code="invalid_value",
            )
        pool = self.engines[job.route.kind]
        log.update(route=job.route.kind, model=pool.name, images=len(job.images))
        engine = pool.admit(affinity=_affinity(job))
        try:
            decoded, counted = await self._intake(pool, engine, job)
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
            parallel_tool_calls=job.parallel_tool_calls,
            template_kwargs=job.template_kwargs,
            logprobs=job.logprobs,
            prompt=job.prompt,
        )

        released = False

        def release() -> None:
            """Give back the memory reservation and the queue place; safe to call more than once."""
            nonlocal released
            if not released:
                released = True
                planned.release()
                engine.leave()

        return Prepared(
            engine=engine, generate=generate, report=planned.report, release=release, log=log, choices=job.n
        )

    async def _intake(self, pool: EnginePool, engine: EngineClient, job: Job) -> tuple[list, messages.Counted]:
        """The request's images fetched and decoded, and its prompt counted by the engine (with
        the processor's counts for images where the guard trusts no geometry)."""
        decoded = await self.media.load_all([(ref.url, ref.param) for ref in job.images]) if job.images else []
        sizes = self.guard.sizes_to_count(pool.kind, decoded, job.images)
        counted = await engine.ask(
            lambda rid: messages.Count(
                rid, job.messages, len(job.images), list(sizes), job.tools, job.template_kwargs or {}, job.prompt
            ),
            param="messages",
        )
        return decoded, counted

    async def tokenize(self, job: Job, add_special_tokens: bool) -> dict:
        """A prompt's token ids on its engine; with images, the count the guard would plan now
        (each image at its planned size) and what it would do to each."""
        pool = self.engines[job.route.kind]
        engine = pool.admit(affinity=_affinity(job))
        try:
            reply = await engine.ask(
                lambda rid: messages.Tokenize(
                    id=rid,
                    messages=job.messages,
                    n_images=len(job.images),
                    tools=job.tools,
                    template_kwargs=job.template_kwargs,
                    prompt=job.prompt,
                    add_special_tokens=add_special_tokens,
                )
            )
            result = {"tokens": reply.tokens, "count": len(reply.tokens), "max_model_len": job.route.context_length}
            if job.images:
                decoded, counted = await self._intake(pool, engine, job)
                preview = self.guard.preview(pool.kind, job, decoded, counted.text_tokens, counted.images)
                result.update(count=preview["prompt_tokens"], mmserve={"images": preview["images"]})
            return result
        finally:
            engine.leave()

    async def detokenize(self, route: Route, tokens: list[int]) -> str:
        engine = self.engines[route.kind].admit()
        try:
            return (await engine.ask(lambda rid: messages.Detokenize(rid, tokens), param="tokens")).text
        finally:
            engine.leave()

    async def events(self, prepared: Prepared) -> AsyncIterator[tuple[int, messages.Delta | messages.Finished]]:
        """The engine's events for this request, each with the index of its choice; ends the
        request in the worker if abandoned. The choices of a request for ``n`` run side by side
        in the worker's batch (a seed gives choice ``i`` the seed plus ``i``)."""
        log = prepared.log
        started = time.monotonic()
        deadline = asyncio.get_running_loop().time() + self.request_timeout_s
        streams = [
            prepared.engine.generate(lambda rid, i=i: _with_id(_choice(prepared.generate, i), rid))
            for i in range(prepared.choices)
        ]
        # One choice (the usual case) is read directly: no merging layer on every token.
        single = len(streams) == 1
        stream = streams[0] if single else _merged(streams)
        prompt_tokens = completion_tokens = 0
        try:
            while True:
                try:
                    # In this task, not another (as asyncio.wait_for makes one on Python 3.11): a
                    # client that leaves cancels this task, and wait_for dropped a cancellation
                    # that came as a token arrived, so the generation ran on to its end.
                    async with asyncio.timeout_at(deadline):
                        item = await anext(stream)
                except StopAsyncIteration:
                    return
                except TimeoutError:
                    raise InternalError(
                        "the request took longer than the server's request timeout", code="timeout"
                    ) from None
                if "ttft_ms" not in log:  # from the start of intake
                    log["ttft_ms"] = round(log.get("intake_ms", 0) + _ms(time.monotonic() - started), 1)
                event = (0, item) if single else item
                finished = event[1]
                if isinstance(finished, messages.Finished):
                    prompt_tokens = max(prompt_tokens, finished.prompt_tokens)  # the prompt once, as OpenAI counts it
                    completion_tokens += finished.completion_tokens
                    log.update(
                        prompt_tokens=prompt_tokens,
                        completion_tokens=completion_tokens,
                        cached_tokens=finished.cached_tokens,
                        **finished.timings,
                    )
                yield event
        finally:
            await stream.aclose()


async def _merged(streams: list) -> AsyncIterator[tuple[int, object]]:
    """The events of several streams as they come, each with its stream's index."""
    queue: asyncio.Queue = asyncio.Queue()
    done = object()

    async def pump(index: int, stream) -> None:
        try:
            async for event in stream:
                await queue.put((index, event))
            await queue.put((index, done))
        except BaseException as exc:  # handed to the reader, which raises it
            await queue.put((index, exc))

    pumps = [asyncio.create_task(pump(i, stream)) for i, stream in enumerate(streams)]
    try:
        running = len(streams)
        while running:
            index, event = await queue.get()
            if event is done:
                running -= 1
            elif isinstance(event, BaseException):
                raise event
            else:
                yield index, event
    finally:
        for task in pumps:
            task.cancel()
        await asyncio.gather(*pumps, return_exceptions=True)
        await asyncio.gather(*(stream.aclose() for stream in streams), return_exceptions=True)


def _choice(generate: messages.Generate, index: int) -> messages.Generate:
    """Choice ``index`` of a request: its own seed where the request gave one."""
    seed = generate.sampling.seed
    if not index or seed is None:
        return generate
    sampling = msgspec.structs.replace(generate.sampling, seed=(seed + index + (1 << 63)) % (1 << 64) - (1 << 63))
    return msgspec.structs.replace(generate, sampling=sampling)


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
