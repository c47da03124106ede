"""Do constrained requests slow their unconstrained neighbours in the batch?

    python bench/constrained.py [--models DIR] [--seconds 20] [--rounds 3] [--out FILE]

Starts one mmserve (one text worker, so every request shares its batch) and measures the
decode speed of ``--free`` greedy clients (tokens per second each) while ``--extra`` more
clients run beside them, alternating two kinds of extras round by round: the same
unconstrained requests, then requests held to a JSON schema (response_format). The ratio
of the free clients' speed with constrained extras to their speed with free extras is the
cost of constrained decoding to the neighbours. Writes JSON with every round.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx

SCHEMA = {
    "type": "object",
    "properties": {
        "items": {
            "type": "array",
            "items": {
                "type": "object",
                "properties": {"name": {"type": "string"}, "qty": {"type": "integer"}},
                "required": ["name", "qty"],
                "additionalProperties": False,
            },
        },
        "note": {"type": "string"},
    },
    "required": ["items", "note"],
    "additionalProperties": False,
}


async def client(http: httpx.AsyncClient, body: dict, until: float, tokens: list[int], seconds: list[float]) -> None:
    while time.monotonic() < until:
        started = time.monotonic()
        reply = (await http.post("/v1/chat/completions", json=body, timeout=300)).json()
        tokens.append(reply["usage"]["completion_tokens"])
        seconds.append(time.monotonic() - started)


async def round_(base_url: str, free: int, extra: int, constrained: bool, duration: float, max_tokens: int) -> dict:
    ask = {"messages": [{"role": "user", "content": "List what is on the invoice."}], "max_tokens": max_tokens}
    extra_body = {**ask, "temperature": 1.0}
    if constrained:
        extra_body["response_format"] = {"type": "json_schema", "json_schema": {"name": "invoice", "schema": SCHEMA}}
    until = time.monotonic() + duration
    free_tokens, free_seconds, extra_tokens, extra_seconds = [], [], [], []
    async with httpx.AsyncClient(base_url=base_url) as http:
        await asyncio.gather(
            *(client(http, {**ask, "temperature": 0}, until, free_tokens, free_seconds) for _ in range(free)),
            *(client(http, extra_body, until, extra_tokens, extra_seconds) for _ in range(extra)),
        )
    return {
        "extras": "constrained" if constrained else "free",
        "free_tokens_per_s_each": sum(free_tokens) / sum(free_seconds),
        "extra_tokens_per_s_each": sum(extra_tokens) / sum(extra_seconds) if extra_seconds else 0.0,
        "free_requests": len(free_tokens),
        "extra_requests": len(extra_tokens),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--models", type=Path, help="a directory with text/ and vision/ (default: synthesize tiny ones)"
    )
    parser.add_argument("--free", type=int, default=4)
    parser.add_argument("--extra", type=int, default=2)
    parser.add_argument("--seconds", type=float, default=20)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--max-tokens", type=int, default=96)
    parser.add_argument("--label", default=platform.processor() or platform.machine())
    parser.add_argument("--out", type=Path, default=Path("docs/data/constrained.json"))
    args = parser.parse_args()
    models = args.models
    if models is None:
        from mmserve.synth import synthesize

        models = Path("/tmp/mmserve-bench-models")
        synthesize(models)
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    command = [sys.executable, "-m", "mmserve.cli", "serve", "--port", str(port), "--text-model", str(models / "text"),
               "--text-replicas", "1", "--log-level", "warning"]  # fmt: skip
    server = subprocess.Popen(command, env={**os.environ, "HF_HUB_OFFLINE": "1"})
    base_url = f"http://127.0.0.1:{port}"
    try:
        while not _ready(base_url):
            time.sleep(0.5)
        asyncio.run(round_(base_url, args.free, args.extra, True, 3, args.max_tokens))  # warm up both paths
        rounds = []
        for _ in range(args.rounds):
            for constrained in (False, True):
                rounds.append(
                    asyncio.run(round_(base_url, args.free, args.extra, constrained, args.seconds, args.max_tokens))
                )
                print(json.dumps(rounds[-1]))
    finally:
        server.terminate()
        server.wait(30)
    speed = {
        kind: [r["free_tokens_per_s_each"] for r in rounds if r["extras"] == kind] for kind in ("free", "constrained")
    }
    ratio = sum(speed["constrained"]) / sum(speed["free"])
    result = {"label": args.label, "free": args.free, "extra": args.extra, "max_tokens": args.max_tokens,
              "seconds": args.seconds, "rounds": rounds, "neighbour_speed_ratio": round(ratio, 4)}  # fmt: skip
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=1))
    print(f"neighbours' speed with constrained extras / with free extras: {ratio:.3f}")
    return 0


def _ready(base_url: str) -> bool:
    try:
        return httpx.get(base_url + "/ready", timeout=1).status_code == 200
    except httpx.TransportError:
        return False


if __name__ == "__main__":
    raise SystemExit(main())
