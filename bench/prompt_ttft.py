"""Time to first token in process: prompt attention plain or fused, cached prefix reused or not.

    python bench/prompt_ttft.py MODEL_DIR [SIZES]

Two text engines on one model: one reuses any cached prefix, the other prefills every
prompt whole. For each approximate system-prompt size in SIZES (tokens, default
64,512,2048), one request seeds the cache, then eight new questions (each a prompt
length not seen before) go to both engines, alternating between prompt attention in plain
ops (as a worker runs it on CUDA: ``mmserve/engines/attention.py``) and mlx's fused kernel.
Then batches of 8 and 32 new prompts, inserted at once, under each attention. Prints the
medians. On CPU both attentions are the same ops. Runs under a worker's memory limits.
"""

from __future__ import annotations

import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def request(seed: str, system: str | None = None, max_tokens: int = 4):
    from bench.loadgen import prompt_for
    from mmserve.engines import messages

    chat = [{"role": "system", "content": system}] if system else []
    chat.append({"role": "user", "content": prompt_for(seed)})
    return messages.Generate(id=seed, messages=chat, max_tokens=max_tokens, sampling=messages.Sampling(temperature=0))


def run(engine, requests) -> tuple[list[float], list[float], int]:
    """Insert ``requests`` at once and run them out: each one's TTFT and the batch's step times
    (ms) once all decode, and the last prompt's length."""
    start = time.perf_counter()
    admitted = [engine.insert(engine.prepare(r)) for r in requests]
    first: dict[int, float] = {}
    done: set[int] = set()
    steps = []
    last = time.perf_counter()
    while len(done) < len(admitted):
        events = engine.step()
        now = time.perf_counter()
        if len(first) == len(admitted) and events:
            steps.append((now - last) * 1000)
        last = now
        for uid, _, finish_reason in events:
            first.setdefault(uid, (now - start) * 1000)
            if finish_reason is not None:
                done.add(uid)
    return [first[a.uid] for a in admitted], steps, admitted[-1].prompt_tokens


def main(argv: list[str]) -> int:
    from mmserve.engines.attention import PLAIN_MAX_SCORES, use_plain_prompt_attention
    from mmserve.engines.common import backend
    from mmserve.engines.text import TextEngine
    from mmserve.engines.worker import _batch_sizes, set_memory_limits

    path = argv[0]
    sizes = [int(x) for x in argv[1].split(",")] if len(argv) > 1 else [64, 512, 2048]
    set_memory_limits(backend(), 0)
    attention = {"plain": PLAIN_MAX_SCORES, "fused": 0}  # up to how many scores run in plain ops
    engines = {
        "reuse": TextEngine(path, max_batch=32, prefix_cache_bytes=1 << 30),
        "whole": TextEngine(path, max_batch=32, prefix_cache_bytes=0),
    }
    for engine in engines.values():
        engine.warm_up(_batch_sizes(32))
    print(f"backend {backend()}; TTFT in ms, median (min-max)")
    for size in sizes:
        system = " ".join(f"rule{i % 97} is item{i % 13}." for i in range(size // 11 + 1))
        for engine in engines.values():
            run(engine, [request(f"seed-{size}", system)])
        times: dict[str, list[float]] = {}
        for i in range(8):
            for arm, max_scores in attention.items():
                use_plain_prompt_attention(max_scores)
                for name, engine in engines.items():
                    (ms,), _, tokens = run(engine, [request(f"q-{size}-{arm}-{i}", system)])
                    times.setdefault(f"{arm}, {name}", []).append(ms)
        summary = "; ".join(f"{key} {statistics.median(v):.0f} ({min(v):.0f}-{max(v):.0f})" for key, v in times.items())
        print(f"prompt {tokens} tokens: {summary}", flush=True)
    for size in (8, 32):
        for repeat in range(4):
            for arm, max_scores in attention.items():
                use_plain_prompt_attention(max_scores)
                batch = [request(f"b{size}-{arm}-{repeat}-{j}", max_tokens=48) for j in range(size)]
                ttft, steps, _ = run(engines["reuse"], batch)
                print(
                    f"batch of {size}, {arm}: TTFT median {statistics.median(ttft):.0f}, last {max(ttft):.0f}; "
                    f"step median {statistics.median(steps):.1f}",
                    flush=True,
                )
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
