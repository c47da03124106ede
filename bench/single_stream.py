"""Single stream: mmserve against mlx_lm in process, alone, beside each other, and in turn.

    python bench/single_stream.py --models DIR [--requests 8]

DIR holds text/ and vision/ (``mmserve synth DIR``). Each phase sends --requests
distinct greedy prompts one after another and prints completion tokens over the
summed request time, with each request's latency:

  P1 mlx_lm alone, P2 mmserve alone, P3 mmserve beside an idle mlx_lm process,
  P4 mlx_lm beside an idle mmserve, P5 both in turn, P6 mmserve alone again,
  P7 mlx_lm alone again.

With --load, mmserve then serves the benchmark's concurrent workloads (text at 32
clients, images at 8, mixed at 16) and P8 takes both in turn again: whether what a
server has been through slows its single stream. --logs DIR keeps mmserve's log
(with BENCH_MMSERVE_LOG_LEVEL=info, one line per request with its decode time).

It tells a serving overhead (mmserve slower in every phase) from a machine whose
speed drifts (all phases move together) and from processes that slow each other
down (P3-P5 against the phases alone). The last line is all of it as JSON.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import signal
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import loadgen
from run import ROOT, Content, Direct, _interrupt, admin_status, ask_alone, in_turn
from servers import SERVERS, Server

MAX_TOKENS = 64
TIMEOUT_S = 300.0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--models", required=True, type=Path)
    parser.add_argument("--requests", type=int, default=8)
    parser.add_argument("--load", action="store_true", help="a concurrent load, then both in turn again (P8)")
    parser.add_argument("--logs", type=Path, help="keep mmserve's log here")
    args = parser.parse_args()
    signal.signal(signal.SIGTERM, _interrupt)  # so that the server is stopped on the way out
    n, text = args.requests, args.models / "text"
    content = Content(MAX_TOKENS)
    phases: dict[str, dict] = {}

    def record(name: str, answers: list[tuple[int, float]]) -> None:
        """``answers``: (completion tokens, seconds) of each request."""
        tokens, seconds = sum(t for t, _ in answers), sum(s for _, s in answers)
        latencies = [round(s * 1000) for _, s in answers]
        phases[name] = {"tok_s": round(tokens / seconds, 1), "latency_ms": latencies, "tokens": [t for t, _ in answers]}
        print(f"{name:40s} {tokens / seconds:7.1f} tok/s  latency ms {latencies}", flush=True)

    def direct_answer(direct: Direct, seed: str) -> tuple[int, float]:
        answer = direct.ask(seed)
        return answer["completion_tokens"], answer["latency_s"]

    def served_answer(server: Server, model: str, seed: str) -> tuple[int, float]:
        outcome = ask_alone(server, content, model, seed, TIMEOUT_S)
        if outcome.error:
            raise RuntimeError(f"mmserve: {outcome.error}")
        return outcome.completion_tokens, outcome.latency_s

    def both_in_turn(name: str, prefix: str, direct: Direct, server: Server, model: str) -> None:
        pairs = in_turn(
            [f"{prefix}-{i}" for i in range(n)],
            lambda seed: direct_answer(direct, seed),
            lambda seed: served_answer(server, model, seed),
        )
        record(f"{name}: mlx_lm", [theirs for theirs, _ in pairs])
        record(f"{name}: mmserve", [mine for _, mine in pairs])

    direct = Direct(text, MAX_TOKENS, TIMEOUT_S, TIMEOUT_S)
    record("P1 mlx_lm alone", [direct_answer(direct, f"p1-{i}") for i in range(n)])
    direct.close()
    with tempfile.TemporaryDirectory(prefix="mmserve-single-") as logs:
        log_dir = args.logs or Path(logs)
        log_dir.mkdir(parents=True, exist_ok=True)
        server = Server(SERVERS["mmserve"], {"text": text, "vision": args.models / "vision"}, log_dir, ROOT)
        server.start(TIMEOUT_S)
        model = SERVERS["mmserve"].model_field(server.models)
        try:
            for seed in ("warm-up-1", "warm-up-2"):
                served_answer(server, model, seed)
            record("P2 mmserve alone", [served_answer(server, model, f"p2-{i}") for i in range(n)])
            direct = Direct(text, MAX_TOKENS, TIMEOUT_S, TIMEOUT_S)
            record("P3 mmserve, mlx_lm idle beside", [served_answer(server, model, f"p3-{i}") for i in range(n)])
            record("P4 mlx_lm, mmserve idle beside", [direct_answer(direct, f"p4-{i}") for i in range(n)])
            both_in_turn("P5 in turn", "p5", direct, server, model)
            if args.load:
                phases["memory before load"] = admin_status(server)
                for workload, clients, works in load_works(content, model):
                    run = asyncio.run(
                        loadgen.run_load(
                            server.base_url, works, clients, time_limit_s=TIMEOUT_S, request_timeout_s=TIMEOUT_S
                        )
                    )
                    failed = sum(o.error is not None for o in run.outcomes)
                    print(f"load: {workload} x {clients} clients, {len(works)} requests, {failed} failed", flush=True)
                phases["memory after load"] = admin_status(server)
                both_in_turn("P8 in turn after load", "p8", direct, server, model)
            direct.close()
            record("P6 mmserve alone again", [served_answer(server, model, f"p6-{i}") for i in range(n)])
        finally:
            server.stop()
    direct = Direct(text, MAX_TOKENS, TIMEOUT_S, TIMEOUT_S)
    record("P7 mlx_lm alone again", [direct_answer(direct, f"p7-{i}") for i in range(n)])
    direct.close()
    print(json.dumps(phases))
    return 0


def load_works(content: Content, model: str) -> list[tuple[str, int, list[loadgen.Work]]]:
    """A load like the benchmark's concurrent cells, two requests per client: (workload, clients, works)."""
    text = [content.text(f"load-text-{i}", model) for i in range(64)]
    image = [content.image_work(f"load-image-{i}", model) for i in range(16)]
    mixed = [
        content.text(f"load-mixed-{i}", model) if i % 2 == 0 else content.image_work(f"load-mixed-{i}", model)
        for i in range(32)
    ]
    return [("text", 32, text), ("image", 8, image), ("mixed", 16, mixed)]


if __name__ == "__main__":
    sys.exit(main())
