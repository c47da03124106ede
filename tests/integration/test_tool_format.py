"""A model's tool-call markers are spelled in grammars as llguidance reads its tokenizer:
a special token by its id, anything else as text."""

from __future__ import annotations

import pytest

llguidance_hf = pytest.importorskip("llguidance.hf")

from mlx_lm.tokenizer_utils import load as load_tokenizer  # noqa: E402

from mmserve.engines.replies import tool_format  # noqa: E402
from mmserve.synth.families import FAMILIES  # noqa: E402

# Qwen2.5-VL's markers are added tokens not marked special; the others' are plain text.
NAMES = ["qwen2_5_vl", "mistral3_text", "qwen3_thinking"]


@pytest.mark.parametrize("name", NAMES)
def test_markers_are_spelled_as_llguidance_reads_them(name, tmp_path):
    FAMILIES[name].write(tmp_path, 0)
    tokenizer = load_tokenizer(tmp_path)
    lltokenizer = llguidance_hf.from_tokenizer(tokenizer._tokenizer, n_vocab=len(tokenizer._tokenizer))
    found = tool_format(tokenizer)
    for marker, spelled in ((found["start"], found["grammar_start"]), (found["end"], found["grammar_end"])):
        ids = tokenizer.encode(marker, add_special_tokens=False) if marker else []
        special = len(ids) == 1 and lltokenizer.is_special_token(ids[0])
        assert spelled == (f"<[{ids[0]}]>" if special else f'"{marker}"'), (marker, ids)
