"""Profile the vision engine's image path in process, without HTTP: where a request's time goes.

Each of a few random images is asked the same questions in turn, the way an OCR
pipeline asks one page several things, and each request's time is split into
image preprocessing, the encoder, the merged embeddings, the insert into the batch
and the steps to its first token, with the part of those steps spent in
``mx.async_eval`` (on a GPU backend, the CPU encoding and launching the kernels of
each forward pass). A second round asks everything again: a phase that is slow only
the first time a prompt length is seen is kernel compilation.

    python bench/vision_profile.py --model DIR/vision [--side 448] [--images 3]

Runs under a worker's memory and cache limits, with its warm-up on GPU backends, and
prepares each request on a preparer thread with its own mlx stream, as a worker does
(``--same-thread``: on the loop's thread).
"""

from __future__ import annotations

import argparse
import functools
import os
import sys
import time
from collections import defaultdict
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

QUESTIONS = ["What is in this image?", "Describe the colours.", "Is there any text?", "Count the objects."]


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--model", required=True)
    parser.add_argument("--side", type=int, default=448)
    parser.add_argument("--images", type=int, default=3)
    parser.add_argument("--prefix-cache-bytes", type=int, default=1 << 30)
    parser.add_argument(
        "--kv-reuse",
        choices=["on", "off"],
        help="reuse cached KV (mlx-vlm's prefix cache); default: the engine's for this backend (off on CUDA)",
    )
    parser.add_argument(
        "--kv-block",
        type=int,
        help="tokens per block of mlx-vlm's prefix cache (default: mlx-vlm's, 16)",
    )
    parser.add_argument(
        "--attention",
        choices=["plain", "fused"],
        default="plain",
        help="prompt attention on CUDA: plain ops as a worker runs it, or mlx's fused (cuDNN) kernel",
    )
    parser.add_argument(
        "--same-thread",
        action="store_true",
        help="prepare on the loop's thread, not on a preparer thread as a worker does",
    )
    args = parser.parse_args()

    import mlx.core as mx
    import numpy as np

    from mmserve.engines import messages, vision
    from mmserve.engines.attention import use_plain_prompt_attention
    from mmserve.engines.common import backend
    from mmserve.engines.worker import _batch_sizes, _own_stream, set_memory_limits

    set_memory_limits(backend(), 0)
    if backend() == "cuda" and args.attention == "plain":
        use_plain_prompt_attention()

    spent: dict[str, float] = defaultdict(float)

    def timed(name, fn):
        def wrapper(*a, **kw):
            started = time.perf_counter()
            out = fn(*a, **kw)
            if isinstance(out, mx.array):
                mx.eval(out)
            spent[name] += time.perf_counter() - started
            return out

        return wrapper

    vision.prepare_inputs = timed("preprocess", vision.prepare_inputs)
    # Only the batch generator calls mx.async_eval: on a GPU backend this is the CPU's time
    # encoding and launching each forward pass's kernels.
    mx.async_eval = timed("launching", mx.async_eval)
    kv_reuse = None if args.kv_reuse is None else args.kv_reuse == "on"
    if args.kv_block:
        vision.APCManager = functools.partial(vision.APCManager, block_size=args.kv_block)
    engine = vision.VisionEngine(
        args.model, max_batch=16, prefix_cache_bytes=args.prefix_cache_bytes, kv_reuse=kv_reuse
    )
    engine.model.get_input_embeddings = timed("embeddings", engine.model.get_input_embeddings)
    tower = type(engine.model.vision_tower)
    tower.__call__ = timed("encoder", tower.__call__)
    if backend() != "cpu":
        engine.warm_up(_batch_sizes(16))
    engine.features.clear()
    preparer = None if args.same_thread else ThreadPoolExecutor(1, initializer=_own_stream)

    rng = np.random.default_rng(0)
    images = [
        messages.ImageData(
            args.side, args.side, rng.integers(0, 256, (args.side, args.side, 3), dtype=np.uint8).tobytes(), f"p{k}"
        )
        for k in range(args.images)
    ]
    print(f"backend {backend()}, {args.side}x{args.side} images; times in ms")
    for round_ in (1, 2):
        for k, image in enumerate(images):
            for question in QUESTIONS:
                spent.clear()
                content = [{"type": "image"}, {"type": "text", "text": question}]
                request = messages.Generate(
                    id=question,
                    messages=[{"role": "user", "content": content}],
                    images=[image],
                    max_tokens=4,
                    sampling=messages.Sampling(temperature=0),
                )
                t0 = time.perf_counter()
                prepared = preparer.submit(engine.prepare, request).result() if preparer else engine.prepare(request)
                t1 = time.perf_counter()
                admitted = engine.insert(prepared)
                t2 = time.perf_counter()
                steps = 1
                while not any(uid == admitted.uid for uid, _, _ in engine.step()):
                    steps += 1
                t3 = time.perf_counter()
                launching = spent.pop("launching", 0.0)
                while not any(uid == admitted.uid and reason for uid, _, reason in engine.step()):
                    pass
                spent.pop("launching", None)
                phases = " ".join(f"{name} {1000 * s:.1f}" for name, s in spent.items())
                print(
                    f"round {round_} image {k} prepare {1000 * (t1 - t0):7.1f} [{phases}] "
                    f"insert {1000 * (t2 - t1):5.1f} first token {1000 * (t3 - t2):6.1f} ({steps} steps, "
                    f"{1000 * launching:.1f} in mx.async_eval) "
                    f"cached {admitted.cached_tokens}/{admitted.prompt_tokens}",
                    flush=True,
                )
    return 0


if __name__ == "__main__":
    code = main()
    # As a worker does: leave without tearing down the preparer thread's mlx stream, which
    # can abort the process ("terminate called without an active exception").
    sys.stdout.flush()
    os._exit(code)
