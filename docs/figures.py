"""Draw the figures of docs/ as SVG from text kept in this file and from docs/data/.

    python docs/figures.py        # writes docs/architecture.svg and docs/guard-predicted-vs-measured.svg

Plain Python, no plotting library: the pictures are boxes, arrows, dots and lines,
and the SVG stays small and diffable. Run it again after changing the architecture
below or adding a docs/data/guard-*.json run, and commit the SVGs.
"""

from __future__ import annotations

import json
import math
from html import escape
from pathlib import Path

DOCS = Path(__file__).resolve().parent
FONT = "font-family='-apple-system, Segoe UI, Helvetica, Arial, sans-serif'"

# --- the architecture, as text ------------------------------------------------
# Rows of boxes from top to bottom: (id, title, detail lines, fill). A group frames rows.

ROWS = [
    [("client", "client", ["openai SDK, curl,", "mmserve caption / ocr"], "#f4f4f4")],
    [("api", "api/", ["chat, models, health,", "admin, metrics, /docs"], "#e8f0fe")],
    [
        ("protocol", "protocol/", ["decode + validate;", "errors name the field"], "#e8f0fe"),
        ("normalize", "normalize.py", ["route: text | vision;", "messages for templates"], "#e8f0fe"),
        ("media", "media/", ["data:, http(s), files;", "SSRF-safe, decode"], "#e8f0fe"),
    ],
    [
        (
            "guard",
            "guard.py + guards/",
            ["plan: resize images, clamp", "max_tokens; admit | queue | refuse"],
            "#fff4d6",
        ),
        ("serving", "serving.py + streaming.py", ["order of work;", "engine events -> SSE"], "#e8f0fe"),
    ],
    [("supervisor", "engines/supervisor.py", ["an EnginePool per engine,", "an EngineClient per worker"], "#e8f0fe")],
    [
        ("text", "text worker(s)", ["mlx-lm BatchGenerator,", "prefix KV cache"], "#e6f4ea"),
        ("vision", "vision worker(s)", ["mlx-vlm, feature cache,", "encoder calibration"], "#e6f4ea"),
    ],
]
GROUPS = [
    ("HTTP process: Litestar + uvicorn, never imports mlx", 1, 4, "#5f6368"),
    ("worker processes: python -m mmserve.engines.worker, a copy of one model each", 5, 5, "#188038"),
]
EDGES = [
    ("client", "api", "HTTP, SSE"),
    ("api", "protocol", ""),
    ("protocol", "normalize", ""),
    ("normalize", "media", ""),
    ("media", "guard", "decoded images"),
    ("guard", "serving", "plan + reservation"),
    ("serving", "supervisor", ""),
    ("supervisor", "text", "socketpair, msgpack frames"),
    ("supervisor", "vision", ""),
]


def _box(x: float, y: float, w: float, h: float, title: str, lines: list[str], fill: str) -> str:
    parts = [f"<rect x='{x}' y='{y}' width='{w}' height='{h}' rx='8' fill='{fill}' stroke='#5f6368'/>"]
    parts.append(
        f"<text x='{x + w / 2}' y='{y + 22}' text-anchor='middle' font-weight='bold' font-size='14'>"
        f"{escape(title)}</text>"
    )
    for i, line in enumerate(lines):
        parts.append(
            f"<text x='{x + w / 2}' y='{y + 42 + 16 * i}' text-anchor='middle' font-size='12' fill='#3c4043'>"
            f"{escape(line)}</text>"
        )
    return "\n".join(parts)


def architecture_svg() -> str:
    width, box_w, box_h, row_gap, top = 900, 236, 80, 50, 20
    boxes: dict[str, tuple[float, float, float, float]] = {}
    body: list[str] = []
    row_y = []
    for r, row in enumerate(ROWS):
        y = top + r * (box_h + row_gap) + (30 if r >= 1 else 0) + (40 if r >= 5 else 0)
        row_y.append(y)
        gap = (width - len(row) * box_w) / (len(row) + 1)
        for c, (key, title, lines, fill) in enumerate(row):
            x = gap + c * (box_w + gap)
            boxes[key] = (x, y, box_w, box_h)
            body.append(_box(x, y, box_w, box_h, title, lines, fill))
    frames = []
    for label, first, last, color in GROUPS:
        y0, y1 = row_y[first] - 30, row_y[last] + box_h + 14
        frames.append(
            f"<rect x='20' y='{y0}' width='{width - 40}' height='{y1 - y0}' rx='12' fill='none' "
            f"stroke='{color}' stroke-dasharray='6 4'/>"
            f"<text x='34' y='{y0 + 18}' font-size='13' fill='{color}' font-style='italic'>{escape(label)}</text>"
        )
    arrows = []
    for source, target, label in EDGES:
        sx, sy, sw, sh = boxes[source]
        tx, ty, tw, th = boxes[target]
        if abs(sy - ty) < 1:  # same row: side to side
            x1, y1, x2, y2 = sx + sw, sy + sh / 2, tx, ty + th / 2
        else:
            x1, y1, x2, y2 = sx + sw / 2, sy + sh, tx + tw / 2, ty
        arrows.append(
            f"<line x1='{x1}' y1='{y1}' x2='{x2}' y2='{y2}' stroke='#3c4043' stroke-width='1.5' "
            "marker-end='url(#arrow)'/>"
        )
        if label:  # beside a vertical arrow, above a horizontal one; a white halo keeps it legible
            lx, ly, anchor = (
                ((x1 + x2) / 2, y1 - 8, "middle")
                if abs(y1 - y2) < 1
                else ((x1 + x2) / 2 + 8, (y1 + y2) / 2 + 14, "start")
            )
            arrows.append(
                f"<text x='{lx}' y='{ly}' text-anchor='{anchor}' font-size='12' fill='#1a73e8' paint-order='stroke' "
                f"stroke='white' stroke-width='4'>{escape(label)}</text>"
            )
    height = row_y[-1] + box_h + 40
    return (
        f"<svg xmlns='http://www.w3.org/2000/svg' width='{width}' height='{height}' viewBox='0 0 {width} {height}' "
        f"{FONT}>\n<title>mmserve architecture</title>\n"
        "<defs><marker id='arrow' viewBox='0 0 10 10' refX='10' refY='5' markerWidth='8' markerHeight='8' "
        "orient='auto-start-reverse'><path d='M 0 0 L 10 5 L 0 10 z' fill='#3c4043'/></marker></defs>\n"
        f"<rect width='100%' height='100%' fill='white'/>\n" + "\n".join(frames + body + arrows) + "\n</svg>\n"
    )


# --- predicted against measured memory ------------------------------------------

RUNS = [  # file in docs/data, legend, colour
    ("guard-cpu-tiny.json", "CPU, tiny synthesized Qwen2.5-VL", "#e37400"),
    ("guard-h100-qwen2.5-vl-3b.json", "H100, Qwen2.5-VL-3B, first calibration", "#9aa0a6"),
    ("guard-h100-qwen2.5-vl-3b-families.json", "H100, calibration stopping short", "#d93025"),
    ("guard-h100-qwen2.5-vl-3b-measured-top.json", "H100, largest fitting size measured (now)", "#1a73e8"),
]


def _points(path: Path) -> list[tuple[float, float, bool, str]]:
    rows = json.loads(path.read_text())["rows"]
    return [
        (row["measured_peak_bytes"], row["predicted_peak_bytes"], row["guard"], row["case"])
        for row in rows
        if row.get("measured_peak_bytes") and row.get("predicted_peak_bytes")
    ]


def _log_axis(value: float, low: float, high: float, start: float, length: float) -> float:
    return start + (math.log10(value) - low) / (high - low) * length


_BYTES = {7: "10 MB", 8: "100 MB", 9: "1 GB", 10: "10 GB", 11: "100 GB"}


def guard_plot_svg() -> str:
    """Left: predicted against measured peak (log-log, the diagonal is a perfect plan).
    Right: the same error as predicted / measured - 1, where ±10 % can be seen."""
    width, height, top, panel_h, panel_w = 1000, 560, 50, 330, 390
    lefts = (80, 570)
    low, high = 7.0, 11.0  # log10 bytes: 10 MB .. 100 GB
    err_low, err_high = -0.2, 0.2
    out = [
        f"<svg xmlns='http://www.w3.org/2000/svg' width='{width}' height='{height}' "
        f"viewBox='0 0 {width} {height}' {FONT}>",
        "<title>The memory guard's predicted peak against the measured peak</title>",
        "<rect width='100%' height='100%' fill='white'/>",
        f"<text x='{lefts[0]}' y='26' font-size='16' font-weight='bold'>The memory guard: predicted against "
        "measured peak memory, one dot per image request</text>",
    ]

    def x_of(value: float, panel: int) -> float:
        return _log_axis(value, low, high, lefts[panel], panel_w)

    def y_log(value: float) -> float:
        return top + panel_h - (math.log10(value) - low) / (high - low) * panel_h

    def y_err(error: float) -> float:
        return top + panel_h - (error - err_low) / (err_high - err_low) * panel_h

    for panel, left in enumerate(lefts):
        out.append(f"<rect x='{left}' y='{top}' width='{panel_w}' height='{panel_h}' fill='none' stroke='#5f6368'/>")
        for exponent in range(int(low), int(high) + 1):
            x = x_of(10.0**exponent, panel)
            out.append(f"<line x1='{x}' y1='{top}' x2='{x}' y2='{top + panel_h}' stroke='#e8eaed'/>")
            out.append(
                f"<text x='{x}' y='{top + panel_h + 18}' text-anchor='middle' font-size='12'>{_BYTES[exponent]}</text>"
            )
        out.append(
            f"<text x='{left + panel_w / 2}' y='{top + panel_h + 40}' text-anchor='middle' font-size='13'>"
            "measured peak (the worker's mlx peak)</text>"
        )
    # Left panel: log-log, with the diagonal.
    for exponent in range(int(low), int(high) + 1):
        y = y_log(10.0**exponent)
        out.append(f"<line x1='{lefts[0]}' y1='{y}' x2='{lefts[0] + panel_w}' y2='{y}' stroke='#e8eaed'/>")
        out.append(f"<text x='{lefts[0] - 8}' y='{y + 4}' text-anchor='end' font-size='12'>{_BYTES[exponent]}</text>")
    a, b = 10.0**low, 10.0**high
    out.append(
        f"<line x1='{x_of(a, 0)}' y1='{y_log(a)}' x2='{x_of(b, 0)}' y2='{y_log(b)}' stroke='#3c4043'/>"
        f"<text x='{x_of(2e7, 0)}' y='{y_log(1e8) - 4}' font-size='11' fill='#5f6368' "
        f"transform='rotate(-40 {x_of(2e7, 0)} {y_log(1e8) - 4})'>predicted = measured</text>"
        f"<text transform='translate(22 {top + panel_h / 2}) rotate(-90)' text-anchor='middle' font-size='13'>"
        "predicted peak (the guard's plan)</text>"
    )
    # Right panel: relative error, with the ±10 % band.
    right = lefts[1]
    for tick in (-0.2, -0.1, 0.0, 0.1, 0.2):
        y = y_err(tick)
        colour = "#3c4043" if tick == 0 else "#e8eaed"
        out.append(f"<line x1='{right}' y1='{y}' x2='{right + panel_w}' y2='{y}' stroke='{colour}'/>")
        out.append(f"<text x='{right - 8}' y='{y + 4}' text-anchor='end' font-size='12'>{tick:+.0%}</text>")
    out.append(
        f"<rect x='{right}' y='{y_err(0.1)}' width='{panel_w}' height='{y_err(-0.1) - y_err(0.1)}' "
        "fill='#1a73e8' fill-opacity='0.05'/>"
        f"<text x='{right + 6}' y='{y_err(0.18)}' font-size='11' fill='#5f6368'>above 0: the plan reserved "
        "more than was used</text>"
        f"<text x='{right + 6}' y='{y_err(-0.17)}' font-size='11' fill='#5f6368'>below 0: it reserved too "
        "little</text>"
        f"<text transform='translate({right - 46} {top + panel_h / 2}) rotate(-90)' text-anchor='middle' "
        "font-size='13'>predicted / measured − 1</text>"
    )
    for name, _, color in RUNS:
        for measured, predicted, guarded, case in _points(DOCS / "data" / name):
            error = predicted / measured - 1
            fill = color if guarded else "white"
            tip = (
                f"<title>{escape(case)}, guard {'on' if guarded else 'off'}: predicted {predicted / 1e9:.2f} GB, "
                f"measured {measured / 1e9:.2f} GB ({error:+.1%})</title>"
            )
            for cx, cy in ((x_of(measured, 0), y_log(predicted)), (x_of(measured, 1), y_err(error))):
                out.append(
                    f"<circle cx='{cx:.1f}' cy='{cy:.1f}' r='5' fill='{fill}' stroke='{color}' "
                    f"stroke-width='1.8'>{tip}</circle>"
                )
    legend_y = top + panel_h + 70
    for i, (_, label, color) in enumerate(RUNS):
        x, y = lefts[0] + (i % 2) * 420, legend_y + (i // 2) * 22
        out.append(f"<circle cx='{x + 6}' cy='{y}' r='5' fill='{color}' stroke='{color}'/>")
        out.append(f"<text x='{x + 18}' y='{y + 4}' font-size='12'>{escape(label)}</text>")
    out.append(
        f"<text x='{lefts[0]}' y='{legend_y + 52}' font-size='12' fill='#5f6368'>filled: guard on (the image "
        "sized by the plan); hollow: guard off (the image as sent). Data: docs/data/guard-*.json, drawn by "
        "docs/figures.py.</text>"
    )
    out.append("</svg>\n")
    return "\n".join(out)


def main() -> None:
    (DOCS / "architecture.svg").write_text(architecture_svg())
    (DOCS / "guard-predicted-vs-measured.svg").write_text(guard_plot_svg())
    print("wrote docs/architecture.svg and docs/guard-predicted-vs-measured.svg")


if __name__ == "__main__":
    main()
