"""The report: targets with pass/fail, markdown tables, and a hand-written SVG bar chart.

docs/benchmarks.md holds one section per ``--label``; a run rewrites its own
section (between ``<!-- bench:begin LABEL -->`` markers) and keeps the others.
"""

from __future__ import annotations

import re
import statistics
from html import escape as _html_escape
from pathlib import Path

__all__ = ["evaluate_targets", "write_report"]


def escape(text: str) -> str:
    """Plain text made safe inside a markdown table cell."""
    return _html_escape(str(text), quote=False).replace("|", "\\|").replace("\n", " ")


def code(text: str) -> str:
    """Text as a markdown code span (no HTML escaping there: entities would show literally)."""
    return "`" + str(text).replace("`", "'").replace("|", "\\|").replace("\n", " ") + "`"


ORDER = ("mmserve", "mlx_lm", "mlx_vlm")
COLORS = {"mmserve": "#2f6fdf", "mlx_lm": "#e08a1e", "mlx_vlm": "#3a9a5b"}
HEADER = """# Benchmarks

Written by `python bench/run.py` (see `bench/README.md`); do not edit by hand: each
run rewrites its own section below and keeps the others.

How the numbers are made: each server runs alone on a free loopback port, is warmed
up with one text and one image request, and is then driven by N asyncio + httpx
clients speaking the OpenAI chat API with `stream: true`, `temperature: 0` and a
fixed `max_tokens`. The clients pull distinct requests from one shared list and
send the next as soon as the previous one ends. TTFT is the time to the first
chunk with non-empty content; completion tokens come from the `usage` chunk
(`stream_options.include_usage`). Throughput is completion tokens of successful
requests divided by the wall clock of the whole run. Images are 448x448 random
PNG data URIs, a different one per request. The same seeds give the same prompts
and images on every server. "ratio vs best peer" is throughput divided by the best
throughput of mlx_lm.server / mlx_vlm.server in the same row group.
"""


# --- lookups ----------------------------------------------------------------------


def _summary(results: dict, server: str, workload: str, clients: int) -> dict | None:
    cell = results["servers"].get(server, {}).get("cells", {}).get(workload, {}).get(str(clients))
    return cell.get("summary") if isinstance(cell, dict) else None


def _throughput(results, server, workload, clients) -> float | None:
    s = _summary(results, server, workload, clients)
    return s["throughput_tok_s"] if s and s.get("ok") else None


def _best_peer(results: dict, workload: str, clients: int) -> tuple[str | None, float | None]:
    best = (None, None)
    for name in results["servers"]:
        if name == "mmserve":
            continue
        value = _throughput(results, name, workload, clients)
        if value is not None and (best[1] is None or value > best[1]):
            best = (name, value)
    return best


def _title(results: dict, name: str | None) -> str:
    return results["servers"].get(name, {}).get("title", name or "?")


# --- targets ----------------------------------------------------------------------


def _target(name: str, passed: bool | None, detail: str) -> dict:
    return {"name": name, "passed": passed, "detail": detail}


def _errors_note(s: dict | None) -> str:
    return f"; {s['errors']} errors" if s and s.get("errors") else ""


def _ratio_target(
    name: str, s: dict | None, baseline: float | None, minimum: float, *, peer: str = "", missing: str = "not measured"
) -> dict:
    """mmserve's throughput in the run ``s`` against ``baseline`` tok/s: met at ``minimum``x, without errors."""
    if not (s and s.get("throughput_tok_s") and baseline):
        return _target(name, None, missing)
    ratio = s["throughput_tok_s"] / baseline
    against = f" ({peer})" if peer else ""
    numbers = f"{s['throughput_tok_s']:.1f} vs {baseline:.1f} tok/s{against} = {ratio:.2f}x{_errors_note(s)}"
    return _target(name, ratio >= minimum and not s["errors"], numbers)


def evaluate_targets(results: dict) -> list[dict]:
    """Each target with passed True / False / None (not measured) and the numbers behind it."""
    out = []
    mm = results["servers"].get("mmserve")
    if mm is None or mm.get("status") != "ok":
        why = "mmserve not run" if mm is None else f"mmserve {mm.get('status')}: {mm.get('error', '')}"
        return [_target("all targets", None if mm is None else False, why)]

    # single stream vs direct mlx_lm: taking turns request by request where measured so, else
    # the text run at 1 client against the baseline measured before the servers started
    name = "single-stream text >= 0.95x direct mlx-lm"
    in_turn = mm.get("in_turn") or {}
    if in_turn.get("ratio"):
        when = f", {in_turn['when']}" if in_turn.get("when") else ""
        out.append(
            _target(
                name,
                in_turn["ratio"] >= 0.95,
                f"{in_turn['mmserve_tok_s']:.1f} vs {in_turn['direct_tok_s']:.1f} tok/s = {in_turn['ratio']:.2f}x, "
                f"{in_turn['pairs']} requests each in turn{when}",
            )
        )
    else:
        direct_error = in_turn.get("error") or (results.get("direct") or {}).get("error")
        out.append(
            _ratio_target(
                name,
                _summary(results, "mmserve", "text", 1),
                (results.get("direct") or {}).get("throughput_tok_s"),
                0.95,
                missing="not measured" + (f" ({direct_error})" if direct_error else ""),
            )
        )

    # text under load vs mlx_lm.server
    for clients in (8, 32):
        name = f"text @{clients} clients >= 1.2x mlx_lm.server throughput, TTFT p95 no worse"
        s, p = _summary(results, "mmserve", "text", clients), _summary(results, "mlx_lm", "text", clients)
        if s and p and s.get("throughput_tok_s") and p.get("throughput_tok_s"):
            ratio = s["throughput_tok_s"] / p["throughput_tok_s"]
            ttft_ok = (s["ttft_p95_ms"] or 0) <= (p["ttft_p95_ms"] or float("inf"))
            out.append(
                _target(
                    name,
                    ratio >= 1.2 and ttft_ok and not s["errors"],
                    f"{s['throughput_tok_s']:.1f} vs {p['throughput_tok_s']:.1f} tok/s = {ratio:.2f}x; "
                    f"TTFT p95 {s['ttft_p95_ms']:.0f} vs {p['ttft_p95_ms']:.0f} ms"
                    f"{'' if ttft_ok else ' (worse)'}{_errors_note(s)}",
                )
            )
        else:
            out.append(_target(name, None, "not measured"))

    # image vs mlx_vlm.server
    peer = _summary(results, "mlx_vlm", "image", 8)
    out.append(
        _ratio_target(
            "image @8 clients >= 1.5x mlx_vlm.server throughput",
            _summary(results, "mmserve", "image", 8),
            peer and peer.get("throughput_tok_s"),
            1.5,
        )
    )

    # mixed vs best peer that can serve it
    peer, value = _best_peer(results, "mixed", 16)
    out.append(
        _ratio_target(
            "mixed @16 clients >= 1.5x best peer that serves it",
            _summary(results, "mmserve", "mixed", 16),
            value,
            1.5,
            peer=_title(results, peer) if value else "",
        )
    )

    # repeated image
    name = "repeated image: TTFT of 2nd-4th question <= 0.3x the 1st"
    r = mm.get("cells", {}).get("repeated-image")
    if r and r.get("ratio") is not None:
        out.append(
            _target(
                name,
                r["ratio"] <= 0.3,
                f"{r['rest_mean_ms']:.0f} vs {r['first_ms']:.0f} ms = {r['ratio']:.2f}x over {len(r['per_image'])} images",
            )
        )
    else:
        out.append(_target(name, None, "not measured" + (f" ({r.get('error')})" if r and r.get("error") else "")))

    # greedy under load
    name = "greedy: text at 8 clients identical to solo answers"
    g = mm.get("greedy")
    if g and "identical" in g:
        out.append(_target(name, g["identical"] == g["prompts"], f"identical {g['identical']}/{g['prompts']}"))
    else:
        out.append(_target(name, None, "not measured" + (f" ({g.get('error')})" if g and g.get("error") else "")))
    return out


# --- markdown ---------------------------------------------------------------------


def _n(x, digits: int = 0) -> str:
    if x is None:
        return "–"
    return f"{x:,.{digits}f}"


def _mib(x) -> str:
    return "–" if not x else f"{x / 2**20:,.0f}"


def _cell_row(results, name, workload, clients, extra_cols=0) -> str:
    title = _title(results, name)
    server = results["servers"][name]
    if server.get("status") != "ok":
        return f"| {title} | {clients} | {server.get('status')} |" + " – |" * (8 + extra_cols)
    cell = server.get("cells", {}).get(workload, {}).get(str(clients))
    if cell is None:
        return f"| {title} | {clients} | n/a |" + " – |" * (8 + extra_cols)
    if "summary" not in cell:
        return f"| {title} | {clients} | failed: {escape(str(cell.get('error', '?'))[:80])} |" + " – |" * (
            8 + extra_cols
        )
    s = cell["summary"]
    _, best = _best_peer(results, workload, clients)
    ratio = f"{s['throughput_tok_s'] / best:.2f}x" if best and s.get("throughput_tok_s") else "n/a"
    sent = f"{s['requests']}" + (f" (+{s['not_sent']} not sent)" if s.get("not_sent") else "")
    row = (
        f"| {title} | {clients} | {sent} | {_n(s['throughput_tok_s'], 1)} | {_n(s['ttft_p50_ms'])} | {_n(s['ttft_p95_ms'])} "
        f"| {_n(s['latency_p50_ms'])} | {_n(s['latency_p95_ms'])} | {s['errors']} | {ratio} | {_mib(cell.get('rss_peak_bytes'))} |"
    )
    if extra_cols:
        by = cell.get("by_kind", {})
        row += "".join(f" {_n((by.get(k) or {}).get('ttft_p95_ms'))} |" for k in ("text", "image"))
    return row


def _workload_table(results, workload: str, clients_list: list[int]) -> list[str]:
    mixed = workload == "mixed"
    head = (
        "| server | clients | requests | tok/s | TTFT p50 ms | TTFT p95 ms | latency p50 ms | latency p95 ms "
        "| errors | ratio vs best peer | peak RSS MiB |"
    )
    rule = "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
    if mixed:
        head += " text TTFT p95 ms | image TTFT p95 ms |"
        rule += "---:|---:|"
    lines = [head, rule]
    for clients in clients_list:
        for name in _servers(results):
            lines.append(_cell_row(results, name, workload, clients, extra_cols=2 if mixed else 0))
    return lines


def _servers(results) -> list[str]:
    return [n for n in ORDER if n in results["servers"]] + [n for n in results["servers"] if n not in ORDER]


def _direct_table(results) -> list[str]:
    direct = results.get("direct") or {}
    if not direct:
        return []
    lines = ["| | tok/s | TTFT p50 ms | ratio vs direct |", "|---|---:|---:|---:|"]
    base = direct.get("throughput_tok_s")
    if base:
        ttfts = [r["ttft_s"] * 1000 for r in direct["runs"] if r.get("ttft_s") is not None]
        p50 = statistics.median(ttfts) if ttfts else None
        lines.append(f"| mlx_lm.stream_generate, in process | {_n(base, 1)} | {_n(p50)} | 1.00x |")
    else:
        lines.append(
            f"| mlx_lm.stream_generate, in process | failed: {escape(str(direct.get('error'))[:100])} | – | – |"
        )
    for name in _servers(results):
        s = _summary(results, name, "text", 1)
        if s and s.get("throughput_tok_s"):
            ratio = f"{s['throughput_tok_s'] / base:.2f}x" if base else "n/a"
            lines.append(
                f"| {_title(results, name)}, 1 client | {_n(s['throughput_tok_s'], 1)} | {_n(s['ttft_p50_ms'])} | {ratio} |"
            )
    in_turn = results["servers"].get("mmserve", {}).get("in_turn") or {}
    if in_turn.get("ratio"):
        n = in_turn["pairs"]
        when = f", {in_turn['when']}" if in_turn.get("when") else ""
        lines += [
            f"| mlx_lm.stream_generate, in turn with mmserve ({n} requests{when}) | {_n(in_turn['direct_tok_s'], 1)} | – | 1.00x |",
            f"| {_title(results, 'mmserve')}, in turn ({n} requests; {in_turn['same_text']}/{n} answers the same as "
            f"mlx_lm's) | {_n(in_turn['mmserve_tok_s'], 1)} | – | {in_turn['ratio']:.2f}x |",
        ]
    return lines


def _repeated_table(results) -> list[str]:
    lines = [
        "| server | images | TTFT 1st ms | TTFT 2nd–4th mean ms | ratio | errors |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    any_row = False
    for name in _servers(results):
        r = results["servers"][name].get("cells", {}).get("repeated-image")
        if r is None:
            continue
        any_row = True
        if "summary" not in r:
            lines.append(f"| {_title(results, name)} | failed: {escape(str(r.get('error'))[:80])} | – | – | – | – |")
            continue
        lines.append(
            f"| {_title(results, name)} | {len(r.get('per_image', []))} | {_n(r.get('first_ms'))} | "
            f"{_n(r.get('rest_mean_ms'))} | {_n(r.get('ratio'), 2)} | {r['summary']['errors']} |"
        )
    return lines if any_row else []


def _greedy_table(results) -> list[str]:
    lines = ["| server | solo vs 8 clients | first mismatch |", "|---|---:|---|"]
    any_row = False
    for name in _servers(results):
        g = results["servers"][name].get("greedy")
        if not g:
            continue
        any_row = True
        if "identical" not in g:
            lines.append(f"| {_title(results, name)} | failed | {escape(str(g.get('error'))[:100])} |")
            continue
        first = g["mismatches"][0] if g["mismatches"] else None
        why = f"{code(first['key'])}: {escape(str(first['why'])[:100])}" if first else "–"
        lines.append(f"| {_title(results, name)} | identical {g['identical']}/{g['prompts']} | {why} |")
    return lines if any_row else []


def _cpu_table(results) -> list[str]:
    lines = ["| server | run | wall s | CPU s by process (user + system) |", "|---|---|---:|---|"]
    any_row = False
    for name in _servers(results):
        for workload, cells in results["servers"][name].get("cells", {}).items():
            pairs = [("", cells)] if workload == "repeated-image" else list(cells.items())
            for clients, cell in pairs:
                if not isinstance(cell, dict) or not cell.get("cpu_s"):
                    continue
                any_row = True
                cpu = ", ".join(
                    f"{role} {sec:.1f}" for role, sec in sorted(cell["cpu_s"].items(), key=lambda kv: -kv[1])
                )
                where = workload + (f" @{clients}" if clients else "")
                lines.append(f"| {_title(results, name)} | {where} | {cell['wall_s']:.1f} | {cpu} |")
    return lines if any_row else []


def _contended(results) -> list[str]:
    """Runs during which other processes took more than 10% of the machine's CPU."""
    cores = results["machine"].get("cores") or 1
    busy = []
    for name in _servers(results):
        for workload, cells in results["servers"][name].get("cells", {}).items():
            pairs = [("", cells)] if workload == "repeated-image" else list(cells.items())
            for clients, cell in pairs:
                other = (cell.get("cpu_s") or {}).get("other processes") if isinstance(cell, dict) else None
                if other and cell.get("wall_s") and other > 0.1 * cores * cell["wall_s"]:
                    share = other / (cores * cell["wall_s"])
                    busy.append(f"{_title(results, name)} {workload}{'@' + clients if clients else ''} {share:.0%}")
    share = (results.get("direct") or {}).get("other_cpu_share")
    if share and share > 0.1:
        busy.insert(0, f"direct mlx_lm baseline {share:.0%}")
    return busy


def _problems(results) -> list[str]:
    lines = []
    busy = _contended(results)
    if busy:
        lines.append(
            "- other processes on the machine used a noticeable share of its CPU during: "
            + ", ".join(busy)
            + " (numbers there are noisy)"
        )
    direct = results.get("direct") or {}
    if direct.get("error"):
        lines.append(f"- direct mlx_lm baseline failed: {code(direct['error'][:300])}")
    for name in _servers(results):
        server = results["servers"][name]
        title = server.get("title", name)
        if server.get("status") != "ok":
            lines.append(f"- **{title}**: {server.get('status')}: {escape(str(server.get('error', ''))[:300])}")
            if server.get("log_tail"):
                tail = server["log_tail"].strip().splitlines()[-6:]
                lines.append("  ```\n" + "\n".join("  " + t[:200] for t in tail) + "\n  ```")
            continue
        items = []
        for workload, cells in server.get("cells", {}).items():
            cell_list = [("", cells)] if workload == "repeated-image" else list(cells.items())
            for clients, cell in cell_list:
                where = f"{workload}" + (f"@{clients}" if clients else "")
                if not isinstance(cell, dict):
                    continue
                s = cell.get("summary") or {}
                if s.get("errors"):
                    items.append(f"{where}: {s['errors']} errors, e.g. {code(s['error_samples'][0][:200])}")
                if s.get("retries"):
                    items.append(
                        f"{where}: {s['retries']} connection failures before any response, retried as the "
                        f"openai SDK would, e.g. {code((s.get('retry_samples') or ['?'])[0])}"
                    )
                if s.get("not_sent"):
                    items.append(f"{where}: {s['not_sent']} requests not sent (time limit)")
                for a in cell.get("usage_anomalies") or ():
                    items.append(f"{where}: {a}")
        items += [escape(n) for n in server.get("notes", [])]
        admin = server.get("admin_status") or {}
        workers = [w for w in admin.get("workers", []) if isinstance(w, dict) and w.get("memory")]
        if workers:
            items.append(
                "workers after the run, from `/admin/status` (MiB): "
                + "; ".join(
                    f"{w.get('engine')} active {_mib(w['memory'].get('active_bytes'))}, peak {_mib(w['memory'].get('peak_bytes'))}, "
                    f"cache {_mib(w['memory'].get('cache_bytes'))}, running {w.get('running')}, restarts {w.get('restarts')}"
                    for w in workers
                )
            )
        for key, when in (("log_lines", "during the run"), ("shutdown_log_lines", "at shutdown (SIGTERM)")):
            logs = server.get(key) or {}
            if logs.get("count"):
                items.append(
                    f"{logs['count']} log lines {when} at warning level or above "
                    f"({logs.get('tracebacks', 0)} tracebacks), first: "
                    + "; ".join(code(line[:160]) for line in logs.get("first", [])[:3])
                    + (f" (full log: {code(server['log_file'])})" if server.get("log_file") else "")
                )
        head = f"- **{title}**: ready in {server.get('startup_s')} s, whole run {server.get('elapsed_s')} s"
        lines.append(head + (":" if items else "; no errors, no retries, usage in every response."))
        lines += [f"  - {i}" for i in items]
    return lines


def _machine_line(m: dict) -> str:
    parts = [m.get("cpu", "?"), f"{m.get('cores')} cores", f"{m.get('ram_gib', '?')} GiB RAM"]
    if m.get("gpus"):
        parts.append("GPU: " + ", ".join(m["gpus"]))
    parts.append(f"mlx {m.get('mlx')} (backend {m.get('backend')}, device {m.get('device')})")
    parts.append(f"mlx-lm {m.get('mlx-lm')}, mlx-vlm {m.get('mlx-vlm')}, Python {m.get('python')}")
    parts.append(m.get("platform", ""))
    return "; ".join(p for p in parts if p)


def _model_line(kind: str, m: dict) -> str:
    shape = ", ".join(f"{k} {m[k]}" for k in ("hidden_size", "num_hidden_layers", "vocab_size") if m.get(k))
    return f"{kind}: {code(m['path'])} ({m.get('model_type')}; {shape}; {m.get('size_mib')} MiB of weights)"


def section(results: dict, svg_name: str) -> str:
    st = results["settings"]
    out = [f"## {results['label']}", ""]
    minutes, seconds = divmod(int(results["elapsed_s"]), 60)
    out.append(
        f"Run {results['timestamp']}, took {minutes} min {seconds} s{' (quick smoke run)' if st['quick'] else ''}."
    )
    out.append("")
    out.append(f"- **Machine:** {_machine_line(results['machine'])}")
    out.append(
        f"- **Models:** {results['model_source']}; "
        + "; ".join(_model_line(k, m) for k, m in results["models"].items())
    )
    out.append(f"- **Command:** {code(results['command'])}")
    per_run = ", ".join(f"{w} max({st['requests_per_client'][w]} x clients, {st['floor'][w]})" for w in st["floor"])
    out.append(
        f"- **Settings:** max_tokens {st['max_tokens']}; requests per run: {per_run}; repeated image: {st['images']} images; "
        f"time limit {st['time_limit_s']:.0f} s per run; raw data `bench/results/{results['timestamp']}.json`"
    )
    out += ["", "### Targets", "", "| target | result | numbers |", "|---|---|---|"]
    for t in results["targets"]:
        verdict = "**pass**" if t["passed"] else "**FAIL**" if t["passed"] is False else "n/a"
        out.append(f"| {t['name']} | {verdict} | {escape(t['detail'])} |")
    notes = []
    if st["quick"]:
        notes.append("This is a quick smoke run: a handful of requests per run, so the numbers are indicative only.")
    contended = _contended(results)
    if contended:
        notes.append(
            f"Other processes on the machine took more than 10% of its CPU during {len(contended)} runs "
            "(see *Problems observed*); comparisons involving those runs are unreliable."
        )
    out += [""] + [line for n in notes for line in (f"> **Note:** {n}", "")]
    out += [f"![completion tokens per second by workload, server and clients]({svg_name})", ""]
    names = {
        "text": "Text (distinct prompts)",
        "image": "Image (448x448, a different image per request)",
        "mixed": "Mixed (alternating text and image requests)",
    }
    for workload in ("text", "image", "mixed"):
        if workload in st["workloads"]:
            out += [f"### {names[workload]}", ""] + _workload_table(results, workload, st["clients"][workload]) + [""]
    if "text" in st["workloads"]:
        lines = _direct_table(results)
        if lines:
            out += (
                [
                    "### Single stream vs mlx_lm in process (serving overhead)",
                    "",
                    (
                        "Same model, same prompts (the text run at 1 client), greedy, same max_tokens; tok/s is completion "
                        "tokens over the summed request time. The baseline runs before the servers start; the rows "
                        "*in turn* alternate one request of each (other prompts), with both processes up, so that "
                        "drift in the machine's speed during the run weighs on both alike. The target uses those "
                        "rows when they are there."
                    ),
                    "",
                ]
                + lines
                + [""]
            )
        lines = _greedy_table(results)
        if lines:
            out += (
                [
                    "### Greedy cross-talk under load",
                    "",
                    (
                        f"{st['check_prompts']} prompts answered one at a time, then the same prompts from 8 concurrent "
                        "clients; the texts must be equal."
                    ),
                    "",
                ]
                + lines
                + [""]
            )
    lines = _repeated_table(results)
    if lines:
        out += ["### Repeated image (one client, 4 questions per image in turn)", ""] + lines + [""]
    lines = _cpu_table(results)
    if lines:
        out += (
            [
                "### Where the CPU time went",
                "",
                (
                    f"CPU seconds per run of each process (the machine has {results['machine'].get('cores')} cores; "
                    "the load generator runs on the same machine)."
                ),
                "",
            ]
            + lines
            + [""]
        )
    out += ["### Problems observed", ""] + (_problems(results) or ["- none"]) + [""]
    return "\n".join(out)


def _slug(label: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", label.lower()).strip("-") or "run"


def write_report(results: dict, out: Path, default_svg: bool = True) -> Path:
    """(Re)write this run's section of ``out`` and its SVG; return the SVG path."""
    slug = _slug(results["label"])
    svg_path = out.with_name(f"{out.stem}-throughput.svg" if default_svg else f"{out.stem}-throughput-{slug}.svg")
    out.parent.mkdir(parents=True, exist_ok=True)
    svg_path.write_text(svg(results))
    begin, end = f"<!-- bench:begin {slug} -->", f"<!-- bench:end {slug} -->"
    body = f"{begin}\n{section(results, svg_path.name)}\n{end}\n"
    old = out.read_text() if out.exists() else ""
    kept = []
    for match in re.finditer(r"(<!-- bench:begin (\S+) -->\n.*?<!-- bench:end \2 -->\n)", old, flags=re.DOTALL):
        if match.group(2) != slug:
            kept.append(match.group(1))
    out.write_text(HEADER + "\n" + body + "".join("\n" + k for k in kept))
    return svg_path


# --- SVG ----------------------------------------------------------------------------


def _nice_max(value: float) -> float:
    if value <= 0:
        return 1.0
    magnitude = 10 ** len(str(int(value))) / 10
    for step in (1, 1.2, 1.6, 2, 2.4, 3, 4, 5, 6, 8, 10):  # each divides into 4 round ticks
        if step * magnitude >= value:
            return step * magnitude
    return value


def svg(results: dict) -> str:
    """Grouped bar chart, one panel per workload (own y scale): groups = clients, bars = servers."""
    st = results["settings"]
    workloads = [w for w in ("text", "image", "mixed") if w in st["workloads"]]
    servers = _servers(results)
    width, panel_h, top, left, right = 760, 230, 56, 70, 20
    height = top + panel_h * len(workloads) + 20
    parts = [
        (
            f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" viewBox="0 0 {width} {height}" '
            'font-family="Helvetica, Arial, sans-serif" font-size="12">'
        ),
        f'<rect width="{width}" height="{height}" fill="white"/>',
        (
            f'<text x="{left}" y="22" font-size="15" font-weight="bold">Completion tokens/s (higher is better): '
            f"{_html_escape(results['label'])}</text>"
        ),
    ]
    x = left
    for name in servers:
        parts.append(f'<rect x="{x}" y="32" width="12" height="12" fill="{COLORS.get(name, "#888")}"/>')
        parts.append(f'<text x="{x + 16}" y="42">{_html_escape(_title(results, name))}</text>')
        x += 30 + 8 * len(_title(results, name))
    for i, workload in enumerate(workloads):
        y0 = top + i * panel_h
        plot_top, plot_bottom = y0 + 24, y0 + panel_h - 34
        clients_list = st["clients"][workload]
        values = {(n, c): _throughput(results, n, workload, c) for n in servers for c in clients_list}
        vmax = _nice_max(max([v for v in values.values() if v] or [1.0]) * 1.08)
        parts.append(f'<text x="{left}" y="{y0 + 14}" font-weight="bold">{workload}</text>')
        for k in range(5):
            value = vmax * k / 4
            y = plot_bottom - (plot_bottom - plot_top) * k / 4
            parts.append(f'<line x1="{left}" x2="{width - right}" y1="{y:.1f}" y2="{y:.1f}" stroke="#ddd"/>')
            parts.append(f'<text x="{left - 6}" y="{y + 4:.1f}" text-anchor="end" fill="#555">{value:,.0f}</text>')
        group_w = (width - left - right) / max(len(clients_list), 1)
        bar_w = min(48.0, group_w * 0.8 / max(len(servers), 1))
        for g, clients in enumerate(clients_list):
            gx = left + g * group_w + (group_w - bar_w * len(servers)) / 2
            parts.append(
                f'<text x="{left + (g + 0.5) * group_w:.1f}" y="{plot_bottom + 28}" text-anchor="middle">'
                f"{clients} client{'s' if clients != 1 else ''}</text>"
            )
            for b, name in enumerate(servers):
                bx = gx + b * bar_w
                value = values[(name, clients)]
                if value is None:
                    parts.append(
                        f'<text x="{bx + bar_w / 2:.1f}" y="{plot_bottom - 4}" text-anchor="middle" '
                        f'fill="#999" font-size="10">n/a</text>'
                    )
                    continue
                h = (plot_bottom - plot_top) * value / vmax
                parts.append(
                    f'<rect x="{bx + 1:.1f}" y="{plot_bottom - h:.1f}" width="{bar_w - 2:.1f}" height="{h:.1f}" '
                    f'fill="{COLORS.get(name, "#888")}"><title>{_html_escape(_title(results, name))}, {workload}, '
                    f"{clients} clients: {value:,.1f} tok/s</title></rect>"
                )
                parts.append(
                    f'<text x="{bx + bar_w / 2:.1f}" y="{plot_bottom - h - 3:.1f}" text-anchor="middle" '
                    f'font-size="10">{value:,.0f}</text>'
                )
        parts.append(f'<line x1="{left}" x2="{width - right}" y1="{plot_bottom}" y2="{plot_bottom}" stroke="#333"/>')
    parts.append("</svg>")
    return "\n".join(parts) + "\n"
