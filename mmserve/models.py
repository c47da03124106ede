"""Where a model comes from: a local directory, or a Hugging Face repo id through the local cache."""

from __future__ import annotations

import os
from pathlib import Path

__all__ = ["ModelResolutionError", "resolve_model"]

_PATTERNS = ["*.json", "*.safetensors", "*.py", "*.jinja", "*.txt", "*.model", "*.tiktoken"]


class ModelResolutionError(RuntimeError):
    """The model reference names no local directory and cannot be had from the hub;
    ``hint`` says what the operator can do about it."""

    def __init__(self, message: str, hint: str | None = None) -> None:
        super().__init__(message)
        self.hint = hint


def resolve_model(ref: str, *, no_download: bool = False) -> tuple[Path, str]:
    """Return ``(directory, name)`` for a model reference.

    A directory is used as it is and named after itself. Anything else is a repo id:
    it is read from the Hugging Face cache, and downloaded only when downloads are
    allowed (neither ``no_download`` nor ``HF_HUB_OFFLINE`` is set).
    """
    path = Path(ref).expanduser()
    if path.is_dir():
        if not (path / "config.json").is_file():
            raise ModelResolutionError(
                f"{path} has no config.json: not a model directory", "give the directory that holds config.json"
            )
        return path.resolve(), path.resolve().name
    if path.exists() or ref.startswith((".", "/", "~")):
        raise ModelResolutionError(
            f"{ref} is not a model directory", "give a directory with config.json and weights, or a repo id"
        )
    offline = no_download or os.environ.get("HF_HUB_OFFLINE", "").lower() in ("1", "true", "yes")
    try:
        from huggingface_hub import snapshot_download
        from huggingface_hub.errors import HFValidationError, LocalEntryNotFoundError

        local = snapshot_download(ref, allow_patterns=_PATTERNS, local_files_only=offline)
    except (LocalEntryNotFoundError, HFValidationError, OSError, ValueError) as exc:
        if isinstance(exc, HFValidationError):
            message, hint = f"'{ref}' is neither a model directory nor a Hugging Face repo id", None
        elif offline:
            message = f"model '{ref}' is not in the Hugging Face cache and downloads are off"
            hint = "download it once with network access (without --no-download / HF_HUB_OFFLINE) or give a directory"
        else:
            message = f"cannot find model '{ref}' locally or on the Hugging Face hub"
            hint = "check the repo id and the network, or give a local directory"
        detail = str(exc).strip().splitlines()
        if detail and not offline:  # why the hub could not be asked (network, name, access)
            message = f"{message}: {type(exc).__name__}: {detail[0][:160]}"
        raise ModelResolutionError(message, hint) from exc
    return Path(local), ref
