"""Pages per minute for one PDF through a running server: `mmserve ocr` against a naive client.

The naive client is what a first script does: render every page at 300 dpi with
pypdfium2 and send the pages one at a time, each as a 2550x3300 PNG, with
``detail`` left at auto. Every client gets a PDF of its own (same layout, a different
title), so the server's image and prefix caches never answer for an earlier run. `mmserve ocr` asks the server for its limits, renders at the
side the server will read and keeps the server's batches full. Each run writes
into a fresh folder, so nothing is resumed. Usage::

    python bench/ocr_pdf.py --base-url http://127.0.0.1:8000/v1 --pages 20 --max-tokens 64 \\
        --out docs/data/ocr-pdf-cpu-tiny.json [--side 512 --side 0]   # 0: the server's ceiling
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from mmserve.clients import ocr  # noqa: E402
from mmserve.clients.samples import sample_pages, write_pdf  # noqa: E402


def naive(pdf: Path, base_url: str, max_tokens: int) -> dict:
    """300 dpi PNGs, one request at a time, detail auto."""
    import pypdfium2
    from openai import OpenAI

    client = OpenAI(base_url=base_url, api_key="none", max_retries=0, timeout=3600)
    document = pypdfium2.PdfDocument(str(pdf))
    sent, read, render_s = [], [], 0.0
    started = time.monotonic()
    for index in range(len(document)):
        begun = time.monotonic()
        page = document[index]
        image = page.render(scale=300 / 72).to_pil()
        import io

        buffer = io.BytesIO()
        image.save(buffer, format="PNG")
        render_s += time.monotonic() - begun
        uri = "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode()
        reply = client.chat.completions.create(
            model="auto",
            max_tokens=max_tokens,
            temperature=0.0,
            messages=[
                {
                    "role": "user",
                    "content": [
                        {"type": "image_url", "image_url": {"url": uri}},
                        {"type": "text", "text": ocr.DEFAULT_PROMPT},
                    ],
                }
            ],
        )
        sent.append(list(image.size))
        read.append(reply.model_extra["mmserve"]["images"][0]["resized"])
    elapsed = time.monotonic() - started
    return _result("naive (300 dpi, one page at a time)", len(sent), elapsed, sent, read, render_s=round(render_s, 2))


def mmserve_ocr(pdf: Path, base_url: str, max_tokens: int, side: int | None) -> dict:
    with tempfile.TemporaryDirectory() as folder:
        out = Path(folder) / "run.jsonl"
        started = time.monotonic()
        summary = ocr.ocr(
            pdf, out=out, base_url=base_url, max_tokens=max_tokens, image_side=side or "max", progress=False
        )
        elapsed = time.monotonic() - started
        records = [json.loads(line) for line in out.read_text().splitlines()]
    assert summary.exit_code == 0, summary
    label = "mmserve ocr" + (f" --image-side {side}" if side else " --image-side max (the server's ceiling)")
    return _result(
        label,
        len(records),
        elapsed,
        [r["size"] for r in records],
        [r["resized"] for r in records],
        render_s=round(sum(r["render"]["ms"] for r in records) / 1000, 2),
    )


def _result(label: str, pages: int, elapsed: float, sent: list, read: list, **extra) -> dict:
    return {
        "client": label,
        "pages": pages,
        "seconds": round(elapsed, 1),
        "pages_per_minute": round(pages * 60 / elapsed, 2),
        "sent": _typical(sent),
        "read": _typical(read),
        **extra,
    }


def _typical(sizes: list) -> list:
    return [int(statistics.median(size[0] for size in sizes)), int(statistics.median(size[1] for size in sizes))]


SECTION = "documents"


def section(result: dict) -> str:
    """The Markdown table of one run, for docs/benchmarks.md."""
    server = result.get("server") or {}
    rows = [
        "| client | pages/min | seconds | page sent | page read | rendering |",
        "|---|---|---|---|---|---|",
    ]
    for run in result["runs"]:
        rows.append(
            f"| {run['client']} | {run['pages_per_minute']:.1f} | {run['seconds']:.1f} | "
            f"{run['sent'][0]}x{run['sent'][1]} | {run['read'][0]}x{run['read'][1]} | {run['render_s']:.1f} s |"
        )
    return (
        f"### {result['label']}: {result['runs'][0]['pages']} pages, max_tokens {result['max_tokens']}\n\n"
        f"Server: tier {server.get('tier')}, images start at {server.get('image_side')} px, ceiling "
        f"{server.get('max_image_side')} px, {server.get('replicas')} vision workers of batch "
        f"{server.get('max_batch_size')}.\n\n" + "\n".join(rows) + "\n"
    )


def write_section(report: Path, body: str) -> None:
    """Replace (or append) the ``documents`` section of ``report``; ``bench/run.py`` keeps it."""
    begin, end = f"<!-- bench:begin {SECTION} -->", f"<!-- bench:end {SECTION} -->"
    text = report.read_text()
    block = f"{begin}\n{body}{end}\n"
    if begin in text:
        text = text[: text.index(begin)] + block + text[text.index(end) + len(end) + 1 :]
    else:
        text = text.rstrip("\n") + "\n\n" + block
    report.write_text(text)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--base-url", default="http://127.0.0.1:8000/v1")
    parser.add_argument("--pages", type=int, default=20)
    parser.add_argument("--max-tokens", type=int, default=64)
    parser.add_argument("--side", type=int, action="append", help="mmserve ocr --image-side (0: the ceiling)")
    parser.add_argument("--label", default=platform.machine())
    parser.add_argument("--out")
    parser.add_argument("--wait-ready", type=float, default=0, help="wait up to this many seconds for /ready")
    args = parser.parse_args()
    root = args.base_url.rsplit("/v1", 1)[0]
    deadline = time.monotonic() + args.wait_ready
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{root}/ready", timeout=2).status_code == 200:
                break
        except httpx.HTTPError:
            pass
        time.sleep(1)
    models = httpx.get(f"{args.base_url}/models", timeout=10).json()["data"]
    limits = next((m["mmserve"] for m in models if "mmserve" in m), {})
    with tempfile.TemporaryDirectory() as folder:

        def document(run: int) -> Path:
            # Pages no earlier run sent: the server's image and prefix caches must not answer for them.
            pdf = Path(folder) / f"report-{run}.pdf"
            write_pdf(pdf, sample_pages(args.pages, title=f"Report {os.getpid()}-{time.time_ns()}-{run}"))
            return pdf

        runs = [naive(document(0), args.base_url, args.max_tokens)]
        print(json.dumps(runs[-1]), flush=True)
        for run, side in enumerate(args.side or [0], start=1):
            runs.append(mmserve_ocr(document(run), args.base_url, args.max_tokens, side or None))
            print(json.dumps(runs[-1]), flush=True)
    result = {"label": args.label, "max_tokens": args.max_tokens, "server": limits, "runs": runs}
    if args.out:
        Path(args.out).write_text(json.dumps(result, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
