"""Command line: ``mmserve serve`` and ``mmserve synth``."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

__all__ = ["main"]

DEMO_DIR = Path(os.environ.get("MMSERVE_DEMO_DIR", Path.home() / ".cache" / "mmserve" / "demo"))


def _serve_parser(sub) -> None:
    p = sub.add_parser("serve", help="run the OpenAI-compatible server")
    p.add_argument("--text-model", help="local directory or Hugging Face repo id of an mlx-lm model")
    p.add_argument("--vision-model", help="local directory or Hugging Face repo id of an mlx-vlm model")
    p.add_argument("--demo", action="store_true", help="serve tiny random-weight demo models for any model not given")
    p.add_argument("--config", help="TOML file with settings (same names as the flags, with underscores)")
    p.add_argument("--host")
    p.add_argument("--port", type=int)
    p.add_argument("--api-key", help="require 'Authorization: Bearer KEY' (also MMSERVE_API_KEY)")
    p.add_argument("--cors-origin", dest="cors_origins", action="append", help="allow this origin (repeatable)")
    p.add_argument("--no-download", action="store_true", default=None, help="never download models from the hub")
    p.add_argument("--memory-budget", help="memory the server may use: 600MB, 12GiB, or a fraction like 0.7")
    p.add_argument("--no-guard", action="store_true", default=None, help="measure only: do not resize or clamp")
    p.add_argument("--max-image-side", type=int, help="largest image side (default: from the RAM tier)")
    p.add_argument("--min-image-side", type=int, help="legibility floor when shrinking images for memory")
    p.add_argument("--max-images", type=int, help="images per request (default 8)")
    p.add_argument("--max-image-bytes", type=int)
    p.add_argument("--media-root", help="serve local image paths from inside this directory only")
    p.add_argument(
        "--allow-media-host",
        dest="allow_media_hosts",
        action="append",
        help="HOST or CIDR that image URLs may reach even if private (repeatable)",
    )
    p.add_argument("--no-remote-images", action="store_true", default=None, help="refuse http(s) image URLs")
    p.add_argument("--queue-size", type=int)
    p.add_argument("--max-batch-size", type=int)
    for kind in ("text", "vision"):
        p.add_argument(
            f"--{kind}-replicas",
            type=int,
            help=f"{kind} workers, each a copy of the model (default: one per core, up to 4, on CPU, else 1)",
        )
    p.add_argument("--request-timeout", dest="request_timeout_s", type=float)
    p.add_argument("--max-body-bytes", type=int)
    p.add_argument("--memory-wait", dest="memory_wait_s", type=float, help="seconds a request may queue for memory")
    p.add_argument("--default-max-tokens", type=int)
    p.add_argument("--max-image-pixels", type=int)
    p.add_argument("--fetch-timeout", dest="fetch_timeout_s", type=float)
    p.add_argument("--log-level")
    p.add_argument("--log-json", action="store_true", default=None)


def _synth_parser(sub) -> None:
    p = sub.add_parser("synth", help="write tiny random-weight text and vision models")
    p.add_argument("dir")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--profile", default="tiny", choices=["tiny", "qwen2.5-1.5b", "qwen2.5-vl-3b"])
    p.add_argument("--family", help="write one tiny checkpoint of this model family into DIR (see --list-families)")
    p.add_argument("--list-families", action="store_true", help="list the families --family takes, and exit")


def _demo_models() -> Path:
    if not ((DEMO_DIR / "text" / "config.json").exists() and (DEMO_DIR / "vision" / "config.json").exists()):
        from .synth import synthesize

        print(f"mmserve: writing tiny demo models (random weights) to {DEMO_DIR}", file=sys.stderr)
        synthesize(DEMO_DIR)
    return DEMO_DIR


def serve(args: argparse.Namespace) -> int:
    import uvicorn

    from .app import create_app
    from .config import SettingsError, load_settings
    from .logs import configure_logging

    overrides = {key: value for key, value in vars(args).items() if key not in ("command", "config", "demo")}
    for key in ("cors_origins", "allow_media_hosts"):
        if overrides.get(key):
            overrides[key] = tuple(overrides[key])
    try:
        settings = load_settings(args.config, overrides=overrides)
        if args.demo and not (settings.text_model and settings.vision_model):
            demo = _demo_models()
            settings = load_settings(
                args.config,
                overrides={
                    **overrides,
                    "text_model": settings.text_model or str(demo / "text"),
                    "vision_model": settings.vision_model or str(demo / "vision"),
                },
            )
    except SettingsError as exc:
        print(f"mmserve: {exc}", file=sys.stderr)
        return 2
    if not (settings.text_model or settings.vision_model):
        print("mmserve: give --text-model and/or --vision-model (or --demo for tiny demo models)", file=sys.stderr)
        return 2
    configure_logging(settings.log_level, settings.log_json)
    app = create_app(settings)
    config = uvicorn.Config(
        app, host=settings.host, port=settings.port, log_config=None, access_log=False, timeout_graceful_shutdown=30
    )
    server = uvicorn.Server(config)
    app.state.request_shutdown = lambda: setattr(server, "should_exit", True)
    try:
        server.run()
    except KeyboardInterrupt:  # uvicorn has already drained and stopped; this is Ctrl-C coming back
        return 130
    if app.state.failed:
        print(f"mmserve: {app.state.failed}", file=sys.stderr)
        return 1
    return 0


def synth(args: argparse.Namespace) -> int:
    from .synth import synthesize

    if args.list_families or args.family:
        from .synth.families import FAMILIES

        if args.list_families:
            for family in FAMILIES.values():
                print(f"{family.name:18} {family.kind:6} {', '.join(family.examples)}")
            return 0
        if args.family not in FAMILIES:
            print(f"mmserve: no family {args.family!r}; one of: {', '.join(sorted(FAMILIES))}", file=sys.stderr)
            return 2
        directory = Path(args.dir)
        directory.mkdir(parents=True, exist_ok=True)
        if any(directory.iterdir()):
            print(f"mmserve: {directory} is not empty", file=sys.stderr)
            return 2
        FAMILIES[args.family].write(directory, args.seed)
        print(f"{args.family}: {directory}")
        return 0

    models = synthesize(args.dir, seed=args.seed, profile=args.profile)
    print(f"text:   {models.text}\nvision: {models.vision}")
    return 0


def main(argv: list[str] | None = None) -> int:
    from .clients import caption, ocr

    parser = argparse.ArgumentParser(prog="mmserve", description="OpenAI-compatible multimodal server for MLX")
    sub = parser.add_subparsers(dest="command", required=True)
    _serve_parser(sub)
    _synth_parser(sub)
    caption.add_arguments(sub.add_parser("caption", help="caption a folder of images through a server (resumable)"))
    ocr.add_arguments(sub.add_parser("ocr", help="transcribe document pages through a server (resumable)"))
    args = parser.parse_args(argv)
    return {"serve": serve, "synth": synth, "caption": caption.run, "ocr": ocr.run}[args.command](args)


if __name__ == "__main__":
    sys.exit(main())
