"""Time to first token with and without reusing a cached shared system prompt, in process.

    python bench/prefix_reuse.py MODEL_DIR [SIZES]

Two text engines on one model: one reuses any cached prefix, the other prefills every
prompt whole. For each approximate system-prompt size in SIZES (tokens, default
64,256,512,1024,2048,4096), one request seeds the cache, then eight new questions
(each a prompt length not seen before) go to both engines in turn. Prints the last
prompt's length and the median TTFT of each. This is what ``CUDA_MIN_PREFIX_REUSE`` in ``mmserve/engines/text.py``
rests on (docs/performance.md).
"""

from __future__ import annotations

import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def ttft_ms(engine, system: str, seed: str) -> tuple[float, int]:
    """Time to the first token of one new question, and its prompt's length."""
    from bench.loadgen import prompt_for
    from mmserve.engines import messages

    chat = [{"role": "system", "content": system}, {"role": "user", "content": prompt_for(seed)}]
    start = time.perf_counter()
    admitted = engine.insert(engine.prepare(messages.Generate(id=seed, messages=chat, max_tokens=4)))
    first = None
    while True:
        events = engine.step()
        if events and first is None:
            first = time.perf_counter()
        if events and events[-1][2] is not None:
            return (first - start) * 1000, admitted.prompt_tokens


def main(argv: list[str]) -> int:
    from mmserve.engines.common import backend
    from mmserve.engines.text import TextEngine
    from mmserve.engines.worker import set_memory_limits

    path = argv[0]
    sizes = [int(x) for x in argv[1].split(",")] if len(argv) > 1 else [64, 256, 512, 1024, 2048, 4096]
    set_memory_limits(backend(), 0)  # a worker's limits: on CUDA, half the card
    engines = {
        "reuse": TextEngine(path, prefix_cache_bytes=1 << 30, min_prefix_reuse=1),
        "whole": TextEngine(path, prefix_cache_bytes=0),
    }
    for engine in engines.values():
        engine.warm_up([1])
    for size in sizes:
        system = " ".join(f"rule{i % 97} is item{i % 13}." for i in range(size // 11 + 1))
        for engine in engines.values():
            ttft_ms(engine, system, f"seed-{size}")
        times: dict[str, list[float]] = {name: [] for name in engines}
        for i in range(8):
            for name, engine in engines.items():
                ms, tokens = ttft_ms(engine, system, f"q-{size}-{i}")
                times[name].append(ms)
        summary = "; ".join(
            f"{name} TTFT median {statistics.median(v):.1f} ms (min {min(v):.1f}, max {max(v):.1f})"
            for name, v in times.items()
        )
        print(f"prompt {tokens} tokens: {summary}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
