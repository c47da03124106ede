"""The in-process baseline: single-stream greedy decoding with mlx_lm directly.

Run as a subprocess by run.py so the benchmark process never holds a model
while the servers run:  python bench/direct.py MODEL_DIR PROMPTS_JSON MAX_TOKENS
It prints one JSON object: per-prompt TTFT, total time and tokens, and the mlx backend in use.
With only --backend it prints the backend.

    python bench/direct.py --serve MODEL_DIR MAX_TOKENS

answers prompts one at a time, for measuring in turn with a server: after the warm-up it
prints {"ready": true}, then reads a JSON string (a prompt) per line on stdin and prints
that prompt's JSON object per line.
"""

from __future__ import annotations

import contextlib
import json
import platform
import sys
import time
from importlib import metadata


def backend() -> dict:
    """The mlx build and the device it computes on."""
    import mlx.core as mx

    info = {"mlx": metadata.version("mlx"), "device": str(mx.default_device())}
    for name in ("mlx-lm", "mlx-vlm"):
        try:
            info[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            info[name] = None
    kind = "cpu"
    with contextlib.suppress(AttributeError, RuntimeError):
        if mx.metal.is_available():
            kind = "metal"
    with contextlib.suppress(AttributeError, RuntimeError):
        if mx.cuda.is_available():
            kind = "cuda"
    if "cpu" in info["device"].lower():
        kind = "cpu"
    info["backend"] = kind
    info["python"] = platform.python_version()
    return info


def generate(model, tokenizer, prompt: str, max_tokens: int) -> dict:
    from mlx_lm import stream_generate
    from mlx_lm.sample_utils import make_sampler

    tokens = tokenizer.apply_chat_template([{"role": "user", "content": prompt}], add_generation_prompt=True)
    start = time.perf_counter()
    ttft = None
    last = None
    parts = []
    for resp in stream_generate(model, tokenizer, tokens, max_tokens=max_tokens, sampler=make_sampler(temp=0.0)):
        if ttft is None and resp.text:
            ttft = time.perf_counter() - start
        parts.append(resp.text)
        last = resp
    total = time.perf_counter() - start
    return {
        "ttft_s": ttft,
        "latency_s": total,
        "completion_tokens": last.generation_tokens if last else 0,
        "prompt_tokens": last.prompt_tokens if last else len(tokens),
        "decode_tok_s": last.generation_tps if last else None,
        "finish_reason": last.finish_reason if last else None,
        "text": "".join(parts),
    }


def main(argv: list[str]) -> int:
    if argv == ["--backend"]:
        print(json.dumps({"backend": backend()}))
        return 0
    from mlx_lm import load

    if argv[0] == "--serve":
        model, tokenizer = load(argv[1])
        max_tokens = int(argv[2])
        generate(model, tokenizer, "warm-up: say hello", max_tokens)
        print(json.dumps({"ready": True}), flush=True)
        for line in sys.stdin:
            print(json.dumps(generate(model, tokenizer, json.loads(line), max_tokens)), flush=True)
        return 0
    model_dir, prompts_path, max_tokens = argv[0], argv[1], int(argv[2])
    with open(prompts_path) as f:
        prompts = json.load(f)
    model, tokenizer = load(model_dir)
    generate(model, tokenizer, "warm-up: say hello", max_tokens)
    runs = [generate(model, tokenizer, p, max_tokens) for p in prompts]
    tokens = sum(r["completion_tokens"] for r in runs)
    seconds = sum(r["latency_s"] for r in runs)
    print(
        json.dumps(
            {
                "backend": backend(),
                "runs": runs,
                "completion_tokens": tokens,
                "seconds": seconds,
                "throughput_tok_s": tokens / seconds if seconds else None,
            }
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
