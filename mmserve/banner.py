"""The start-up banner: what the server serves, from where, on what, within which budget.

``startup_report`` gathers it as plain data (the JSON log event); ``render_banner``
writes the same as the block a console shows. Both are made once every engine has a
worker loaded, so the budget is the one ``/admin/status`` reports from then on.
"""

from __future__ import annotations

import json
import platform
from pathlib import Path

__all__ = ["DEMO_MARKER", "human_bytes", "render_banner", "startup_report"]

# Written by ``mmserve synth`` into each model it makes: random weights, meaningless text.
DEMO_MARKER = ".mmserve-random-weights"


def human_bytes(n: int | None) -> str:
    """1536 -> '1.5 KiB'."""
    if n is None:
        return "?"
    value = float(n)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if value < 1024 or unit == "TiB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{n} B"


def _family(path: Path) -> str | None:
    try:
        return json.loads((path / "config.json").read_text()).get("model_type")
    except (OSError, ValueError, AttributeError):
        return None


def _device(ready) -> str:
    info = ready.device_info if ready is not None else {}
    name = info.get("device_name") or info.get("architecture") or platform.machine()
    return str(name)


def startup_report(version: str, url: str | None, settings, service, guard) -> dict:
    """The banner as data: version, URL, each model, the device, the tier, the budget."""
    sources = {"text": settings.text_model, "vision": settings.vision_model}
    models = []
    backend = device = None
    for kind, pool in service.engines.items():
        ready = pool.ready
        path = Path(pool.spec.path)
        if ready is not None and backend is None:
            backend, device = ready.backend, _device(ready)
        models.append(
            {
                "engine": kind,
                "name": pool.name,
                "source": sources.get(kind) or str(path),
                "path": str(path),
                "family": _family(path),
                "weights_bytes": ready.weights_bytes if ready is not None else None,
                "context_length": ready.context_length if ready is not None else None,
                "demo": (path / DEMO_MARKER).exists(),
                "replicas": pool.replicas,
            }
        )
    return {
        "version": version,
        "url": url,
        "models": models,
        "backend": backend,
        "device": device,
        "tier": guard.tier.name,
        "budget_bytes": guard.budget_bytes,
        "max_image_side": guard.max_image_side,
        "guard": not settings.no_guard,
    }


def render_banner(report: dict) -> str:
    """The console block for ``startup_report``'s data."""
    url = report["url"] or "(no socket: run by a test or another server)"
    lines = [f"mmserve {report['version']} serving on {url}   (API docs: {url}/docs)"]
    for model in report["models"]:
        demo = "   DEMO: random weights, meaningless text" if model["demo"] else ""
        origin = model["source"] if model["source"] == model["path"] else f"{model['source']} -> {model['path']}"
        lines.append(
            f"  {model['engine']:<7}{model['name']}  [{model['family'] or 'unknown family'}, "
            f"weights {human_bytes(model['weights_bytes'])}, context {model['context_length']}, "
            f"replicas {model['replicas']}]{demo}"
        )
        lines.append(f"  {'':<7}from {origin}")
    guard = "on" if report["guard"] else "OFF (--no-guard: nothing is resized or clamped)"
    lines.append(f"  device {report['backend']} ({report['device']}), RAM tier {report['tier']}")
    lines.append(
        f"  guard  {guard}; budget {human_bytes(report['budget_bytes'])} ({report['budget_bytes']} bytes), "
        f"images start at {report['max_image_side']} px"
    )
    return "\n".join(lines)
