"""Tiny random-weight checkpoints of any mlx-vlm or mlx-lm model family.

A family module (``mmserve/synth/families/<name>.py``) writes the family's real
``config.json`` structure, processor files and chat template at a tiny hidden size;
the pieces here do the rest: a BPE tokenizer carrying the family's added tokens,
and random weights from the mlx-vlm / mlx-lm model class itself, saved under the
names a converted (mlx-community) checkpoint uses. The processor then behaves as
for the real checkpoint, so image sizes and token counts are the real ones.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from . import VOCAB_SIZE, bpe_tokenizer_json

__all__ = ["Family", "Vocabulary", "write_json", "write_random_model", "write_tokenizer"]


@dataclass(frozen=True)
class Vocabulary:
    """A tokenizer's added tokens; they take the last ids, ``special`` first, in order."""

    special: tuple[str, ...]
    plain: tuple[str, ...] = ()
    size: int = VOCAB_SIZE

    def __getitem__(self, token: str) -> int:
        added = self.special + self.plain
        return self.size - len(added) + added.index(token)

    def tokenizer_json(self) -> str:
        return bpe_tokenizer_json(self.special, self.plain, self.size)


@dataclass(frozen=True)
class Family:
    """A model family ``mmserve synth --family NAME`` can write.

    ``write(directory, seed)`` writes a complete checkpoint into an existing, empty
    ``directory``; ``examples`` names real checkpoints whose config it mirrors.
    """

    name: str
    kind: Literal["text", "vision"]
    write: Callable[[Path, int], None]
    examples: tuple[str, ...] = ()


def write_json(path: Path, data: dict) -> None:
    path.write_text(json.dumps(data, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")


def _build_model(config: dict, kind: str):
    """The model class of ``config``, constructed as ``mlx_vlm.load`` / ``mlx_lm.load`` do."""
    if kind == "vision":
        from mlx_vlm.utils import get_model_and_args, update_module_configs

        config = json.loads(json.dumps(config))  # the helpers below edit it
        model_class, _ = get_model_and_args(config=config)
        config.setdefault("text_config", config.pop("llm_config", {}))
        config.setdefault("vision_config", {})
        config.setdefault("audio_config", {})
        model_config = model_class.ModelConfig.from_dict(config)
        model_config = update_module_configs(
            model_config, model_class, config, ["text", "vision", "perceiver", "projector", "audio"]
        )
        return model_class.Model(model_config)
    from mlx_lm.utils import _get_classes

    model_class, args_class = _get_classes(config=config)
    return model_class(args_class.from_dict(config))


def write_random_model(
    directory: Path,
    config: dict,
    *,
    kind: Literal["text", "vision"],
    seed: int,
    rename: Callable[[str], str | None] = lambda name: name,
) -> None:
    """Write ``config.json`` and random weights for it, drawn by the model class's own initialisers.

    ``rename`` maps a parameter's name in the constructed model to its name in the
    checkpoint (None drops it), for families whose loader renames on the way in.
    """
    import mlx.core as mx
    from mlx.utils import tree_flatten

    mx.random.seed(seed)
    model = _build_model(config, kind)
    weights = {}
    for name, value in tree_flatten(model.parameters()):
        saved = rename(name)
        if saved is not None:
            weights[saved] = value.astype(mx.float32) if mx.issubdtype(value.dtype, mx.floating) else value
    mx.save_safetensors(str(directory / "model.safetensors"), weights, metadata={"format": "mlx"})
    write_json(directory / "config.json", config)


def write_tokenizer(
    directory: Path,
    vocab: Vocabulary,
    *,
    chat_template: str | None,
    eos: str,
    bos: str | None = None,
    pad: str | None = None,
    unk: str | None = None,
    add_bos: bool = False,
    extra: dict | None = None,
) -> None:
    """tokenizer.json, tokenizer_config.json (and chat_template.jinja) for ``vocab``.

    ``extra`` goes into tokenizer_config.json as it is (e.g. ``extra_special_tokens``
    naming a processor's image token).
    """
    (directory / "tokenizer.json").write_text(vocab.tokenizer_json(), encoding="utf-8")
    decoder = {
        str(vocab[t]): {
            "content": t,
            "lstrip": False,
            "normalized": False,
            "rstrip": False,
            "single_word": False,
            "special": t in vocab.special,
        }
        for t in vocab.special + vocab.plain
    }
    config = {
        "add_bos_token": add_bos,
        "add_eos_token": False,
        "added_tokens_decoder": decoder,
        "bos_token": bos,
        "clean_up_tokenization_spaces": False,
        "eos_token": eos,
        "model_max_length": 1_000_000,
        "pad_token": pad,
        "tokenizer_class": "PreTrainedTokenizerFast",
        "unk_token": unk,
        **(extra or {}),
    }
    write_json(directory / "tokenizer_config.json", config)
    if chat_template is not None:
        (directory / "chat_template.jinja").write_text(chat_template, encoding="utf-8")
