"""Settings: one frozen msgspec Struct, layered defaults < TOML file < MMSERVE_* env < flags.

``load_settings`` is the only place that reads files or the environment; the app
factory takes a finished ``Settings`` and never looks at either.
"""

from __future__ import annotations

import difflib
import os
import re
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import msgspec

__all__ = [
    "ENV_PREFIX",
    "GROUPS",
    "OPTIONS",
    "Option",
    "Settings",
    "SettingsError",
    "env_for",
    "flag_for",
    "load_settings",
]

ENV_PREFIX = "MMSERVE_"


class SettingsError(ValueError):
    """A setting has a bad value or an unknown name; ``setting`` names it where known."""

    def __init__(self, message: str, *, setting: str | None = None) -> None:
        super().__init__(message)
        self.setting = setting


class Settings(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    # Models: a local directory or a Hugging Face repo id resolved through the local cache.
    text_model: str | None = None
    vision_model: str | None = None
    no_download: bool = False

    host: str = "127.0.0.1"
    port: int = 8000
    api_key: str | None = None
    cors_origins: tuple[str, ...] = ()
    max_body_bytes: int = 64 * 1024 * 1024

    # Memory guard.
    memory_budget: str | None = None  # "600MB", "12GiB" or a fraction of total memory like "0.7"
    no_guard: bool = False  # measurement only: no resize or clamp beyond what the model itself does
    max_image_side: int | None = None  # overrides the RAM tier's value
    min_image_side: int = 224  # legibility floor when shrinking for memory
    memory_wait_s: float = 30.0  # how long a request may wait in the queue for memory
    default_max_tokens: int = 1024
    image_cache_items: int = 64  # decoded and resized images kept by content hash
    image_cache_ttl_s: float = 600.0

    # Engines.
    queue_size: int = 64  # requests waiting per worker before 503
    max_batch_size: int = 32  # sequences a worker decodes together; the guard still reserves each one's KV
    # Workers per engine, each a copy of its model; 0: one per core (up to 4) on mlx's CPU backend, else 1.
    text_replicas: int = 0
    vision_replicas: int = 0
    request_timeout_s: float = 600.0
    calibrate: bool = True
    max_choices: int = 8  # the most choices (n) one request may ask for

    # Image intake.
    max_images: int = 8
    max_image_bytes: int = 20_000_000
    max_image_pixels: int = 100_000_000
    fetch_timeout_s: float = 10.0
    no_remote_images: bool = False
    allow_media_hosts: tuple[str, ...] = ()
    media_root: str | None = None

    log_level: str = "info"
    log_json: bool | None = None  # None: JSON when stderr is not a TTY

    def __post_init__(self) -> None:
        if self.port < 0 or self.port > 65535:
            raise SettingsError(f"port must be 0..65535, got {self.port}", setting="port")
        for name in (
            "max_body_bytes",
            "queue_size",
            "max_batch_size",
            "max_images",
            "default_max_tokens",
            "max_choices",
        ):
            if getattr(self, name) < 1:
                raise SettingsError(f"{name} must be at least 1", setting=name)
        for name in ("text_replicas", "vision_replicas"):
            if getattr(self, name) < 0:
                raise SettingsError(f"{name} must be 0 (automatic) or more", setting=name)
        if self.min_image_side < 28:
            raise SettingsError("min_image_side must be at least 28", setting="min_image_side")
        if self.memory_budget is not None:
            from guards.probe import parse_budget

            try:
                parse_budget(self.memory_budget, 1 << 40)  # the unit and form; the figure needs the machine
            except ValueError as exc:
                raise SettingsError(str(exc), setting="memory_budget") from None
        if self.log_level.lower() not in ("debug", "info", "warning", "error", "critical"):
            raise SettingsError(
                f"log_level must be debug, info, warning, error or critical, got {self.log_level!r}",
                setting="log_level",
            )


class Option(msgspec.Struct, frozen=True):
    """How a setting is offered on the command line: its group in ``--help`` and its help text."""

    group: str
    help: str
    metavar: str | None = None


GROUPS = ("models", "HTTP", "memory guard", "engines", "image intake", "logging")

# One entry per Settings field: the same name is the TOML key, MMSERVE_<NAME> and --<name-with-dashes>.
OPTIONS: dict[str, Option] = {
    "text_model": Option("models", "local directory or Hugging Face repo id of an mlx-lm model", "DIR|REPO"),
    "vision_model": Option("models", "local directory or Hugging Face repo id of an mlx-vlm model", "DIR|REPO"),
    "no_download": Option("models", "never download models from the hub (HF_HUB_OFFLINE=1 does the same)"),
    "host": Option("HTTP", "address to listen on", "ADDR"),
    "port": Option("HTTP", "port to listen on (0: any free port)", "N"),
    "api_key": Option("HTTP", "require 'Authorization: Bearer KEY' on every route but /health and /docs", "KEY"),
    "cors_origins": Option("HTTP", "allow this origin by CORS (repeatable)", "ORIGIN"),
    "max_body_bytes": Option("HTTP", "larger request bodies get 413", "BYTES"),
    "memory_budget": Option(
        "memory guard",
        "memory the server may use: 600MB, 12GiB, 70% or a fraction like 0.7 (default: from the tier)",
        "SIZE",
    ),
    "no_guard": Option("memory guard", "measure only: do not resize images or clamp max_tokens for memory"),
    "max_image_side": Option("memory guard", "largest image side the guard starts from (default: from the tier)", "PX"),
    "min_image_side": Option("memory guard", "legibility floor when shrinking images for memory", "PX"),
    "memory_wait_s": Option("memory guard", "seconds a request may wait in the queue for memory before 503", "S"),
    "default_max_tokens": Option("memory guard", "max_tokens of a request that gives none", "N"),
    "image_cache_items": Option("memory guard", "decoded and resized images kept by content hash", "N"),
    "image_cache_ttl_s": Option("memory guard", "seconds a cached image is kept", "S"),
    "queue_size": Option("engines", "requests waiting per worker beyond its running batch before 503", "N"),
    "max_batch_size": Option("engines", "sequences a worker decodes together", "N"),
    "text_replicas": Option(
        "engines", "text workers, each a copy of the model (0: one per core, up to 4, on CPU, else 1)", "N"
    ),
    "vision_replicas": Option(
        "engines", "vision workers, each a copy of the model (0: one per core, up to 4, on CPU, else 1)", "N"
    ),
    "request_timeout_s": Option("engines", "seconds a request may run before it is ended", "S"),
    "calibrate": Option("engines", "measure the vision encoder's memory at start (--no-calibrate: skip)"),
    "max_choices": Option("engines", "the most choices (n) one request may ask for", "N"),
    "max_images": Option("image intake", "images per request", "N"),
    "max_image_bytes": Option("image intake", "bytes per image", "BYTES"),
    "max_image_pixels": Option("image intake", "pixels per image, checked before decoding", "N"),
    "fetch_timeout_s": Option("image intake", "seconds to fetch one remote image, redirects included", "S"),
    "no_remote_images": Option("image intake", "refuse http(s) image URLs"),
    "allow_media_hosts": Option(
        "image intake", "HOST or CIDR that image URLs may reach even if private (repeatable)", "HOST"
    ),
    "media_root": Option("image intake", "serve local image paths from inside this directory only", "DIR"),
    "log_level": Option("logging", "debug, info, warning or error (debug also shows tracebacks)", "LEVEL"),
    "log_json": Option("logging", "JSON log lines (default: when stderr is not a terminal)"),
}


def flag_for(name: str) -> str:
    """The command-line flag of a setting: ``max_image_side`` -> ``--max-image-side``."""
    return "--" + name.replace("_", "-")


def env_for(name: str) -> str:
    """The environment variable of a setting: ``max_image_side`` -> ``MMSERVE_MAX_IMAGE_SIDE``."""
    return ENV_PREFIX + name.upper()


def _field_types() -> dict[str, Any]:
    return {f.name: f.type for f in msgspec.structs.fields(Settings)}


def _from_env(env: Mapping[str, str]) -> dict[str, Any]:
    fields = _field_types()
    values: dict[str, Any] = {}
    for key, raw in env.items():
        if not key.startswith(ENV_PREFIX):
            continue
        name = key[len(ENV_PREFIX) :].lower()
        if name not in fields:
            continue  # MMSERVE_* variables of other tools are not ours to reject
        if "tuple" in str(fields[name]):
            values[name] = [part.strip() for part in raw.split(",") if part.strip()]
        else:
            values[name] = raw
    return values


_UNKNOWN = re.compile(r"unknown field `(?P<name>[^`]+)`")
_EXPECTED = re.compile(r"Expected `(?P<kind>[^`]+)`")
_KINDS = {
    "int": "expected a whole number",
    "float": "expected a number",
    "bool": "expected true or false",
    "str": "expected a string",
    "array": "expected a list",
}
_AT = re.compile(r" - at `\$\.(?P<name>\w+)[^`]*`$")


def _explain(exc: msgspec.ValidationError, sources: Mapping[str, str], values: Mapping[str, Any]) -> SettingsError:
    """A msgspec complaint as one sentence that names where the bad value came from."""
    original = exc.__context__  # msgspec turns a SettingsError from __post_init__ into a ValidationError
    if isinstance(original, SettingsError):
        where = sources.get(original.setting or "", original.setting)
        return SettingsError(f"{where}: {original}" if where else str(original), setting=original.setting)
    message = str(exc)
    if unknown := _UNKNOWN.search(message):
        name = unknown["name"]
        close = difflib.get_close_matches(name, _field_types(), n=1)
        hint = f" (did you mean '{close[0]}'?)" if close else ""
        where = sources.get(name, "settings")
        return SettingsError(f"{where}: unknown setting '{name}'{hint}", setting=name)
    at = _AT.search(message)
    if at is None:
        return SettingsError(message)
    name = at["name"]
    expected = message[: at.start()].replace(" | null", "")
    if kind := _EXPECTED.search(expected):
        expected = _KINDS.get(kind["kind"], f"expected {kind['kind']}")
    return SettingsError(f"{sources.get(name, name)}: {values.get(name)!r} is not valid: {expected}", setting=name)


def load_settings(
    config_file: str | Path | None = None,
    *,
    env: Mapping[str, str] | None = None,
    overrides: Mapping[str, Any] | None = None,
    override_names: Mapping[str, str] | None = None,
) -> Settings:
    """Build Settings from defaults, then a TOML file, then MMSERVE_* env, then explicit overrides.

    A bad value is a ``SettingsError`` naming where it came from: the file and key, the
    environment variable, or the flag (``override_names`` maps a setting to how the caller
    calls it; default: its flag)."""
    merged: dict[str, Any] = {}
    sources: dict[str, str] = {}
    if config_file is not None:
        try:
            with open(config_file, "rb") as fh:
                data = tomllib.load(fh)
        except OSError as exc:
            raise SettingsError(f"cannot read config file {config_file}: {exc.strerror or exc}") from None
        except tomllib.TOMLDecodeError as exc:
            raise SettingsError(f"{config_file}: not valid TOML: {exc}") from None
        for key, value in data.items():
            name = key.replace("-", "_")
            merged[name] = value
            sources[name] = f"{config_file}: {key}"
    for name, value in _from_env(os.environ if env is None else env).items():
        merged[name] = value
        sources[name] = env_for(name)
    for name, value in (overrides or {}).items():
        if value is not None:
            merged[name] = value
            sources[name] = (override_names or {}).get(name, flag_for(name))
    try:
        # Env values are strings: strict=False lets msgspec turn "8001" into 8001 and "true" into True.
        return msgspec.convert(merged, Settings, strict=False)
    except msgspec.ValidationError as exc:
        raise _explain(exc, sources, merged) from None
    except SettingsError as exc:
        if exc.setting is not None and exc.setting in sources:
            raise SettingsError(f"{sources[exc.setting]}: {exc}", setting=exc.setting) from None
        raise
