"""A vision engine's RSS over many distinct images, in process, against mlx's own memory.

    python bench/rss_probe.py --model DIR/vision [--requests 900] [--every 100] [--preparer]

Each request is a new random 256 px image asked one question (8 tokens, greedy).
Every --every requests it prints the process's RSS and mlx's active memory; at the
end, which Python object types grew over the second and last thirds. With
--preparer each request is prepared on a thread with its own mlx stream, as a
worker prepares it, and run on the main thread. Run it with glibc's MALLOC_*
variables to see what the allocator keeps.
"""

from __future__ import annotations

import argparse
import gc
import os
import sys
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--model", required=True)
    parser.add_argument("--requests", type=int, default=900)
    parser.add_argument("--every", type=int, default=100)
    parser.add_argument("--preparer", action="store_true", help="prepare on a thread of its own, as a worker does")
    args = parser.parse_args()

    import mlx.core as mx
    import numpy as np
    import psutil

    from mmserve.engines import messages, vision
    from mmserve.engines.worker import _own_stream

    engine = vision.VisionEngine(args.model, max_batch=16, prefix_cache_bytes=1 << 30)
    preparer = ThreadPoolExecutor(1, initializer=_own_stream) if args.preparer else None
    rng = np.random.default_rng(0)
    process = psutil.Process()
    thirds = {args.requests // 3, 2 * args.requests // 3, args.requests - 1}
    objects: dict[int, Counter] = {}

    def report(k: int) -> None:
        rss, active = process.memory_info().rss / 2**20, mx.get_active_memory() / 2**20
        print(f"{k:6d} requests  RSS {rss:7.1f} MiB  mlx active {active:7.1f} MiB", flush=True)

    for k in range(args.requests):
        if k in thirds:
            gc.collect()
            objects[k] = Counter(type(o).__qualname__ for o in gc.get_objects())
        if k % args.every == 0:
            report(k)
        pixels = rng.integers(0, 256, (256, 256, 3), dtype=np.uint8).tobytes()
        request = messages.Generate(
            id=f"r{k}",
            messages=[{"role": "user", "content": [{"type": "image"}, {"type": "text", "text": "What is this?"}]}],
            images=[messages.ImageData(256, 256, pixels, f"image-{k}")],
            max_tokens=8,
            sampling=messages.Sampling(temperature=0),
        )
        prepared = preparer.submit(engine.prepare, request).result() if preparer else engine.prepare(request)
        admitted = engine.insert(prepared)
        while not any(uid == admitted.uid and reason for uid, _, reason in engine.step()):
            pass
    report(args.requests)
    first, second, last = sorted(thirds)
    for a, b in ((first, second), (second, last)):
        grown = objects[b].copy()
        grown.subtract(objects[a])
        print(f"Python objects grown over requests {a}-{b}: {grown.most_common(5)}")
    return 0


if __name__ == "__main__":
    code = main()
    # As a worker does: leave without tearing down the preparer thread's mlx stream.
    sys.stdout.flush()
    os._exit(code)
