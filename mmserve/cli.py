"""Command line: ``mmserve serve`` and ``mmserve synth``."""

from __future__ import annotations

import argparse
import os
import socket
import sys
import typing
from pathlib import Path

import msgspec

from . import __version__

__all__ = ["build_parser", "main", "setting_overrides"]

DEMO_DIR = Path(os.environ.get("MMSERVE_DEMO_DIR", Path.home() / ".cache" / "mmserve" / "demo"))


# Exit codes of `mmserve serve` (docs/operations.md, "Exit codes").
EXIT_OK = 0
EXIT_FAILED = 1  # a model could not be loaded, or the server failed while running
EXIT_USAGE = 2  # a bad flag, environment variable or config file
EXIT_NO_MODEL = 3  # a model could not be found: no such directory, or not in the cache and not downloadable
EXIT_CANNOT_LISTEN = 4  # the address is in use or cannot be bound
EXIT_INTERRUPTED = 130  # Ctrl-C

# Earlier spellings, still accepted but not shown in --help.
_ALIASES = {
    "cors_origins": "--cors-origin",
    "allow_media_hosts": "--allow-media-host",
    "memory_wait_s": "--memory-wait",
    "request_timeout_s": "--request-timeout",
    "fetch_timeout_s": "--fetch-timeout",
}


class _Parser(argparse.ArgumentParser):
    """A usage error is one line and a pointer to --help, not the whole usage block."""

    def error(self, message: str) -> typing.NoReturn:
        self.exit(EXIT_USAGE, f"{self.prog}: {message}; see '{self.prog} --help'\n")


class _HelpFormatter(argparse.HelpFormatter):
    """Shows a setting's default after its help (unless the help already says it)."""

    def _get_help_string(self, action: argparse.Action) -> str:
        default = getattr(action, "setting_default", argparse.SUPPRESS)
        if default is argparse.SUPPRESS or "(default" in (action.help or ""):
            return action.help or ""
        return f"{action.help} (default: {default})"


def _default_text(value) -> str:
    if value is None or value == ():
        return "none"
    if isinstance(value, bool):
        return "on" if value else "off"
    return str(value)


def _serve_parser(sub) -> None:
    from .config import GROUPS, OPTIONS, Settings, env_for, flag_for

    p = sub.add_parser(
        "serve",
        help="run the OpenAI-compatible server",
        formatter_class=_HelpFormatter,
        description="Serve mlx-lm and mlx-vlm models over an OpenAI-compatible API. Every setting has one name: "
        "the flag --max-image-side is max_image_side in the --config TOML file and MMSERVE_MAX_IMAGE_SIDE in the "
        "environment; flags override the environment, which overrides the file.",
        epilog="exit codes: 0 stopped, 1 a model could not be loaded, 2 bad flag/environment/config file, "
        "3 a model could not be found, 4 cannot listen on the address, 130 Ctrl-C",
    )
    p.add_argument("--version", action="version", version=f"mmserve {__version__}")
    p.add_argument("--config", metavar="FILE", help="TOML file of settings, keys as in this list with underscores")
    p.add_argument("--demo", action="store_true", help="serve tiny random-weight demo models for any model not given")
    defaults = Settings()
    groups = {name: p.add_argument_group(name) for name in GROUPS}
    for name, option in OPTIONS.items():
        default = getattr(defaults, name)
        kwargs: dict = {"dest": name, "help": option.help.replace("%", "%%"), "default": None}
        if name in ("calibrate", "log_json"):
            kwargs["action"] = argparse.BooleanOptionalAction
        elif isinstance(default, bool):
            kwargs["action"] = "store_true"
        elif isinstance(default, tuple):
            kwargs.update(action="append", metavar=option.metavar)
        else:
            field_type = {f.name: f.type for f in msgspec.structs.fields(Settings)}[name]
            kind = next((t for t in (int, float) if t in typing.get_args(field_type) or t is field_type), None)
            kwargs.update(type=kind or str, metavar=option.metavar)
        action = groups[option.group].add_argument(flag_for(name), **kwargs)
        action.setting_default = _default_text(default) if name != "log_json" else "when not on a terminal"
        action.help = f"{action.help} [{env_for(name)}]"
        if name in _ALIASES:
            alias = {k: v for k, v in kwargs.items() if k not in ("help",)}
            p.add_argument(_ALIASES[name], **alias, help=argparse.SUPPRESS)


def _synth_parser(sub) -> None:
    p = sub.add_parser("synth", help="write tiny random-weight text and vision models")
    p.add_argument("dir")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--profile", default="tiny", choices=["tiny", "qwen2.5-1.5b", "qwen2.5-vl-3b"])
    p.add_argument("--family", help="write one tiny checkpoint of this model family into DIR (see --list-families)")
    p.add_argument("--list-families", action="store_true", help="list the families --family takes, and exit")


def _demo_models() -> Path:
    from .banner import DEMO_MARKER

    if not ((DEMO_DIR / "text" / "config.json").exists() and (DEMO_DIR / "vision" / "config.json").exists()):
        import structlog

        from .synth import synthesize

        structlog.get_logger("mmserve").info("writing tiny demo models (random weights)", path=str(DEMO_DIR))
        synthesize(DEMO_DIR)
    for kind in ("text", "vision"):  # demo models written before the marker existed
        (DEMO_DIR / kind / DEMO_MARKER).touch()
    return DEMO_DIR


def _fail(message: str, hint: str | None, code: int) -> int:
    """A start-up failure: one line on stderr saying what, and what to do, and its exit code."""
    message = " ".join(message.split()).rstrip(".")
    print(f"mmserve: {message}" + (f"; {hint}" if hint else ""), file=sys.stderr)
    return code


def _bind(host: str, port: int) -> socket.socket:
    """The listening socket, bound before the app starts so that a taken port is a clear error.

    It names TCP as its protocol: asyncio turns Nagle's algorithm off (TCP_NODELAY) only on
    connections whose socket says so, and with Nagle on, a JSON response's body waited for
    the client's delayed ACK of its headers, 40 ms on every keep-alive request."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
    except BaseException:
        sock.close()
        raise
    return sock


def setting_overrides(args: argparse.Namespace) -> dict:
    """The settings given as flags to ``serve`` (None where a flag was not given)."""
    overrides = {key: value for key, value in vars(args).items() if key not in ("command", "config", "demo")}
    for key in ("cors_origins", "allow_media_hosts"):
        if overrides.get(key):
            overrides[key] = tuple(overrides[key])
    return overrides


def build_parser() -> argparse.ArgumentParser:
    from .clients import caption, ocr

    parser = _Parser(prog="mmserve", description="OpenAI-compatible multimodal server for MLX")
    parser.add_argument("--version", action="version", version=f"mmserve {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)
    _serve_parser(sub)
    _synth_parser(sub)
    caption.add_arguments(sub.add_parser("caption", help="caption a folder of images through a server (resumable)"))
    ocr.add_arguments(sub.add_parser("ocr", help="transcribe document pages through a server (resumable)"))
    return parser


def serve(args: argparse.Namespace) -> int:
    from .config import SettingsError, load_settings

    overrides = setting_overrides(args)
    try:
        settings = load_settings(args.config, overrides=overrides)
    except SettingsError as exc:
        return _fail(str(exc), "see 'mmserve serve --help'", EXIT_USAGE)
    debug = settings.log_level.lower() == "debug"
    try:
        return _serve(args, settings, overrides)
    except Exception as exc:
        if debug:
            raise
        return _fail(
            f"failed to start: {type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}",
            "run with --log-level debug for the traceback",
            EXIT_FAILED,
        )


def _serve(args: argparse.Namespace, settings, overrides: dict) -> int:
    import uvicorn

    from .app import create_app
    from .config import SettingsError, load_settings
    from .logs import configure_logging

    configure_logging(settings.log_level, settings.log_json)
    if args.demo and not (settings.text_model and settings.vision_model):
        demo = _demo_models()
        try:
            settings = load_settings(
                args.config,
                overrides={
                    **overrides,
                    "text_model": settings.text_model or str(demo / "text"),
                    "vision_model": settings.vision_model or str(demo / "vision"),
                },
            )
        except SettingsError as exc:
            return _fail(str(exc), "see 'mmserve serve --help'", EXIT_USAGE)
    if not (settings.text_model or settings.vision_model):
        return _fail(
            "no model to serve", "give --text-model and/or --vision-model (or --demo for tiny demo models)", EXIT_USAGE
        )
    try:
        sock = _bind(settings.host, settings.port)
    except OSError as exc:
        return _fail(
            f"cannot listen on {settings.host}:{settings.port}: {exc.strerror or exc}",
            "choose another --port or --host, or stop what is using it",
            EXIT_CANNOT_LISTEN,
        )
    port = sock.getsockname()[1]
    host = f"[{settings.host}]" if ":" in settings.host else settings.host
    app = create_app(settings)
    app.state.url = f"http://{host}:{port}"
    config = uvicorn.Config(
        app,
        host=settings.host,
        port=port,
        log_config=None,
        access_log=False,
        timeout_graceful_shutdown=30,
    )
    server = uvicorn.Server(config)
    app.state.request_shutdown = lambda: setattr(server, "should_exit", True)
    try:
        server.run(sockets=[sock])
    except KeyboardInterrupt:  # uvicorn has already drained and stopped; this is Ctrl-C coming back
        return EXIT_INTERRUPTED
    finally:
        sock.close()
    if app.state.failed:
        return _fail(app.state.failed, app.state.failed_hint, app.state.exit_code)
    return EXIT_OK


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

    args = build_parser().parse_args(argv)
    return {"serve": serve, "synth": synth, "caption": caption.run, "ocr": ocr.run}[args.command](args)


if __name__ == "__main__":
    sys.exit(main())
