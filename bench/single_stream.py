"""Single stream: mmserve against mlx_lm in process, alone, beside each other, and in turn.

    python bench/single_stream.py --models DIR [--requests 8]

DIR holds text/ and vision/ (``mmserve synth DIR``). Each phase sends --requests
distinct greedy prompts one after another and prints completion tokens over the
summed request time, with each request's latency:

  P1 mlx_lm alone, P2 mmserve alone, P3 mmserve beside an idle mlx_lm process,
  P4 mlx_lm beside an idle mmserve, P5 both in turn, P6 mmserve alone again,
  P7 mlx_lm alone again.

It tells a serving overhead (mmserve slower in every phase) from a machine whose
speed drifts (all phases move together) and from processes that slow each other
down (P3-P5 against the phases alone). The last line is all of it as JSON.
"""

from __future__ import annotations

import argparse
import json
import signal
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from run import ROOT, Content, Direct, _interrupt, ask_alone, in_turn
from servers import SERVERS, Server

MAX_TOKENS = 64
TIMEOUT_S = 300.0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--models", required=True, type=Path)
    parser.add_argument("--requests", type=int, default=8)
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

    direct = Direct(text, MAX_TOKENS, TIMEOUT_S, TIMEOUT_S)
    record("P1 mlx_lm alone", [direct_answer(direct, f"p1-{i}") for i in range(n)])
    direct.close()
    with tempfile.TemporaryDirectory(prefix="mmserve-single-") as logs:
        server = Server(SERVERS["mmserve"], {"text": text, "vision": args.models / "vision"}, Path(logs), ROOT)
        server.start(TIMEOUT_S)
        model = SERVERS["mmserve"].model_field(server.models)
        try:
            for seed in ("warm-up-1", "warm-up-2"):
                served_answer(server, model, seed)
            record("P2 mmserve alone", [served_answer(server, model, f"p2-{i}") for i in range(n)])
            direct = Direct(text, MAX_TOKENS, TIMEOUT_S, TIMEOUT_S)
            record("P3 mmserve, mlx_lm idle beside", [served_answer(server, model, f"p3-{i}") for i in range(n)])
            record("P4 mlx_lm, mmserve idle beside", [direct_answer(direct, f"p4-{i}") for i in range(n)])
            pairs = in_turn(
                [f"p5-{i}" for i in range(n)],
                lambda seed: direct_answer(direct, seed),
                lambda seed: served_answer(server, model, seed),
            )
            record("P5 in turn: mlx_lm", [theirs for theirs, _ in pairs])
            record("P5 in turn: mmserve", [mine for _, mine in pairs])
            direct.close()
            record("P6 mmserve alone again", [served_answer(server, model, f"p6-{i}") for i in range(n)])
        finally:
            server.stop()
    direct = Direct(text, MAX_TOKENS, TIMEOUT_S, TIMEOUT_S)
    record("P7 mlx_lm alone again", [direct_answer(direct, f"p7-{i}") for i in range(n)])
    direct.close()
    print(json.dumps(phases))
    return 0


if __name__ == "__main__":
    sys.exit(main())
