"""Profile the text worker's loop in process, without HTTP: where a decode step's time goes.

Runs the worker's real loop (engine, detokenizers, stop-string check, messages on a
socket) with N requests kept in flight until `--requests` are done, then once more
under cProfile; and one request alone, against ``mlx_lm.stream_generate``.

    python bench/engine_profile.py --model DIR/text [--clients 32] [--stagger] [--cache-limit BYTES]

With ``--memory-limit`` / ``--cache-limit`` it runs under mlx limits as a worker
would set them (compare a CUDA worker's cache limit against mlx's default).
"""

from __future__ import annotations

import argparse
import cProfile
import io
import pstats
import random
import socket
import sys
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from mmserve.engines import messages
from mmserve.engines.channel import Channel
from mmserve.engines.worker import Worker, _Prepared


class LocalWorker:
    """A worker's loop in process around ``engine``: the far end of its socket is drained,
    and requests are admitted at once, without a preparer thread."""

    def __init__(self, engine) -> None:
        self.engine = engine
        ours, theirs = socket.socketpair()
        threading.Thread(target=lambda: all(iter(lambda: theirs.recv(1 << 20), b"")), daemon=True).start()
        self.worker = Worker(engine, Channel(ours))

    def admit(self, request: messages.Generate) -> None:
        self.worker.preparing.add(request.id)
        self.worker._admit(_Prepared(request, self.engine.prepare(request)))

    def run(self, make_request, total: int, clients: int) -> float:
        """Keep ``clients`` requests in flight until ``total`` are done (``make_request(i)``
        builds the i-th); the seconds it took."""
        sent, started = 0, time.perf_counter()
        while sent < total or self.worker.running:
            while len(self.worker.running) < clients and sent < total:
                self.admit(make_request(sent))
                sent += 1
            self.worker._step()
        return time.perf_counter() - started


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--model", required=True)
    parser.add_argument("--clients", type=int, default=32)
    parser.add_argument("--requests", type=int, default=256)
    parser.add_argument("--max-tokens", type=int, default=64)
    parser.add_argument("--prefix-cache-bytes", type=int, default=256 << 20)
    parser.add_argument("--memory-limit", type=int, default=0, help="mx.set_memory_limit, bytes (0: mlx default)")
    parser.add_argument("--cache-limit", type=int, default=0, help="mx.set_cache_limit, bytes (0: mlx default)")
    parser.add_argument("--temperature", type=float, default=0.0, help="every request's temperature (0: greedy)")
    parser.add_argument(
        "--stagger",
        action="store_true",
        help="draw each request's max_tokens from [max/4, max], so that requests end and arrive one at a time",
    )
    parser.add_argument("--sort", default="tottime", help="the profile's order: tottime or cumulative")
    args = parser.parse_args()

    import mlx.core as mx

    if args.memory_limit:
        mx.set_memory_limit(args.memory_limit)
    if args.cache_limit:
        mx.set_cache_limit(args.cache_limit)

    from mlx_lm import stream_generate

    from mmserve.engines.text import TextEngine
    from mmserve.engines.worker import _batch_sizes

    engine = TextEngine(args.model, max_batch=args.clients, prefix_cache_bytes=args.prefix_cache_bytes)
    engine.warm_up(_batch_sizes(args.clients))
    local = LocalWorker(engine)
    words = "the a weather city river mountain blue green quickly slowly house computer music".split()
    rng = random.Random(0)

    def request(tag: str, i: int) -> messages.Generate:
        text = " ".join(rng.choice(words) for _ in range(20))
        return messages.Generate(
            id=f"{tag}{i}",
            messages=[{"role": "user", "content": f"{text} {i}"}],
            max_tokens=rng.randint(args.max_tokens // 4, args.max_tokens) if args.stagger else args.max_tokens,
            sampling=messages.Sampling(temperature=args.temperature),
        )

    tokens = 0
    step = engine.step

    def counted_step():
        nonlocal tokens
        events = step()
        tokens += len(events)
        return events

    engine.step = counted_step

    def run(tag: str, total: int, clients: int) -> tuple[float, int]:
        """Seconds and tokens generated."""
        nonlocal tokens
        tokens = 0
        took = local.run(lambda i: request(tag, i), total, clients)
        return took, tokens

    run("warm", args.clients, args.clients)
    took, tokens = run("timed", args.requests, args.clients)
    print(f"{args.clients} in flight, {args.requests} requests: {tokens / took:.1f} tok/s")
    profile = cProfile.Profile()
    profile.runcall(run, "profiled", args.requests, args.clients)
    out = io.StringIO()
    pstats.Stats(profile, stream=out).sort_stats(args.sort).print_stats(25 if args.sort == "cumulative" else 15)
    print(out.getvalue())

    took, n = min(run(f"solo{k}", 1, 1) for k in range(3))
    print(f"one request through the worker: {n / took:.1f} tok/s")
    prompt = engine.encode([{"role": "user", "content": "tell me about rivers"}])
    for _ in range(2):
        started, n = time.perf_counter(), 0
        for _ in stream_generate(engine.model, engine.tokenizer, prompt, max_tokens=args.max_tokens):
            n += 1
        took = time.perf_counter() - started
    print(f"mlx_lm.stream_generate: {n / took:.1f} tok/s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
