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
import asyncio
import json
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import loadgen
from run import ROOT, Content, _read_json_line
from servers import SERVERS, Server

MAX_TOKENS = 64


class Direct:
    """mlx_lm in a subprocess of its own (``direct.py --serve``), one prompt at a time."""

    def __init__(self, text_model: Path) -> None:
        argv = [sys.executable, str(HERE / "direct.py"), "--serve", str(text_model), str(MAX_TOKENS)]
        self.proc = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, cwd=ROOT)
        _read_json_line(self.proc, 300)  # ready after its warm-up

    def ask(self, seed: str) -> tuple[int, float]:
        self.proc.stdin.write(json.dumps(loadgen.prompt_for(seed)) + "\n")
        self.proc.stdin.flush()
        r = _read_json_line(self.proc, 300)
        return r["completion_tokens"], r["latency_s"]

    def close(self) -> None:
        self.proc.stdin.close()
        self.proc.wait(60)


def ask_server(server: Server, content: Content, model: str, seed: str) -> tuple[int, float]:
    run = asyncio.run(
        loadgen.run_load(server.base_url, [content.text(seed, model)], 1, time_limit_s=300, request_timeout_s=300)
    )
    (o,) = run.outcomes
    if o.error:
        raise RuntimeError(f"mmserve: {o.error}")
    return o.completion_tokens, o.latency_s


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--models", required=True, type=Path)
    parser.add_argument("--requests", type=int, default=8)
    args = parser.parse_args()
    n, text = args.requests, args.models / "text"
    content = Content(MAX_TOKENS)
    phases: dict[str, dict] = {}

    def record(name: str, answers: list[tuple[int, float]]) -> None:
        tokens, seconds = sum(t for t, _ in answers), sum(s for _, s in answers)
        latencies = [round(s * 1000) for _, s in answers]
        phases[name] = {"tok_s": round(tokens / seconds, 1), "latency_ms": latencies, "tokens": [t for t, _ in answers]}
        print(f"{name:40s} {tokens / seconds:7.1f} tok/s  latency ms {latencies}", flush=True)

    direct = Direct(text)
    record("P1 mlx_lm alone", [direct.ask(f"p1-{i}") for i in range(n)])
    direct.close()
    with tempfile.TemporaryDirectory(prefix="mmserve-single-") as logs:
        server = Server(SERVERS["mmserve"], {"text": text, "vision": args.models / "vision"}, Path(logs), ROOT)
        server.start(300)
        model = SERVERS["mmserve"].model_field(server.models)
        try:
            for seed in ("warm-up-1", "warm-up-2"):
                ask_server(server, content, model, seed)
            record("P2 mmserve alone", [ask_server(server, content, model, f"p2-{i}") for i in range(n)])
            direct = Direct(text)
            record("P3 mmserve, mlx_lm idle beside", [ask_server(server, content, model, f"p3-{i}") for i in range(n)])
            record("P4 mlx_lm, mmserve idle beside", [direct.ask(f"p4-{i}") for i in range(n)])
            mine, theirs = [], []
            for i in range(n):
                first_direct = i % 2 == 0
                if first_direct:
                    theirs.append(direct.ask(f"p5-{i}"))
                mine.append(ask_server(server, content, model, f"p5-{i}"))
                if not first_direct:
                    theirs.append(direct.ask(f"p5-{i}"))
            record("P5 in turn: mlx_lm", theirs)
            record("P5 in turn: mmserve", mine)
            direct.close()
            record("P6 mmserve alone again", [ask_server(server, content, model, f"p6-{i}") for i in range(n)])
        finally:
            server.stop()
    direct = Direct(text)
    record("P7 mlx_lm alone again", [direct.ask(f"p7-{i}") for i in range(n)])
    direct.close()
    print(json.dumps(phases))
    return 0


if __name__ == "__main__":
    sys.exit(main())
