"""Does the text worker's single stream slow down with what it has served? In process.

    python bench/drift_probe.py --model DIR/text [--rounds 20]

Each round asks one new greedy prompt three ways, in rotating order: through the
worker's loop with its prefix cache (as served), through the same loop with the
prefix cache set aside, and with ``mlx_lm.stream_generate`` on the same model. It
prints each way's decode ms per token, by phase: fresh, after a concurrent load
(32 in flight), after ``mx.clear_cache()``, and after the prefix cache is emptied.
"""

from __future__ import annotations

import argparse
import itertools
import json
import random
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--model", required=True)
    parser.add_argument("--rounds", type=int, default=20)
    parser.add_argument("--max-tokens", type=int, default=64)
    parser.add_argument("--prefix-cache-bytes", type=int, default=1 << 30)
    args = parser.parse_args()

    import mlx.core as mx
    from engine_profile import LocalWorker
    from mlx_lm import stream_generate
    from mlx_lm.models.cache import LRUPromptCache

    from mmserve.engines import messages
    from mmserve.engines.common import backend
    from mmserve.engines.text import TextEngine
    from mmserve.engines.worker import _batch_sizes, set_memory_limits

    set_memory_limits(backend(), 0)
    if backend() == "cuda":  # as a worker does
        from mmserve.engines.attention import use_plain_prompt_attention

        use_plain_prompt_attention()
    engine = TextEngine(args.model, max_batch=32, prefix_cache_bytes=args.prefix_cache_bytes)
    engine.warm_up(_batch_sizes(32))
    local = LocalWorker(engine)
    words = "the a weather city river mountain blue green quickly slowly house computer music".split()
    rng = random.Random(0)
    counter = itertools.count()

    def prompt() -> str:
        return f"[q{next(counter)}] " + " ".join(rng.choice(words) for _ in range(20))

    def request(text: str) -> messages.Generate:
        return messages.Generate(
            id=f"r{next(counter)}",
            messages=[{"role": "user", "content": text}],
            max_tokens=args.max_tokens,
            sampling=messages.Sampling(temperature=0.0),
        )

    steps: list[tuple[float, int]] = []  # (when, tokens) of each engine step that produced tokens
    step = engine.step

    def recorded_step():
        events = step()
        if events:
            steps.append((time.perf_counter(), len(events)))
        return events

    engine.step = recorded_step

    def served(text: str) -> float:
        """Decode ms per token of one request through the worker's loop."""
        steps.clear()
        local.run(lambda _: request(text), 1, 1)
        n = sum(count for _, count in steps)
        return (time.perf_counter() - steps[0][0]) * 1000 / max(n - 1, 1)

    def direct(text: str) -> float:
        tokens = engine.encode([{"role": "user", "content": text}])
        first = None
        n = 0
        for _ in stream_generate(engine.model, engine.tokenizer, tokens, max_tokens=args.max_tokens):
            if first is None:
                first = time.perf_counter()
            n += 1
        return (time.perf_counter() - first) * 1000 / max(n - 1, 1)

    def without_prefix_cache(text: str) -> float:
        kept, engine.prefix_cache = engine.prefix_cache, None
        try:
            return served(text)
        finally:
            engine.prefix_cache = kept

    ways = {"served": served, "served, no prefix cache": without_prefix_cache, "mlx_lm": direct}

    def phase(name: str, rounds: int) -> None:
        times: dict[str, list[float]] = {way: [] for way in ways}
        order = list(ways)
        for r in range(rounds):
            text = prompt()
            for way in order[r % 3 :] + order[: r % 3]:
                times[way].append(ways[way](text))
        cells = "  ".join(f"{way} {statistics.median(t):6.2f}" for way, t in times.items())
        memory = f"active {mx.get_active_memory() / 2**30:.2f} GiB, cache {mx.get_cache_memory() / 2**30:.2f} GiB"
        entries = len(engine.prefix_cache) if engine.prefix_cache is not None else 0
        print(f"{name:28s} median ms/token: {cells}   ({memory}, {entries} prefix entries)", flush=True)
        print("    each round: " + json.dumps({way: [round(x, 2) for x in t] for way, t in times.items()}), flush=True)

    def load(requests: int, clients: int) -> None:
        took = local.run(lambda _: request(prompt()), requests, clients)
        print(f"load: {requests} requests, {clients} in flight, {took:.1f} s", flush=True)

    phase("fresh", args.rounds)
    phase("fresh, again", args.rounds)
    load(64, 32)
    phase("after load", args.rounds)
    mx.clear_cache()
    phase("after mx.clear_cache()", args.rounds)
    engine.prefix_cache = LRUPromptCache(max_size=256, max_bytes=args.prefix_cache_bytes)
    phase("prefix cache emptied", args.rounds)
    load(64, 32)
    phase("after a second load", args.rounds)
    return 0


if __name__ == "__main__":
    sys.exit(main())
