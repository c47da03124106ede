"""Settings: one frozen msgspec Struct, layered defaults < TOML file < MMSERVE_* env < flags.

``load_settings`` is the only place that reads files or the environment; the app
factory takes a finished ``Settings`` and never looks at either.
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import msgspec

__all__ = ["ENV_PREFIX", "Settings", "SettingsError", "load_settings"]

ENV_PREFIX = "MMSERVE_"


class SettingsError(ValueError):
    """A setting has a bad value or an unknown name."""


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
            raise SettingsError(f"port must be 0..65535, got {self.port}")
        for name in ("max_body_bytes", "queue_size", "max_batch_size", "max_images", "default_max_tokens"):
            if getattr(self, name) < 1:
                raise SettingsError(f"{name} must be at least 1")
        for name in ("text_replicas", "vision_replicas"):
            if getattr(self, name) < 0:
                raise SettingsError(f"{name} must be 0 (automatic) or more")
        if self.min_image_side < 28:
            raise SettingsError("min_image_side must be at least 28")


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


def load_settings(
    config_file: str | Path | None = None,
    *,
    env: Mapping[str, str] | None = None,
    overrides: Mapping[str, Any] | None = None,
) -> Settings:
    """Build Settings from defaults, then a TOML file, then MMSERVE_* env, then explicit overrides."""
    merged: dict[str, Any] = {}
    if config_file is not None:
        try:
            with open(config_file, "rb") as fh:
                data = tomllib.load(fh)
        except (OSError, tomllib.TOMLDecodeError) as exc:
            raise SettingsError(f"cannot read config file {config_file}: {exc}") from exc
        merged.update({key.replace("-", "_"): value for key, value in data.items()})
    merged.update(_from_env(os.environ if env is None else env))
    merged.update({key: value for key, value in (overrides or {}).items() if value is not None})
    try:
        # Env values are strings: strict=False lets msgspec turn "8001" into 8001 and "true" into True.
        return msgspec.convert(merged, Settings, strict=False)
    except msgspec.ValidationError as exc:
        raise SettingsError(str(exc)) from exc
