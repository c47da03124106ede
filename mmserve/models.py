"""Where a model comes from: a local directory, or a Hugging Face repo id through the local cache."""

from __future__ import annotations

import os
from pathlib import Path

__all__ = ["ModelResolutionError", "resolve_model"]

_PATTERNS = ["*.json", "*.safetensors", "*.py", "*.jinja", "*.txt", "*.model", "*.tiktoken"]


class ModelResolutionError(RuntimeError):
    """The model reference names no local directory and cannot be had from the hub."""


def resolve_model(ref: str, *, no_download: bool = False) -> tuple[Path, str]:
    """Return ``(directory, name)`` for a model reference.

    A directory is used as it is and named after itself. Anything else is a repo id:
    it is read from the Hugging Face cache, and downloaded only when downloads are
    allowed (neither ``no_download`` nor ``HF_HUB_OFFLINE`` is set).
    """
    path = Path(ref).expanduser()
    if path.is_dir():
        if not (path / "config.json").is_file():
            raise ModelResolutionError(f"{path} has no config.json: not a model directory")
        return path.resolve(), path.resolve().name
    if path.exists() or ref.startswith((".", "/", "~")):
        raise ModelResolutionError(f"{ref} is not a model directory")
    offline = no_download or os.environ.get("HF_HUB_OFFLINE", "").lower() in ("1", "true", "yes")
    try:
        from huggingface_hub import snapshot_download
        from huggingface_hub.errors import HFValidationError, LocalEntryNotFoundError

        local = snapshot_download(ref, allow_patterns=_PATTERNS, local_files_only=offline)
    except (LocalEntryNotFoundError, HFValidationError, OSError, ValueError) as exc:
        hint = " (downloads are off: --no-download or HF_HUB_OFFLINE)" if offline else ""
        raise ModelResolutionError(f"cannot find model '{ref}' locally or on the hub{hint}: {exc}") from exc
    return Path(local), ref
