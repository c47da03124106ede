"""The engine worker process: loads one model and serves ``messages`` over a socket.

Started by the supervisor as ``python -m mmserve.engines.worker --engine text|vision
--model PATH --fd N``. Three kinds of thread:

- the loop thread owns the batch: it admits prepared requests between decode steps
  and streams tokens out;
- preparer threads (each with its own mlx stream) do the per-request work before a
  request can join the batch — templating, image preprocessing, the vision encoder —
  so a new image never stalls the sequences already decoding (on mlx's CPU backend
  each op runs on one core: this is what puts the other cores to work);
- counter threads (each with its own mlx stream) answer ``Count``: templating and
  tokenizing a prompt, and the processor's counts for images, which take time in
  proportion to what a client sent;
- the channel's reader thread answers ``StatsRequest`` and hands everything else on,
  so it never waits on work that depends on a request's size.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import queue
import signal
import socket
import sys
import time
import traceback
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

from . import messages
from .channel import Channel
from .families import UnservedFamilyError

# The image side at which a restarted worker, which does not calibrate, checks its geometry.
DEFAULT_CHECK_SIDE = 1536

__all__ = ["main"]


class StopMatcher:
    """Finds one stop string in a text given piece by piece, in time linear in the text.

    A Knuth-Morris-Pratt automaton: ``state`` is the length of the longest prefix of the
    stop string that the text seen so far ends with, so each character costs amortised
    constant time, however long the stop string and however often the text is fed.
    """

    def __init__(self, stop: str) -> None:
        self.stop = stop
        self.state = 0
        self.fallback = [0] * len(stop)  # the longest proper border of stop[: i + 1]
        border = 0
        for i in range(1, len(stop)):
            while border and stop[i] != stop[border]:
                border = self.fallback[border - 1]
            if stop[i] == stop[border]:
                border += 1
            self.fallback[i] = border

    def feed(self, text: str) -> int:
        """Advance over ``text``; where the stop string ends in it first, the index one past
        its end in ``text``, else -1 (and ``state`` says how much of it is pending)."""
        stop, fallback, state = self.stop, self.fallback, self.state
        for index, char in enumerate(text):
            while state and char != stop[state]:
                state = fallback[state - 1]
            if char == stop[state]:
                state += 1
            if state == len(stop):
                self.state = 0
                return index + 1
        self.state = state
        return -1


@dataclass
class TextAssembler:
    """Turns tokens into text deltas, holding back what could be the start of a stop string."""

    detokenizer: object
    stop: list[str]
    pending: str = ""
    stopped: bool = False
    matchers: list[StopMatcher] = field(init=False)

    def __post_init__(self) -> None:
        self.matchers = [StopMatcher(stop) for stop in self.stop]

    def add(self, token: int) -> str:
        self.detokenizer.add_token(token)
        return self._release(self.detokenizer.last_segment, final=False)

    def finish(self) -> str:
        if self.stopped:
            return ""
        self.detokenizer.finalize()
        return self._release(self.detokenizer.last_segment, final=True)

    def _release(self, segment: str, *, final: bool) -> str:
        """What may go out after ``segment``: text up to the earliest stop string, or all of it
        but the longest tail that may still become one."""
        start = len(self.pending)
        self.pending += segment
        cuts = [start + end - len(matcher.stop) for matcher in self.matchers if (end := matcher.feed(segment)) >= 0]
        if cuts:
            out, self.pending, self.stopped = self.pending[: min(cuts)], "", True
            return out
        hold = 0 if final else max((matcher.state for matcher in self.matchers), default=0)
        cut = len(self.pending) - hold
        out, self.pending = self.pending[:cut], self.pending[cut:]
        return out


@dataclass(frozen=True)
class _Prepared:
    """A preparer thread's result for a request, put on the loop's inbox."""

    request: messages.Generate
    result: object  # the engine's prepared input, or the exception preparing raised
    received: float = 0.0  # time.monotonic() when the worker got the request
    started: float = 0.0  # ... when a preparer thread took it up
    done: float = 0.0  # ... when preparing ended


@dataclass
class Running:
    id: str
    uid: int
    prompt_tokens: int
    assembler: TextAssembler
    parts: object = None  # replies.ReplyParts: the reply split into answer, thinking and tool calls
    logprobs: object = None  # logprobs.TokenLogprobs where the request asked for them
    token_logprobs: list[dict] = field(default_factory=list)  # entries not yet sent
    completion_tokens: int = 0
    cached_tokens: int = 0
    timings: dict[str, float] = field(default_factory=dict)  # phase -> ms, for Finished
    admitted: float = 0.0
    first_token: float = 0.0

    def take_logprobs(self) -> list[dict]:
        taken, self.token_logprobs = self.token_logprobs, []
        return taken


class Worker:
    """The generation loop: admit new requests between decode steps, stream tokens out."""

    def __init__(self, engine, channel: Channel, preparers: int = 1) -> None:
        self.engine = engine
        self.channel = channel
        self.running: dict[int, Running] = {}  # by engine uid
        self.by_id: dict[str, int] = {}
        self.preparing: set[str] = set()
        self.pool = ThreadPoolExecutor(preparers, thread_name_prefix="prepare", initializer=_own_stream)
        self.counters = ThreadPoolExecutor(2, thread_name_prefix="count", initializer=_own_stream)
        self.closing = False

    # -- messages handled on the reader thread --------------------------------

    def on_message(self, message) -> bool:
        if isinstance(message, (messages.Count, messages.Tokenize, messages.Detokenize)):
            self.counters.submit(self._answer, message)
            return True
        if isinstance(message, messages.StatsRequest):
            from .common import memory_stats

            prefix = getattr(self.engine, "prefix_cache_bytes", 0)
            self.channel.send(memory_stats(message.id, self.engine.memory_limit, len(self.running), prefix))
            return True
        return False

    def _answer(self, message: messages.Count | messages.Tokenize | messages.Detokenize) -> None:
        """On a counter thread: a prompt's counts (its text tokens, and the processor's counts
        for images of the sizes asked), its token ids, or the text of token ids; a 400 when
        the template or tokenizer refuses them."""
        engine = self.engine
        try:
            if isinstance(message, messages.Count):
                tokens = engine.count(
                    message.messages, message.n_images, message.tools, message.template_kwargs, message.prompt
                )
                images = engine.image_tokens([tuple(size) for size in message.sizes]) if message.sizes else []
                reply = messages.Counted(message.id, tokens, images)
            elif isinstance(message, messages.Tokenize):
                reply = messages.Tokens(message.id, tokens=engine.tokenize(message))
            else:
                reply = messages.Tokens(message.id, text=engine.replies_tokenizer.decode(message.tokens))
        except Exception as exc:  # a template that rejects these messages, ids past the vocabulary
            reply = messages.Failed(id=message.id, message=_short(exc), status=400, code="invalid_messages")
        self.channel.send(reply)

    # -- the loop ---------------------------------------------------------------

    def run(self) -> None:
        while True:
            for message in self._drain(block=not self.running):
                if message is Channel.CLOSED:
                    return  # the server is gone: nobody to answer
                self._handle(message)
            if self.closing and not self.running and not self.preparing:
                return
            if self.running:
                self._step()

    def _drain(self, *, block: bool) -> list:
        inbox = self.channel.inbox
        out = []
        try:
            out.append(inbox.get(timeout=0.5) if block else inbox.get_nowait())
            while True:
                out.append(inbox.get_nowait())
        except queue.Empty:
            pass
        return out

    def _handle(self, message) -> None:
        if isinstance(message, messages.Generate):
            self.preparing.add(message.id)
            self.pool.submit(self._prepare, message, time.monotonic())
        elif isinstance(message, _Prepared):
            self._admit(message)
        elif isinstance(message, messages.Cancel):
            uid = self.by_id.get(message.id)
            if uid is not None:
                self.engine.remove(uid)
                self._finish(self.running[uid], "cancelled")
            elif message.id in self.preparing:  # dropped when its preparation comes back
                self.preparing.discard(message.id)
                self.channel.send(
                    messages.Finished(id=message.id, finish_reason="cancelled", prompt_tokens=0, completion_tokens=0)
                )
        elif isinstance(message, messages.Shutdown):
            self.closing = True

    def _prepare(self, request: messages.Generate, received: float) -> None:
        """On a preparer thread: the engine's per-request work, handed back to the loop."""
        started = time.monotonic()
        try:
            result = self.engine.prepare(request)
        except Exception as exc:
            result = exc
        self.channel.inbox.put(_Prepared(request, result, received, started, time.monotonic()))

    def _admit(self, prepared: _Prepared) -> None:
        request = prepared.request
        if request.id not in self.preparing:
            return  # cancelled while it was being prepared
        self.preparing.discard(request.id)
        try:
            if isinstance(prepared.result, Exception):
                raise prepared.result
            admitted = self.engine.insert(prepared.result)
        except Exception as exc:
            _log_exception("request failed in the worker", request_id=request.id)
            self.channel.send(messages.Failed(id=request.id, message=_short(exc), status=500))
            return
        run = Running(
            id=request.id,
            uid=admitted.uid,
            prompt_tokens=admitted.prompt_tokens,
            cached_tokens=admitted.cached_tokens,
            assembler=TextAssembler(self.engine.detokenizer(), list(request.stop)),
            parts=admitted.parts,
            logprobs=admitted.logprobs,
            admitted=time.monotonic(),
        )
        if prepared.received:
            run.timings = {
                "queue_ms": _ms(prepared.started - prepared.received),  # waiting for a preparer thread
                "prepare_ms": _ms(prepared.done - prepared.started),  # templating, images, encoder
                "admit_ms": _ms(run.admitted - prepared.done),  # waiting for the loop to take it in
            }
        self.running[run.uid] = run
        self.by_id[run.id] = run.uid

    def _step(self) -> None:
        try:
            events = self.engine.step()
        except Exception as exc:
            # A failed step poisons the whole batch: end every request cleanly and start over.
            from .common import restore_random_state

            _log_exception("batch step failed in the worker; its requests are ended", running=len(self.running))
            for run in list(self.running.values()):
                self.channel.send(messages.Failed(id=run.id, message=_short(exc), status=500))
                self._forget(run)
            self.engine.reset()
            restore_random_state()
            return
        for uid, token, finish_reason in events:
            run = self.running.get(uid)
            if run is None:
                continue
            try:
                self._take(run, token, finish_reason)
            except Exception as exc:  # this request's reply cannot go on; the others' can
                _log_exception("a reply failed in the worker; it is ended", request_id=run.id)
                self.channel.send(messages.Failed(id=run.id, message=_short(exc), status=500))
                if finish_reason is None and run.uid in self.running:
                    self.engine.remove(uid)
                self._forget(run)

    def _take(self, run: Running, token: int, finish_reason: str | None) -> None:
        """One token of a running request: its text (and thinking, tool calls, logprobs) out,
        and its end where it ends."""
        if not run.first_token:
            run.first_token = time.monotonic()
        if not (finish_reason == "stop" and token in self.engine.eos_token_ids):
            if run.logprobs is not None:
                run.token_logprobs.append(run.logprobs.take(run.completion_tokens, token))
            run.completion_tokens += 1
            text = run.assembler.add(token)
            content, reasoning, calls = run.parts.add(text) if run.parts is not None and text else (text, "", [])
            if content or reasoning or calls:
                self.channel.send(
                    messages.Delta(run.id, content, run.completion_tokens, reasoning, calls, run.take_logprobs())
                )
        # A reply that may make one tool call ends with it (parallel_tool_calls: false).
        if run.assembler.stopped or (run.parts is not None and run.parts.done):
            if finish_reason is None:
                self.engine.remove(run.uid)
            self._finish(run, "stop")
        elif finish_reason is not None:
            self._finish(run, finish_reason)

    def _finish(self, run: Running, reason: str) -> None:
        tail = run.assembler.finish() if reason != "cancelled" else ""
        reasoning, calls = "", []
        if run.parts is not None and reason != "cancelled":
            tail, reasoning, calls = run.parts.add(tail)
            more = run.parts.finish(reason)
            tail, reasoning, calls = tail + more[0], reasoning + more[1], calls + more[2]
            if reason == "stop" and run.parts.called:
                reason = "tool_calls"
        if run.first_token:
            run.timings["prefill_ms"] = _ms(run.first_token - run.admitted)  # admitted to the first token
            run.timings["decode_ms"] = _ms(time.monotonic() - run.first_token)
        self.channel.send(
            messages.Finished(
                id=run.id,
                finish_reason=reason,
                prompt_tokens=run.prompt_tokens,
                completion_tokens=run.completion_tokens,
                text=tail,
                reasoning=reasoning,
                tool_calls=calls,
                logprobs=run.take_logprobs(),
                cached_tokens=run.cached_tokens,
                timings=run.timings,
            )
        )
        self._forget(run)

    def _forget(self, run: Running) -> None:
        self.running.pop(run.uid, None)
        self.by_id.pop(run.id, None)


def _batch_sizes(max_batch: int) -> list[int]:
    """1, 2, 4, ... up to max_batch: the batch shapes worth compiling ahead."""
    sizes = [1]
    while sizes[-1] * 2 <= max_batch:
        sizes.append(sizes[-1] * 2)
    return sizes if sizes[-1] == max_batch else [*sizes, max_batch]


def set_memory_limits(backend: str, memory_limit: int) -> int:
    """Set mlx's memory and cache limits for a worker; returns the memory limit (0: mlx's default)."""
    import mlx.core as mx

    if backend == "cuda":
        # mlx's CUDA allocator uses managed memory for part of its buffers: never drive it near the card's size.
        memory_limit = min(memory_limit or 1 << 62, mx.device_info()["total_memory"] // 2)
    if memory_limit:
        mx.set_memory_limit(memory_limit)
        if backend == "cuda":
            # Freeing a CUDA buffer synchronises the device: keep freed buffers for reuse up to
            # the limit (a 1 GiB cache cost a third of the throughput at 8 clients on an H100).
            mx.set_cache_limit(memory_limit)
        else:
            # Freed buffers above this are returned to the system instead of being kept for reuse.
            mx.set_cache_limit(min(max(memory_limit // 16, 64 << 20), 1 << 30))
    return memory_limit


def _own_stream() -> None:
    """Give a preparer thread its own mlx stream, so its work runs beside the decode loop's."""
    import mlx.core as mx

    mx.set_default_stream(mx.new_stream(mx.default_device()))


def _ms(seconds: float) -> float:
    return round(seconds * 1000, 1)


def _log_exception(event: str, **fields) -> None:
    """The current exception on stderr: one JSON line where the server logs JSON, else a traceback."""
    if os.environ.get("MMSERVE_WORKER_LOG_FORMAT") == "json":
        import datetime
        import json

        line = {"event": event, "level": "error", "pid": os.getpid(), **fields, "exception": traceback.format_exc()}
        line["timestamp"] = datetime.datetime.now(datetime.UTC).isoformat().replace("+00:00", "Z")
        print(json.dumps(line, default=str), file=sys.stderr, flush=True)
    else:
        print(f"mmserve worker {os.getpid()}: {event}", file=sys.stderr)
        traceback.print_exc(file=sys.stderr)


def _short(exc: BaseException) -> str:
    text = str(exc) or type(exc).__name__
    return text[:600]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="mmserve-worker")
    parser.add_argument("--engine", choices=["text", "vision"], required=True)
    parser.add_argument("--model", required=True)
    parser.add_argument("--name", required=True, help="the model name clients use")
    parser.add_argument("--fd", type=int, required=True)
    parser.add_argument("--memory-limit", type=int, default=0)
    parser.add_argument("--max-batch", type=int, default=16)
    parser.add_argument("--prefix-cache-bytes", type=int, default=0)
    parser.add_argument(
        "--preparers", type=int, default=0, help="threads preparing requests (0: 2 for vision, 1 for text)"
    )
    parser.add_argument("--calibrate-side", type=int, default=0, help="largest image side to calibrate at; 0: none")
    args = parser.parse_args(argv)

    # The server decides when workers stop (Shutdown, or the socket closing). Ctrl-C in a
    # terminal, and SIGTERM from systemd (its default KillMode) or `timeout`, reach the whole
    # process group: only the server should act on them, draining the workers' running requests.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    sock = socket.socket(fileno=args.fd)
    channel = Channel(sock)
    try:
        import mlx.core as mx

        from .common import backend as current_backend

        backend = current_backend()
        memory_limit = set_memory_limits(backend, args.memory_limit)
        if backend == "cuda":
            from .attention import use_plain_prompt_attention

            use_plain_prompt_attention()
        if args.engine == "text":
            from .text import TextEngine

            engine = TextEngine(args.model, max_batch=args.max_batch, prefix_cache_bytes=args.prefix_cache_bytes)
        else:
            from .vision import VisionEngine

            engine = VisionEngine(args.model, max_batch=args.max_batch, prefix_cache_bytes=args.prefix_cache_bytes)
        engine.memory_limit = memory_limit
        if backend != "cpu":
            engine.warm_up(_batch_sizes(args.max_batch))
        vision = None
        if args.engine == "vision":
            check = engine.check_geometry(args.calibrate_side or DEFAULT_CHECK_SIDE)
            vision = {"checkpoint": dataclasses.asdict(engine.checkpoint), "check": check}
        calibration = engine.calibrate(args.calibrate_side) if args.calibrate_side else []
        ready = messages.Ready(
            engine=args.engine,
            model=args.name,
            pid=os.getpid(),
            backend=backend,
            device_info={k: v for k, v in mx.device_info().items() if isinstance(v, (int, float, str))},
            context_length=engine.context_length,
            weights_bytes=engine.weights_bytes,
            kv_bytes_per_token=engine.kv_bytes_per_token,
            vocab_size=engine.vocab_size,
            longest_token_chars=engine.longest_token_chars,
            tool_format=engine.tool_format,
            kv_layout=layout.as_dict() if (layout := getattr(engine, "kv_layout", None)) is not None else None,
            batch_fault=getattr(engine, "batch_fault", None),
            vision=vision,
            calibration=calibration,
        )
    except Exception as exc:
        # The server logs the traceback at debug; a refusal says all there is to say.
        detail = "" if isinstance(exc, UnservedFamilyError) else traceback.format_exc()
        channel.send(messages.LoadFailed(_short(exc), traceback=detail))
        return 1
    worker = Worker(engine, channel, preparers=args.preparers or (2 if args.engine == "vision" else 1))
    channel.start_reader(worker.on_message)
    try:
        channel.send(ready)
        worker.run()
    except (BrokenPipeError, ConnectionResetError):
        pass  # the server went away: nobody left to answer
    return 0


if __name__ == "__main__":
    code = main()
    # Leave without the interpreter's and the C++ runtime's teardown: mlx's threads behind the
    # preparers' streams are not joined by then, and tearing them down aborted the process
    # ("terminate called without an active exception") after it had served images.
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)
