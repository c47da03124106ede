"""Benchmark mmserve against mlx_lm.server and mlx_vlm.server, side by side, in one command.

    python bench/run.py [--models DIR] [--quick] [--label "H100, qwen2.5 shapes"] ...

Starts each server in turn on a free loopback port (one at a time, so they do not
compete for the machine), drives it with streaming OpenAI clients, stops it, and
writes docs/benchmarks.md, an SVG chart beside it, and raw JSON to bench/results/.
See bench/README.md.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import gzip
import json
import os
import platform
import re
import select
import shlex
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psutil

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(HERE))

import loadgen
import report
from servers import SERVERS, Server, StartError, failure_lines

WORKLOADS = ("text", "image", "mixed", "repeated-image")
QUESTIONS = loadgen.IMAGE_QUESTIONS


def log(msg: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


# --- plan -----------------------------------------------------------------------


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="bench/run.py", description=__doc__.split("\n\n")[0])
    p.add_argument(
        "--models", help="directory with text/ (mlx-lm) and vision/ (mlx-vlm) models; default: synthesize tiny ones"
    )
    p.add_argument("--out", default=str(ROOT / "docs" / "benchmarks.md"), help="markdown report to (re)write")
    p.add_argument("--label", help="title of this run's section in the report (sections with other labels are kept)")
    p.add_argument("--servers", default="mmserve,mlx_lm,mlx_vlm", help="which servers to run (default: all three)")
    p.add_argument("--workloads", default="text,image,mixed,repeated-image")
    p.add_argument("--clients", help="client counts for the text workload (default 1,8,32)")
    p.add_argument("--image-clients", help="client counts for the image workload (default 1,8)")
    p.add_argument("--mixed-clients", help="client counts for the mixed workload (default 16)")
    p.add_argument("--max-tokens", type=int, default=64)
    p.add_argument(
        "--requests",
        type=int,
        help="requests per client in each run (default: text 8, image and mixed 6; "
        "--quick 1), with a floor per run of 32 text / 12 image requests (--quick: 4 / 2)",
    )
    p.add_argument("--images", type=int, help="images in the repeated-image workload (default 3, --quick 2)")
    p.add_argument("--check-prompts", type=int, help="prompts in the greedy cross-talk check (default 16, --quick 8)")
    p.add_argument(
        "--time-limit", type=float, help="seconds after which a run sends no new requests (default 300, --quick 60)"
    )
    p.add_argument("--request-timeout", type=float, default=600.0, help="seconds one request may take")
    p.add_argument("--startup-timeout", type=float, default=600.0, help="seconds a server may take to become ready")
    p.add_argument("--no-direct", action="store_true", help="skip the in-process mlx_lm baseline")
    p.add_argument(
        "--in-turn",
        type=int,
        help="requests each for mmserve and in-process mlx_lm taking turns (default 16, --quick 4; 0 skips)",
    )
    p.add_argument("--quick", action="store_true", help="a smoke run of about two minutes on a small CPU")
    p.add_argument(
        "--from-json", help="measure nothing: rewrite the report from a raw bench/results/*.json (or a .json.gz)"
    )
    args = p.parse_args(argv)

    def ints(text: str | None, default: list[int]) -> list[int]:
        return sorted({int(x) for x in text.split(",") if x.strip()}) if text else default

    args.server_list = [s.strip() for s in args.servers.split(",") if s.strip()]
    args.workload_list = [w.strip() for w in args.workloads.split(",") if w.strip()]
    for name in args.server_list:
        if name not in SERVERS:
            p.error(f"unknown server {name!r}; choose from {', '.join(SERVERS)}")
    for name in args.workload_list:
        if name not in WORKLOADS:
            p.error(f"unknown workload {name!r}; choose from {', '.join(WORKLOADS)}")
    args.clients_for = {
        "text": ints(args.clients, [1, 8, 32]),
        "image": ints(args.image_clients, [1, 8]),
        "mixed": ints(args.mixed_clients, [16]),
    }
    q = args.quick
    default = {"text": 1, "image": 1, "mixed": 1} if q else {"text": 8, "image": 6, "mixed": 6}
    args.per_client = {w: args.requests or n for w, n in default.items()}
    args.floor = {"text": 4, "image": 2, "mixed": 4} if q else {"text": 32, "image": 12, "mixed": 16}
    args.images = args.images or (2 if q else 3)
    args.check_prompts = args.check_prompts or (8 if q else 16)
    args.in_turn = (4 if q else 16) if args.in_turn is None else args.in_turn
    args.time_limit = args.time_limit or (60.0 if q else 300.0)
    return args


def total_requests(args, workload: str, clients: int) -> int:
    return max(args.per_client[workload] * clients, args.floor[workload])


# --- machine ----------------------------------------------------------------------


def machine_info(backend: dict | None) -> dict:
    info = {"platform": platform.platform(), "cores": os.cpu_count(), "cpu": platform.processor() or platform.machine()}
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                info["cpu"] = line.split(":", 1)[1].strip()
                break
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                info["ram_gib"] = round(int(line.split()[1]) / 1024 / 1024, 1)
                break
    except OSError:  # macOS
        for key, name in (("machdep.cpu.brand_string", "cpu"), ("hw.memsize", "ram_gib")):
            try:
                value = subprocess.run(
                    ["sysctl", "-n", key], check=False, capture_output=True, text=True, timeout=5
                ).stdout.strip()
                info[name] = round(int(value) / 2**30, 1) if name == "ram_gib" else value
            except (OSError, ValueError, subprocess.SubprocessError):
                pass
    try:
        gpus = subprocess.run(
            ["nvidia-smi", "--query-gpu=name,memory.total", "--format=csv,noheader"],
            check=False,
            capture_output=True,
            text=True,
            timeout=10,
        )
        if gpus.returncode == 0 and gpus.stdout.strip():
            info["gpus"] = [g.strip() for g in gpus.stdout.strip().splitlines()]
    except (OSError, subprocess.SubprocessError):
        pass
    info.update(backend or {})
    return info


def model_info(path: Path) -> dict:
    info: dict = {"path": str(path)}
    try:
        cfg = json.loads((path / "config.json").read_text())
        text_cfg = cfg.get("text_config", cfg)
        info["model_type"] = cfg.get("model_type")
        for key in ("hidden_size", "num_hidden_layers", "vocab_size"):
            info[key] = text_cfg.get(key, cfg.get(key))
        info["size_mib"] = round(sum(f.stat().st_size for f in path.glob("*.safetensors")) / 2**20, 1)
    except (OSError, ValueError):
        pass
    return info


def run_json(argv: list[str], timeout: float) -> tuple[dict | None, str]:
    try:
        proc = subprocess.run(argv, check=False, capture_output=True, text=True, timeout=timeout, cwd=ROOT)
    except subprocess.TimeoutExpired:
        return None, f"timed out after {timeout:.0f}s"
    if proc.returncode != 0:
        return None, f"exit {proc.returncode}: " + failure_lines(proc.stderr, 3).replace("\n", " / ")
    try:
        return json.loads(proc.stdout.strip().splitlines()[-1]), ""
    except (ValueError, IndexError):
        return None, "no JSON on stdout: " + proc.stdout[-300:]


# --- workloads ------------------------------------------------------------------


class Content:
    """Request bodies, built before any timing; the same seeds give the same content on every server."""

    def __init__(self, max_tokens: int) -> None:
        self.max_tokens = max_tokens
        self._images: dict[str, str] = {}

    def image(self, seed: str) -> str:
        if seed not in self._images:
            self._images[seed] = loadgen.image_data_uri(seed)
        return self._images[seed]

    def text(self, seed: str, model: str) -> loadgen.Work:
        return loadgen.text_work(seed, model, self.max_tokens)

    def image_work(self, seed: str, model: str, question: str | None = None) -> loadgen.Work:
        question = question or QUESTIONS[loadgen.hash_seed(seed) % len(QUESTIONS)]
        return loadgen.image_work(seed, self.image(seed), question, model, self.max_tokens)


def works_for(args, content: Content, workload: str, clients: int, model: str) -> list[loadgen.Work]:
    n = total_requests(args, workload, clients)
    prefix = f"{workload}-c{clients}"
    if workload == "text":
        return [content.text(f"{prefix}-{i}", model) for i in range(n)]
    if workload == "image":
        return [content.image_work(f"{prefix}-{i}", model) for i in range(n)]
    # mixed: alternate so that every moment of the run has both kinds in flight
    return [
        content.text(f"{prefix}-{i}", model) if i % 2 == 0 else content.image_work(f"{prefix}-{i}", model)
        for i in range(n)
    ]


def run_cell(server: Server, works, clients: int, args) -> loadgen.Run:
    """One measured run, with the server's peak RSS and where the CPU time went (server processes and this client)."""
    server.reset_rss_peak()
    cpu_before, client_before, machine_before = server.cpu_seconds(), time.process_time(), _machine_busy_s()
    run = asyncio.run(
        loadgen.run_load(
            server.base_url, works, clients, time_limit_s=args.time_limit, request_timeout_s=args.request_timeout
        )
    )
    cpu_after, client_after, machine_after = server.cpu_seconds(), time.process_time(), _machine_busy_s()
    run.rss_peak_bytes = server.rss_peak_bytes
    run.cpu_s = {role: round(cpu_after[role] - cpu_before.get(role, 0.0), 2) for role in cpu_after}
    run.cpu_s["bench client"] = round(client_after - client_before, 2)
    if machine_before is not None and machine_after is not None:
        # whatever else ran on the machine meanwhile (other users, tests): it competed for the same cores
        run.cpu_s["other processes"] = round(max(0.0, machine_after - machine_before - sum(run.cpu_s.values())), 2)
    return run


def _own_cpu_s() -> float:
    """CPU seconds of this process and its finished children (the direct baseline subprocess)."""
    t = os.times()
    return t.user + t.system + t.children_user + t.children_system


def _machine_busy_s() -> float | None:
    """Non-idle CPU seconds of the whole machine so far."""
    try:
        import psutil

        t = psutil.cpu_times()
        return sum(t) - t.idle - getattr(t, "iowait", 0.0)
    except Exception:  # noqa: BLE001 - psutil missing: the column is left out
        return None


def cell_json(run: loadgen.Run, keep_text: bool = False) -> dict:
    data = run.to_json(keep_text=keep_text)
    kinds = {o.kind for o in run.outcomes}
    if len(kinds) > 1:
        data["by_kind"] = {kind: loadgen.summarize(run, kind) for kind in sorted(kinds)}
    data["usage_anomalies"] = usage_anomalies(run)
    return data


def usage_anomalies(run: loadgen.Run) -> list[str]:
    """Signs that the usage numbers are wrong: missing, or disagreeing with what was streamed."""
    problems = []
    ok = [o for o in run.outcomes if o.error is None]
    missing = sum(o.tokens_from != "usage" for o in ok)
    if missing:
        problems.append(f"{missing}/{len(ok)} responses had no usage chunk (tokens counted from chunks)")
    more_chunks = [o for o in ok if o.tokens_from == "usage" and o.content_chunks > o.completion_tokens]
    if more_chunks:
        o = more_chunks[0]
        problems.append(
            f"{len(more_chunks)} responses streamed more content chunks than usage.completion_tokens "
            f"(e.g. {o.content_chunks} chunks vs {o.completion_tokens} tokens)"
        )
    no_ttft = sum(o.ttft_s is None for o in ok)
    if no_ttft:
        problems.append(f"{no_ttft}/{len(ok)} responses streamed no content at all")
    return problems


def greedy_check(server: Server, content: Content, model: str, args) -> dict:
    """Each check prompt answered alone, then the same prompts from 8 concurrent clients: same text?"""
    works = [content.text(f"check-{i}", model) for i in range(args.check_prompts)]
    solo = asyncio.run(
        loadgen.run_load(
            server.base_url, works, 1, time_limit_s=args.time_limit, request_timeout_s=args.request_timeout
        )
    )
    loaded = asyncio.run(
        loadgen.run_load(
            server.base_url, works, 8, time_limit_s=args.time_limit, request_timeout_s=args.request_timeout
        )
    )
    ref = {o.key: o for o in solo.outcomes if o.error is None}
    identical, mismatches = 0, []
    for o in sorted(loaded.outcomes, key=lambda o: o.key):
        r = ref.get(o.key)
        if o.error is None and r is not None and o.text == r.text:
            identical += 1
        else:
            why = o.error or (r is None and "no solo answer") or f"differs at char {_diverge(o.text, r.text)}"
            mismatches.append({"key": o.key, "why": why, "solo": r.text[:120] if r else None, "loaded": o.text[:120]})
    return {
        "prompts": len(works),
        "compared": len(loaded.outcomes),
        "identical": identical,
        "mismatches": mismatches,
        "solo": loadgen.summarize(solo),
        "loaded": loadgen.summarize(loaded),
    }


def _diverge(a: str, b: str) -> int:
    for i, (x, y) in enumerate(zip(a, b)):
        if x != y:
            return i
    return min(len(a), len(b))


class Direct:
    """mlx_lm in process, in a subprocess of its own (``direct.py --serve``) that holds the
    model while a server runs: one prompt at a time."""

    def __init__(self, text_model: Path, max_tokens: int, timeout_s: float, ready_timeout_s: float) -> None:
        argv = [sys.executable, str(HERE / "direct.py"), "--serve", str(text_model), str(max_tokens)]
        self.proc = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, cwd=ROOT)
        self.timeout_s = timeout_s
        try:
            self._answer(ready_timeout_s)  # {"ready": true} once loaded and warmed up
        except BaseException:
            self.close()
            raise

    def ask(self, seed: str) -> dict:
        """The answer to ``seed``'s prompt: completion_tokens, latency_s, text, ..."""
        self.proc.stdin.write(json.dumps(loadgen.prompt_for(seed)) + "\n")
        self.proc.stdin.flush()
        return self._answer(self.timeout_s)

    def _answer(self, timeout_s: float) -> dict:
        ready, _, _ = select.select([self.proc.stdout], [], [], timeout_s)
        line = self.proc.stdout.readline() if ready else ""
        if not line:
            raise RuntimeError(f"direct.py --serve: no answer ({'timed out' if not ready else 'exited'})")
        return json.loads(line)

    def close(self) -> None:
        self.proc.stdin.close()
        try:
            self.proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            self.proc.kill()


def ask_alone(server: Server, content: Content, model: str, seed: str, timeout_s: float) -> loadgen.Outcome:
    """One streamed text request, the only one in flight."""
    run = asyncio.run(
        loadgen.run_load(
            server.base_url, [content.text(seed, model)], 1, time_limit_s=timeout_s, request_timeout_s=timeout_s
        )
    )
    (outcome,) = run.outcomes
    return outcome


def single_stream_in_turn(server: Server, content: Content, model: str, text_model: Path, args) -> dict:
    """mmserve at one client and mlx_lm in process, one request each in turn (direct, mmserve,
    mmserve, direct, ...), so that a machine whose speed drifts during the run (a shared host,
    CPU clocks) weighs on both alike. tok/s is completion tokens over the summed request
    time, as in the direct baseline."""
    weights = sum(f.stat().st_size for f in text_model.glob("*.safetensors"))
    free = psutil.virtual_memory().available
    if free < 2 * weights:
        # A second copy of the model beside the server's: on unified memory (Macs) and on the
        # CPU it comes out of the RAM the server's guard planned with.
        raise RuntimeError(f"skipped: {free / 2**30:.1f} GiB of RAM free, under twice the model's weights")
    direct = Direct(text_model, args.max_tokens, args.request_timeout, args.startup_timeout)
    try:
        pairs = in_turn(
            [f"in-turn-{i}" for i in range(args.in_turn)],
            direct.ask,
            lambda seed: ask_alone(server, content, model, seed, args.request_timeout),
        )
    finally:
        direct.close()
    failed = [served.error for _, served in pairs if served.error]
    if failed:
        raise RuntimeError(f"{len(failed)} mmserve requests failed, e.g. {failed[0]}")
    direct_tokens = sum(answer["completion_tokens"] for answer, _ in pairs)
    served_tokens = sum(served.completion_tokens for _, served in pairs)
    direct_tok_s = direct_tokens / sum(answer["latency_s"] for answer, _ in pairs)
    served_tok_s = served_tokens / sum(served.latency_s for _, served in pairs)
    return {
        "pairs": len(pairs),
        "direct_tok_s": round(direct_tok_s, 2),
        "mmserve_tok_s": round(served_tok_s, 2),
        "ratio": round(served_tok_s / direct_tok_s, 3),
        "same_text": sum(answer["text"] == served.text for answer, served in pairs),
        "per_pair": [
            {
                "direct_s": round(answer["latency_s"], 4),
                "direct_tokens": answer["completion_tokens"],
                "mmserve_s": round(served.latency_s, 4),
                "mmserve_tokens": served.completion_tokens,
            }
            for answer, served in pairs
        ],
    }


def in_turn(seeds: list[str], ask_direct, ask_served) -> list[tuple]:
    """Each seed's prompt asked of both, alternating which goes first (direct, served, served,
    direct, ...): a (direct answer, served answer) pair per seed."""
    pairs = []
    for i, seed in enumerate(seeds):
        if i % 2 == 0:
            answer = ask_direct(seed)
            served = ask_served(seed)
        else:
            served = ask_served(seed)
            answer = ask_direct(seed)
        pairs.append((answer, served))
    return pairs


def repeated_image(server: Server, content: Content, model: str, args) -> dict:
    """One client asks each image 4 different questions in turn: TTFT of the 1st vs the mean of the 2nd-4th."""
    works = []
    for j in range(args.images):
        seed = f"repeat-{j}"
        for q, question in enumerate(QUESTIONS):
            w = content.image_work(seed, model, question)
            w.key = f"{seed}-q{q}"
            works.append(w)
    run = run_cell(server, works, 1, args)
    per_image = []
    for j in range(args.images):
        outs = {o.key: o for o in run.outcomes if o.key.startswith(f"repeat-{j}-")}
        ttfts = [outs.get(f"repeat-{j}-q{q}") for q in range(len(QUESTIONS))]
        if all(o is not None and o.error is None and o.ttft_s is not None for o in ttfts):
            first = ttfts[0].ttft_s * 1000
            rest = sum(o.ttft_s for o in ttfts[1:]) / (len(ttfts) - 1) * 1000
            per_image.append(
                {
                    "image": j,
                    "first_ms": round(first, 1),
                    "rest_mean_ms": round(rest, 1),
                    "ratio": round(rest / first, 3) if first else None,
                }
            )
    out = cell_json(run)
    out["per_image"] = per_image
    if per_image:
        first = sum(p["first_ms"] for p in per_image) / len(per_image)
        rest = sum(p["rest_mean_ms"] for p in per_image) / len(per_image)
        out.update(
            first_ms=round(first, 1), rest_mean_ms=round(rest, 1), ratio=round(rest / first, 3) if first else None
        )
    return out


def warm_up(server: Server, content: Content, model: str, spec_workloads, args) -> list[str]:
    works = [content.text("warm-up-text", model)]
    if "image" in spec_workloads:
        works.append(content.image_work("warm-up-image", model))
    run = asyncio.run(
        loadgen.run_load(
            server.base_url, works, 1, time_limit_s=args.startup_timeout, request_timeout_s=args.request_timeout
        )
    )
    return [f"warm-up {o.kind}: {o.error}" for o in run.outcomes if o.error]


def admin_status(server: Server) -> dict | None:
    if server.spec.name != "mmserve":
        return None
    try:
        import httpx

        return httpx.get(server.base_url + "/admin/status", timeout=10).json()
    except Exception as exc:  # noqa: BLE001 - informative only
        return {"error": str(exc)}


def bench_server(name: str, models: dict[str, Path], content: Content, args, log_dir: Path) -> dict:
    spec = SERVERS[name]
    result: dict = {"title": spec.title, "status": "ok", "cells": {}, "notes": []}
    missing = [kind for kind in spec.needs if kind not in models]
    if name != "mmserve" and missing or name == "mmserve" and len(missing) == len(spec.needs):
        result.update(status="skipped", error=f"no {'/'.join(missing)} model in --models")
        return result
    workloads = [w for w in args.workload_list if w in spec.workloads]
    if name == "mmserve":
        needs = {"text": "text", "image": "vision", "repeated-image": "vision", "mixed": "vision"}
        workloads = [w for w in workloads if needs[w] in models and (w != "mixed" or "text" in models)]
    server = Server(spec, {k: v for k, v in models.items() if k in spec.needs}, log_dir, ROOT)
    model = spec.model_field(server.models)
    t0 = time.perf_counter()
    result["loadavg_before"] = _loadavg()
    log(f"{spec.title}: starting (load average {result['loadavg_before']})")
    try:
        server.start(args.startup_timeout)
    except BaseException as exc:
        server.stop()  # whatever went wrong, leave no server behind
        if not isinstance(exc, Exception):
            raise
        why = str(exc) if isinstance(exc, (StartError, OSError)) else f"{type(exc).__name__}: {exc}"
        result.update(status="failed", error=f"did not start: {why}", log_tail=server.log_tail())
        log(f"{spec.title}: FAILED to start: {why}")
        return result
    result["startup_s"] = round(server.startup_s, 1)
    result["argv"] = spec.argv(server.models, server.port)
    log(f"{spec.title}: ready in {server.startup_s:.1f}s on port {server.port}")
    try:
        result["notes"] += warm_up(server, content, model, spec.workloads, args)
        if "text" in workloads and server.alive():
            log(f"{spec.title}: greedy cross-talk check ({args.check_prompts} prompts, solo then 8 clients)")
            result["greedy"] = _guard(lambda: greedy_check(server, content, model, args), result)
        # Before the concurrent cells: after a load, a long-lived mlx process on CUDA decodes
        # slower whatever runs in it, while the mlx_lm it is compared with starts fresh
        # (bench/single_stream.py --load, docs/performance.md).
        if name == "mmserve" and "text" in workloads and args.in_turn and not args.no_direct and server.alive():
            log(f"{spec.title}: single stream in turn with mlx_lm in process ({args.in_turn} requests each)")
            result["in_turn"] = _guard(
                lambda: single_stream_in_turn(server, content, model, models["text"], args), result
            )
            if "error" in result["in_turn"]:
                log(f"    in turn: {result['in_turn']['error']}")
            else:
                result["in_turn"]["when"] = "before the concurrent cells"
        for workload in workloads:
            if workload == "repeated-image":
                if not server.alive():
                    break
                log(f"{spec.title}: repeated-image ({args.images} images x {len(QUESTIONS)} questions)")
                result["cells"]["repeated-image"] = _guard(lambda: repeated_image(server, content, model, args), result)
                continue
            for clients in args.clients_for[workload]:
                if not server.alive():
                    result["notes"].append(
                        f"server exited with code {server.proc.returncode} before {workload}@{clients}"
                    )
                    break
                works = works_for(args, content, workload, clients, model)
                log(f"{spec.title}: {workload} x {clients} clients ({len(works)} requests)")
                cell = _guard(
                    lambda works=works, clients=clients: cell_json(run_cell(server, works, clients, args)), result
                )
                result["cells"].setdefault(workload, {})[str(clients)] = cell
                if cell and "summary" in cell:
                    s = cell["summary"]
                    log(f"    {s['throughput_tok_s']} tok/s, TTFT p50 {s['ttft_p50_ms']} ms, errors {s['errors']}")
        result["admin_status"] = admin_status(server)
    finally:
        if not server.alive():
            result["notes"].append(f"server exited with code {server.proc.returncode} during the run")
            result["log_tail"] = server.log_tail()
        result["log_lines"] = notable_log_lines(server)
        rc = server.stop()
        result["exit_code"] = rc
        shutdown = notable_log_lines(server, skip=result["log_lines"]["lines_total"])
        if shutdown["count"]:
            result["shutdown_log_lines"] = shutdown
        result["log_file"] = (
            str(server.log_path.relative_to(ROOT)) if server.log_path.is_relative_to(ROOT) else str(server.log_path)
        )
        result["elapsed_s"] = round(time.perf_counter() - t0, 1)
        log(f"{spec.title}: stopped (exit {rc}) after {result['elapsed_s']}s")
    return result


_ACCESS = re.compile(r'"(?:GET|POST|PUT|PATCH|DELETE|HEAD|OPTIONS) \S+ HTTP/[\d.]+" (\d{3})')


def notable_log_lines(server: Server, skip: int = 0, limit: int = 6) -> dict:
    """Servers run at log level warning, so what they still log deserves a look (2xx access lines and INFO: aside)."""
    try:
        lines = server.log_path.read_text(errors="replace").splitlines()
    except (OSError, AttributeError):
        return {"count": 0, "first": [], "tracebacks": 0, "lines_total": 0}
    notable = []
    for line in lines[skip:]:
        line = line.strip()
        access = _ACCESS.search(line)
        if not line or line.startswith("INFO:") or (access and access.group(1).startswith("2")):
            continue
        notable.append(line)
    first: list[str] = []
    for line in notable:
        if line[:200] not in first:
            first.append(line[:200])
        if len(first) >= limit:
            break
    return {
        "count": len(notable),
        "first": first,
        "tracebacks": sum("Traceback" in line for line in notable),
        "lines_total": len(lines),
    }


def _loadavg() -> list[float] | None:
    """Other work on the machine skews every number; the report shows this beside them."""
    try:
        return [round(x, 2) for x in os.getloadavg()]
    except OSError:
        return None


def _guard(fn, result: dict):
    """Run one measurement; an exception is recorded as a note, not raised."""
    try:
        return fn()
    except Exception as exc:  # noqa: BLE001 - a broken peer must not end the whole benchmark
        result["notes"].append(f"{type(exc).__name__}: {exc}")
        return {"error": f"{type(exc).__name__}: {exc}"}


# --- main -----------------------------------------------------------------------


def find_models(args, tmp: Path) -> tuple[dict[str, Path], str]:
    if args.models:
        root = Path(args.models).expanduser().resolve()
        source = str(root)
    else:
        root = tmp / "models"
        log(f"synthesizing tiny models into {root}")
        proc = subprocess.run(
            [sys.executable, "-m", "mmserve.cli", "synth", str(root)],
            check=False,
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=600,
        )
        if proc.returncode != 0:
            raise SystemExit(f"bench: could not synthesize models: {proc.stderr[-500:]}")
        source = "synthesized tiny models (mmserve synth)"
    models = {kind: root / kind for kind in ("text", "vision") if (root / kind / "config.json").exists()}
    if not models:
        raise SystemExit(f"bench: {root} has neither text/ nor vision/ with a config.json")
    return models, source


def _interrupt(signum, frame) -> None:
    raise KeyboardInterrupt  # so that the running server is stopped on the way out


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.from_json:
        raw = Path(args.from_json).read_bytes()
        results = json.loads(gzip.decompress(raw) if args.from_json.endswith(".gz") else raw)
        results["targets"] = report.evaluate_targets(results)
        if args.label:  # the section to (re)write, when not the run's own
            results["label"] = args.label
        svg = report.write_report(results, Path(args.out), default_svg=not results.get("label"))
        log(f"rewrote {args.out} and {svg} from {args.from_json}")
        return 0
    signal.signal(signal.SIGTERM, _interrupt)
    started = time.perf_counter()
    stamp = dt.datetime.now().strftime("%Y%m%d-%H%M%S")
    command = shlex.join(["python", "bench/run.py", *(sys.argv[1:] if argv is None else argv)])
    with tempfile.TemporaryDirectory(prefix="mmserve-bench-") as tmpname:
        tmp = Path(tmpname)
        models, source = find_models(args, tmp)
        backend, err = run_json([sys.executable, str(HERE / "direct.py"), "--backend"], 120)
        results: dict = {
            "timestamp": stamp,
            "command": command,
            "machine": machine_info((backend or {}).get("backend")),
            "models": {kind: model_info(path) for kind, path in models.items()},
            "model_source": source,
            "settings": {
                "max_tokens": args.max_tokens,
                "clients": args.clients_for,
                "requests_per_client": args.per_client,
                "floor": args.floor,
                "images": args.images,
                "check_prompts": args.check_prompts,
                "in_turn": args.in_turn,
                "time_limit_s": args.time_limit,
                "quick": args.quick,
                "workloads": args.workload_list,
                "servers": args.server_list,
            },
            "servers": {},
        }
        backend_name = results["machine"].get("backend", "unknown")
        results["label"] = (
            args.label
            or f"{backend_name.upper()}, {Path(args.models).name if args.models else 'tiny synthesized models'}"
        )
        content = Content(args.max_tokens)

        if "text" in args.workload_list and "text" in models and not args.no_direct and 1 in args.clients_for["text"]:
            seeds = [f"text-c1-{i}" for i in range(total_requests(args, "text", 1))]
            prompts = tmp / "prompts.json"
            prompts.write_text(json.dumps([loadgen.prompt_for(s) for s in seeds]))
            log(f"direct mlx_lm baseline ({len(seeds)} prompts, in a subprocess)")
            busy_before, ours_before, t_before = _machine_busy_s(), _own_cpu_s(), time.perf_counter()
            direct, err = run_json(
                [sys.executable, str(HERE / "direct.py"), str(models["text"]), str(prompts), str(args.max_tokens)],
                args.request_timeout * 2,
            )
            busy_after, ours_after, wall = _machine_busy_s(), _own_cpu_s(), time.perf_counter() - t_before
            if direct and busy_before is not None and busy_after is not None:
                other = max(0.0, (busy_after - busy_before) - (ours_after - ours_before))
                direct["other_cpu_share"] = round(other / ((os.cpu_count() or 1) * wall), 3)
            if direct:
                direct.pop("backend", None)
                for r in direct["runs"]:
                    r.pop("text", None)
                log(f"    direct: {direct['throughput_tok_s']:.1f} tok/s")
            results["direct"] = direct or {"error": err}

        log_dir = HERE / "results" / "logs" / stamp
        log_dir.mkdir(parents=True, exist_ok=True)
        for name in args.server_list:
            try:
                results["servers"][name] = bench_server(name, models, content, args, log_dir)
            except KeyboardInterrupt:
                raise
            except Exception as exc:  # noqa: BLE001 - report, never crash on one server
                results["servers"][name] = {
                    "title": SERVERS[name].title,
                    "status": "failed",
                    "cells": {},
                    "notes": [],
                    "error": f"{type(exc).__name__}: {exc}",
                }
        results["elapsed_s"] = round(time.perf_counter() - started, 1)
        results["targets"] = report.evaluate_targets(results)

        out_dir = HERE / "results"
        out_dir.mkdir(exist_ok=True)
        raw = out_dir / f"{stamp}.json"
        raw.write_text(json.dumps(results, indent=1))
        out = Path(args.out)
        svg = report.write_report(results, out, default_svg=args.label is None)
        log(f"wrote {out}, {svg} and {raw} in {results['elapsed_s']:.0f}s")
        for t in results["targets"]:
            log(
                f"  {'PASS' if t['passed'] else 'FAIL' if t['passed'] is False else 'n/a '}  {t['name']}: {t['detail']}"
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
