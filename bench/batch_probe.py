"""Time the text engine's prefill and decode for bursts of concurrent requests.

Diagnoses first-shape compilation and allocator effects on a backend: the same
burst of 8 prompts is run several times, under the worker's cache limit and
under mlx's default, with all 8 arriving at once or one per decode step.

    python bench/batch_probe.py --model DIR/text
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--model", required=True)
    parser.add_argument("--burst", type=int, default=8)
    parser.add_argument("--max-tokens", type=int, default=64)
    args = parser.parse_args()

    import mlx.core as mx

    from mmserve.engines import messages
    from mmserve.engines.text import TextEngine

    engine = TextEngine(args.model, max_batch=16, prefix_cache_bytes=0)
    words = "apples rivers stars glass music trains sand wolves lamps bread ropes hills".split()

    def burst(tag: str, seed: int, staggered: bool) -> None:
        requests = [
            messages.Generate(
                id=str(i),
                messages=[
                    {
                        "role": "user",
                        "content": " ".join(words[(seed + i) % 12 :] + words[: (seed * i) % 7]) + f" {seed}",
                    }
                ],
                max_tokens=args.max_tokens,
                sampling=messages.Sampling(temperature=0),
            )
            for i in range(args.burst)
        ]
        started = time.perf_counter()
        first: dict[int, float] = {}
        finished: set[int] = set()
        pending = list(requests)
        tokens = 0
        if not staggered:
            for request in pending:
                engine.insert(engine.prepare(request))
            pending = []
        while len(finished) < len(requests):
            if pending:
                engine.insert(engine.prepare(pending.pop(0)))
            for uid, _, finish_reason in engine.step():
                first.setdefault(uid, time.perf_counter() - started)
                tokens += 1
                if finish_reason is not None:
                    finished.add(uid)
        wall = time.perf_counter() - started
        ttft = sorted(first.values())
        print(
            f"{tag:42s} ttft p50 {ttft[len(ttft) // 2] * 1000:8.1f} ms  max {ttft[-1] * 1000:8.1f} ms  "
            f"{tokens / wall:7.1f} tok/s  peak {mx.get_peak_memory() / 1e9:.2f} GB",
            flush=True,
        )

    print(f"backend device {mx.default_device()}, memory limit default, cache limit default")
    for round_ in range(3):
        burst(f"at once, round {round_}", seed=round_, staggered=False)
    burst("staggered", seed=7, staggered=True)
    limit = mx.device_info().get("total_memory", 0) // 2 or (8 << 30)
    mx.set_memory_limit(limit)
    mx.set_cache_limit(min(max(limit // 16, 64 << 20), 1 << 30))
    print("worker limits: memory half the card, cache limit 1 GB")
    for round_ in range(3, 6):
        burst(f"at once, round {round_}", seed=round_, staggered=False)
    burst("staggered", seed=9, staggered=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
