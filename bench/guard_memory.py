"""Predicted vs measured peak memory of the vision engine, with and without the guard.

Runs the vision engine in this process (as a worker does), calibrates it, then for
each adversarial image plans the request with ``guards`` and measures mlx's peak
memory while the engine prefills the image and decodes a few tokens. With the
guard the image is resized to the plan; without it the model's own processor size
is used (cases predicted above the safety limit are not run: on a Mac they would
kill the process, on CUDA they could wedge a shared card).

    python bench/guard_memory.py --models DIR --budget 600MB --label cpu-tiny
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

CASES = {
    "448 square": (448, 448),
    "1344 square": (1344, 1344),
    "1792 square": (1792, 1792),
    "scanned page 2550x3300": (2550, 3300),
    "panorama 4000x400": (4000, 400),
    "strip 300x6000": (300, 6000),
}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", required=True, help="directory with vision/ (from mmserve synth)")
    parser.add_argument("--budget", default="600MB", help="memory budget for the guard (600MB, 24GB, 0.5)")
    parser.add_argument("--max-image-side", type=int, default=1792, help="the guard's starting side")
    parser.add_argument(
        "--calibrate-side", type=int, default=0, help="largest side to calibrate at (default: the max image side, as served)"
    )
    parser.add_argument(
        "--safety-limit", default=None, help="largest predicted peak to run unguarded (default 2x budget)"
    )
    parser.add_argument("--label", default=platform.node())
    parser.add_argument("--out", default=None)
    args = parser.parse_args(argv)

    import mlx.core as mx
    from PIL import Image

    import guards
    from mmserve.engines import messages
    from mmserve.engines.common import backend as current_backend
    from mmserve.engines.vision import VisionEngine

    backend = current_backend()
    info = mx.device_info()
    total = info.get("total_memory") or info.get("memory_size") or guards.read_host_memory().total_bytes
    budget = guards.parse_budget(args.budget, total)
    safety = guards.parse_budget(args.safety_limit, total) if args.safety_limit else 2 * budget
    mx.set_memory_limit(min(safety, total // 2) if backend == "cuda" else safety)

    started = time.monotonic()
    engine = VisionEngine(str(Path(args.models) / "vision"), max_batch=1)
    engine.memory_limit = budget
    load_s = time.monotonic() - started
    check = engine.check_geometry(args.max_image_side)
    print(json.dumps({"geometry_check": check}), flush=True)
    if engine.geometry is None:
        raise SystemExit(f"no trusted image geometry for this model: {check.get('reason')}")
    spec = engine.geometry
    started = time.monotonic()
    calibration = guards.Calibration.fit(
        engine.calibrate(args.calibrate_side or args.max_image_side, time_budget_s=120)
    )
    calibrate_s = time.monotonic() - started
    largest = spec.layout(*spec.snap(args.max_image_side, args.max_image_side)).patches
    margin = calibration.extrapolation_margin(largest)
    print(
        json.dumps({"calibration": calibration.as_dict(), "seconds": round(calibrate_s, 1), "margin": margin}),
        flush=True,
    )
    cost = calibration.safe_cost(up_to_patches=largest)
    model = guards.ModelMemory(engine.weights_bytes, engine.kv_bytes_per_token, engine.context_length, cost)
    chat = [{"role": "user", "content": [{"type": "image"}, {"type": "text", "text": "Transcribe this page."}]}]
    text_tokens = engine.count(chat, 1)

    def measure(width: int, height: int) -> int:
        pixels = np.random.default_rng(0).integers(0, 256, size=(height, width, 3), dtype=np.uint8)
        image = messages.ImageData(width, height, Image.fromarray(pixels).tobytes(), f"{width}x{height}")
        engine.features.clear()  # measure the encoder every time
        mx.clear_cache()
        mx.reset_peak_memory()
        request = messages.Generate(
            id="m", messages=chat, images=[image], max_tokens=8, sampling=messages.Sampling(temperature=0)
        )
        uid = engine.insert(engine.prepare(request)).uid
        while not any(u == uid and finish for u, _, finish in engine.step()):
            pass
        peak = mx.get_peak_memory()
        mx.clear_cache()
        return peak

    rows = []
    for name, (width, height) in CASES.items():
        for guarded in (True, False):
            try:
                plan = guards.plan_request(
                    text_tokens=text_tokens,
                    images=[guards.ImageRequest(width, height)],
                    max_tokens=8,
                    model=model,
                    spec=spec,
                    budget_bytes=budget,
                    held_bytes=0,
                    max_image_side=args.max_image_side,
                    guard=guarded,
                )
            except guards.PlanError as exc:
                rows.append({"case": name, "guard": guarded, "original": [width, height], "refused": str(exc)})
                print(json.dumps(rows[-1]), flush=True)
                continue
            planned = plan.images[0]
            row = {
                "case": name,
                "guard": guarded,
                "original": list(planned.original),
                "resized": list(planned.resized),
                "tokens": planned.tokens,
                "predicted_peak_bytes": plan.planned_peak_bytes,
            }
            # On a shared accelerator never trust one estimate alone for an unguarded run: the
            # conservative default (Qwen2.5-VL-3B-shaped) must agree. On CPU the calibration decides.
            conservative = model.weights_bytes + guards.DEFAULT_VISION_COST.bytes_for(planned.patches)
            if backend == "cpu":
                conservative = 0
            if max(plan.planned_peak_bytes, conservative) > safety:
                row["measured_peak_bytes"] = None
                row["note"] = "not run: predicted above the safety limit"
                row["conservative_peak_bytes"] = conservative
            else:
                started = time.monotonic()
                row["measured_peak_bytes"] = measure(*planned.resized)
                row["seconds"] = round(time.monotonic() - started, 2)
                row["error"] = round(row["predicted_peak_bytes"] / row["measured_peak_bytes"] - 1, 3)
            rows.append(row)
            print(json.dumps(row), flush=True)

    result = {
        "label": args.label,
        "backend": backend,
        "device": info,
        "mlx": mx.__version__,
        "budget_bytes": budget,
        "safety_limit_bytes": safety,
        "weights_bytes": engine.weights_bytes,
        "load_s": round(load_s, 2),
        "calibrate_s": round(calibrate_s, 2),
        "calibration": calibration.as_dict(),
        "planned_up_to_patches": largest,
        "extrapolation_margin": margin,
        "rows": rows,
        "command": " ".join(["python", "bench/guard_memory.py", *(argv if argv is not None else sys.argv[1:])]),
    }
    out = Path(args.out or ROOT / "bench" / "results" / f"guard-{args.label}.json")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2))
    print(markdown(result))
    return 0


def gb(n: int | None) -> str:
    return "—" if n is None else f"{n / 1e9:.2f} GB"


def markdown(result: dict) -> str:
    lines = [
        f"### {result['label']} ({result['backend']}, mlx {result['mlx']}), budget {gb(result['budget_bytes'])}",
        "",
        f"Weights {gb(result['weights_bytes'])}; calibration took {result['calibrate_s']} s, "
        f"fit error ≤ {result['calibration']['max_rel_error']:.1%} on {len(result['calibration']['samples'])} sizes "
        f"up to {max(p for _, _, p, _ in result['calibration']['samples'])} patches; the plan reaches "
        f"{result['planned_up_to_patches']} (extrapolation margin ×{result['extrapolation_margin']:.3f}).",
        f"Command: `{result['command']}`",
        "",
        "| image | guard | sent to model | tokens | predicted peak | measured peak | predicted / measured − 1 |",
        "|---|---|---|---|---|---|---|",
    ]
    for row in result["rows"]:
        if "refused" in row:
            reason = row["refused"].split(".")[0]
            lines.append(f"| {row['case']} | {'on' if row['guard'] else 'off'} | refused: {reason} | | | | |")
            continue
        err = f"{row['error']:+.1%}" if "error" in row else row.get("note", "")
        lines.append(
            f"| {row['case']} | {'on' if row['guard'] else 'off'} | {row['resized'][0]}×{row['resized'][1]} | "
            f"{row['tokens']} | {gb(row['predicted_peak_bytes'])} | {gb(row['measured_peak_bytes'])} | {err} |"
        )
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
