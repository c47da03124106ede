"""Random-weight Qwen2 / Qwen2.5-VL checkpoints for tests and benchmarks.

``synthesize(out_dir)`` writes two model directories without network access:

* ``out_dir/text``: a ``qwen2`` causal LM that loads with ``mlx_lm.load``;
* ``out_dir/vision``: a ``qwen2_5_vl`` model that loads with ``mlx_vlm.load``.

Both share a byte-level BPE tokenizer trained locally on an embedded corpus,
carrying Qwen's special tokens and chat templates. Weights are random,
deterministic per seed, and scaled so that greedy decoding depends on the
prompt and on the image. The ``tiny`` profile generates in well under a second
on a CPU; the other profiles reproduce real Qwen shapes for GPU benchmarks and
are written tensor by tensor into safetensors shards of at most 2 GB.
"""

from __future__ import annotations

import functools
import json
import math
import random
import shutil
import struct
import tempfile
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np

VOCAB_SIZE = 2048
SHARD_BYTES = 2_000_000_000
SPECIAL_TOKENS = (
    "<|endoftext|>",
    "<|im_start|>",
    "<|im_end|>",
    "<|object_ref_start|>",
    "<|object_ref_end|>",
    "<|box_start|>",
    "<|box_end|>",
    "<|quad_start|>",
    "<|quad_end|>",
    "<|vision_start|>",
    "<|vision_end|>",
    "<|vision_pad|>",
    "<|image_pad|>",
    "<|video_pad|>",
)
PLAIN_ADDED_TOKENS = (
    "<tool_call>",
    "</tool_call>",
    "<|fim_prefix|>",
    "<|fim_middle|>",
    "<|fim_suffix|>",
    "<|fim_pad|>",
    "<|repo_name|>",
    "<|file_sep|>",
)
ADDED_TOKENS = SPECIAL_TOKENS + PLAIN_ADDED_TOKENS
BPE_SIZE = VOCAB_SIZE - len(ADDED_TOKENS)
TOKEN_IDS = {tok: BPE_SIZE + i for i, tok in enumerate(ADDED_TOKENS)}
PRETOKENIZE_REGEX = (
    r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}"
    r"| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"
)

# Initialisation gains: unit-variance embeddings, fan-in scaled projections,
# sharper attention and peaked logits so that argmax tracks the input.
QK_GAIN = 2.0
BIAS_STD = 0.1
LOGIT_GAIN = 6.0

_TEXT_SYSTEM = "You are Qwen, created by Alibaba Cloud. You are a helpful assistant."
_TEXT_CHAT_TEMPLATE = (
    "{%- macro render(content) -%}"
    "{%- if content is string -%}{{ content }}"
    "{%- elif content is iterable and content is not mapping -%}"
    "{%- for part in content -%}"
    "{%- if part is string -%}{{ part }}"
    "{%- elif part is mapping and part.get('text') is string -%}{{ part['text'] }}"
    "{%- endif -%}{%- endfor -%}"
    "{%- elif content is not none -%}{{ content }}{%- endif -%}"
    "{%- endmacro -%}"
    "{%- if tools %}{{- '<|im_start|>system\\n' }}"
    "{%- if messages[0]['role'] == 'system' %}{{- render(messages[0]['content']) }}"
    "{%- else %}{{- '" + _TEXT_SYSTEM + "' }}{%- endif %}"
    '{{- "\\n\\n# Tools\\n\\nYou may call one or more functions to assist with the user query.'
    '\\n\\nYou are provided with function signatures within <tools></tools> XML tags:\\n<tools>" }}'
    "{%- for tool in tools %}{{- '\\n' }}{{- tool | tojson }}{%- endfor %}"
    '{{- "\\n</tools>\\n\\nFor each function call, return a json object with function name and '
    'arguments within <tool_call></tool_call> XML tags:\\n<tool_call>\\n{\\"name\\": '
    '<function-name>, \\"arguments\\": <args-json-object>}\\n</tool_call><|im_end|>\\n" }}'
    "{%- else %}"
    "{%- if messages[0]['role'] == 'system' %}"
    "{{- '<|im_start|>system\\n' + render(messages[0]['content']) + '<|im_end|>\\n' }}"
    "{%- else %}{{- '<|im_start|>system\\n" + _TEXT_SYSTEM + "<|im_end|>\\n' }}{%- endif %}"
    "{%- endif %}"
    "{%- for message in messages %}"
    "{%- if (message.role == 'user') or (message.role == 'system' and not loop.first)"
    " or (message.role == 'assistant' and not message.tool_calls) %}"
    "{{- '<|im_start|>' + message.role + '\\n' + render(message.content) + '<|im_end|>\\n' }}"
    "{%- elif message.role == 'assistant' %}{{- '<|im_start|>' + message.role }}"
    "{%- if message.content %}{{- '\\n' + render(message.content) }}{%- endif %}"
    "{%- for tool_call in message.tool_calls %}"
    "{%- if tool_call.function is defined %}{%- set tool_call = tool_call.function %}{%- endif %}"
    '{{- \'\\n<tool_call>\\n{"name": "\' }}{{- tool_call.name }}{{- \'", "arguments": \' }}'
    "{{- tool_call.arguments | tojson }}{{- '}\\n</tool_call>' }}{%- endfor %}"
    "{{- '<|im_end|>\\n' }}"
    "{%- elif message.role == 'tool' %}"
    "{%- if (loop.index0 == 0) or (messages[loop.index0 - 1].role != 'tool') %}"
    "{{- '<|im_start|>user' }}{%- endif %}"
    "{{- '\\n<tool_response>\\n' }}{{- render(message.content) }}{{- '\\n</tool_response>' }}"
    "{%- if loop.last or (messages[loop.index0 + 1].role != 'tool') %}{{- '<|im_end|>\\n' }}"
    "{%- endif %}{%- endif %}{%- endfor %}"
    "{%- if add_generation_prompt %}{{- '<|im_start|>assistant\\n' }}{%- endif %}"
)
_VISION_CHAT_TEMPLATE = (
    "{% set image_count = namespace(value=0) %}{% set video_count = namespace(value=0) %}"
    "{% for message in messages %}"
    "{% if loop.first and message['role'] != 'system' %}"
    "<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n{% endif %}"
    "<|im_start|>{{ message['role'] }}\n"
    "{% if message['content'] is string %}{{ message['content'] }}<|im_end|>\n"
    "{% else %}{% for content in message['content'] or [] %}"
    "{% if content is string %}{{ content }}"
    "{% elif content.get('type') in ('image', 'image_url', 'input_image')"
    " or 'image' in content or 'image_url' in content %}"
    "{% set image_count.value = image_count.value + 1 %}"
    "{% if add_vision_id %}Picture {{ image_count.value }}: {% endif %}"
    "<|vision_start|><|image_pad|><|vision_end|>"
    "{% elif content.get('type') == 'video' or 'video' in content %}"
    "{% set video_count.value = video_count.value + 1 %}"
    "{% if add_vision_id %}Video {{ video_count.value }}: {% endif %}"
    "<|vision_start|><|video_pad|><|vision_end|>"
    "{% elif 'text' in content %}{{ content['text'] }}{% endif %}"
    "{% endfor %}<|im_end|>\n{% endif %}{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)

_PARAGRAPHS = """\
The morning fog rolled slowly over the harbor, and the fishing boats waited at their
moorings until the light grew strong enough to see the channel markers. An old sailor
sat on the pier with a cup of tea, counting the gulls that circled above the nets.

To bake a simple loaf of bread, mix four cups of flour with a spoon of salt, a packet of
yeast and warm water. Knead the dough for ten minutes, let it rise for an hour, then
shape it gently and bake it in a hot oven until the crust sounds hollow when tapped.

Computers store every number as a pattern of bits. A program reads those patterns from
memory, performs arithmetic in the processor, and writes the results back. Caches keep
recently used values close to the processor, which makes repeated work much faster.

Deep in the forest the oak trees stood like patient giants. Moss covered their roots,
mushrooms pushed through the damp leaves, and a small stream carried the sound of water
over smooth stones toward the valley far below.

The library opened at nine o'clock. Students hurried between the tall shelves, looking
for history books, maps of ancient cities and dictionaries of forgotten languages, while
the librarian quietly repaired the torn cover of a poetry collection.

On clear winter nights you can see the bright planets low above the horizon. Through a
small telescope the rings of Saturn appear as a thin silver line, and the moons of
Jupiter change their positions from one hour to the next.

The train left the station exactly on time. Passengers opened newspapers, children
pressed their faces against the windows, and the conductor walked through each carriage
checking tickets while fields and villages rushed past outside.

Music begins with rhythm and silence. A drummer keeps the steady pulse, the bass
outlines the harmony, and a singer shapes the melody with breath, so that a simple song
can carry joy, sadness, hope or a memory of summer evenings.

A good scientific experiment starts with a clear question. Researchers measure what they
can, change one variable at a time, record every result honestly, and repeat the test
until they trust the pattern they observe in the data.

The market was loud and colorful. Farmers sold red apples, yellow lemons, green peppers
and purple grapes, a baker offered warm rolls, and a musician played an old violin near
the fountain in the middle of the square.

When the storm arrived, the wind bent the young trees and rain drummed on the roofs.
Lightning flashed over the hills, thunder followed a few seconds later, and the streets
turned into shallow rivers until the clouds finally moved east.

Learning a new language takes patience. Each day you read a short story, write a few
sentences, listen to native speakers and practice the difficult sounds, and slowly the
strange words become familiar friends.
"""
_NOUNS = (
    "cat dog bird horse river mountain city village garden window door table chair lamp "
    "book letter picture camera phone engine bridge road tower castle island ocean desert "
    "cloud star planet moon sun forest field farmer teacher doctor pilot artist writer "
    "student child friend neighbor king queen soldier robot machine network server "
    "kitchen bottle basket candle mirror clock hammer ladder bicycle wagon ship harbor "
    "coffee bread cheese apple orange lemon potato carrot onion pepper flower stone"
)
_VERBS = (
    "sees finds builds paints carries opens closes follows watches remembers forgets "
    "describes imagines repairs cleans moves lifts throws catches writes reads draws "
    "answers measures counts sells buys sends receives protects discovers explores "
    "visits leaves chooses prepares cooks washes hides shows teaches learns"
)
_ADJECTIVES = (
    "small large quiet loud bright dark warm cold old young happy tired careful curious "
    "heavy light green blue red yellow purple golden silver wooden broken gentle strange "
    "famous ancient modern simple clever brave lonely busy empty narrow wide"
)
_ADVERBS = (
    "slowly quickly quietly carefully suddenly often rarely gladly proudly nearly "
    "softly easily happily sadly calmly boldly"
)
_PLACES = (
    "near the river",
    "in the old town",
    "under the bridge",
    "behind the station",
    "on the hill",
    "at the market",
    "during the night",
    "after the rain",
    "before sunrise",
    "inside the museum",
    "across the valley",
    "beside the lake",
)


def _corpus() -> list[str]:
    """English paragraphs plus deterministic template sentences (seed-independent)."""
    rng = random.Random(20240531)
    nouns, verbs = _NOUNS.split(), _VERBS.split()
    adjectives, adverbs = _ADJECTIVES.split(), _ADVERBS.split()
    paragraphs = [" ".join(p.split()) for p in _PARAGRAPHS.split("\n\n")]
    lines = list(paragraphs)
    for _ in range(3000):
        sentence = (
            f"The {rng.choice(adjectives)} {rng.choice(nouns)} {rng.choice(adverbs)} "
            f"{rng.choice(verbs)} a {rng.choice(adjectives)} {rng.choice(nouns)} "
            f"{rng.choice(_PLACES)}."
        )
        if rng.random() < 0.3:
            hour, minute, day = rng.randint(1, 12), rng.randint(0, 59), rng.randint(1, 365)
            sentence += f" It was {hour}:{minute:02d} on day {day}!"
        if rng.random() < 0.2:
            sentence = f'"{sentence}" asked the {rng.choice(nouns)}?'
        case = rng.random()
        if case < 0.25:
            sentence = sentence.title()
        elif case < 0.33:
            sentence = sentence.upper()
        lines.append(sentence)
    return lines + [p.title() for p in paragraphs] + [p.upper() for p in paragraphs]


def _tokenizer_json() -> str:
    """The Qwen checkpoints' tokenizer as tokenizer.json text."""
    return bpe_tokenizer_json(SPECIAL_TOKENS, PLAIN_ADDED_TOKENS)


@functools.lru_cache(maxsize=32)
def bpe_tokenizer_json(special: tuple[str, ...], plain: tuple[str, ...] = (), vocab_size: int = VOCAB_SIZE) -> str:
    """Train a byte-level BPE tokenizer of ``vocab_size`` tokens on the embedded corpus.

    The added tokens take the last ids, ``special`` first, then ``plain`` (added tokens a
    decode keeps), in the order given. Returns tokenizer.json text.
    """
    from tokenizers import (
        AddedToken,
        Regex,
        Tokenizer,
        decoders,
        models,
        normalizers,
        pre_tokenizers,
        processors,
        trainers,
    )

    bpe_size = vocab_size - len(special) - len(plain)
    tok = Tokenizer(models.BPE())
    tok.normalizer = normalizers.NFC()
    tok.pre_tokenizer = pre_tokenizers.Sequence(
        [
            pre_tokenizers.Split(Regex(PRETOKENIZE_REGEX), behavior="isolated", invert=False),
            pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False),
        ]
    )
    tok.decoder = decoders.ByteLevel()
    tok.post_processor = processors.ByteLevel(trim_offsets=False)
    trainer = trainers.BpeTrainer(
        vocab_size=bpe_size,
        min_frequency=1,
        show_progress=False,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
    )
    tok.train_from_iterator(_corpus(), trainer=trainer)
    if tok.get_vocab_size() != bpe_size:
        raise RuntimeError(f"tokenizer trained to {tok.get_vocab_size()} tokens, want {bpe_size}")
    tok.add_special_tokens([AddedToken(t, special=True, normalized=False) for t in special])
    tok.add_tokens([AddedToken(t, special=False, normalized=False) for t in plain])
    if any(tok.token_to_id(t) != bpe_size + i for i, t in enumerate(special + plain)):
        raise RuntimeError("added token ids are not where the config expects them")
    return tok.to_str()


@dataclass(frozen=True)
class TextShape:
    """Shapes of a Qwen2 decoder."""

    hidden_size: int
    num_layers: int
    num_heads: int
    num_kv_heads: int
    intermediate_size: int
    max_position_embeddings: int
    dtype: str

    @property
    def head_dim(self) -> int:
        return self.hidden_size // self.num_heads


@dataclass(frozen=True)
class VisionShape:
    """Shapes of a Qwen2.5-VL vision tower."""

    depth: int
    hidden_size: int
    num_heads: int
    intermediate_size: int
    fullatt_block_indexes: tuple[int, ...]
    dtype: str
    patch_size: int = 14
    temporal_patch_size: int = 2
    spatial_merge_size: int = 2
    window_size: int = 112


@dataclass(frozen=True)
class Profile:
    """A text model, the language model of the VLM, and the VLM's vision tower."""

    text: TextShape
    vision_text: TextShape
    vision: VisionShape


_TINY_TEXT = TextShape(128, 4, 4, 2, 384, 4096, "F32")
_TINY_VISION = VisionShape(4, 128, 4, 256, (1, 3), "F32")
PROFILES: dict[str, Profile] = {
    "tiny": Profile(_TINY_TEXT, _TINY_TEXT, _TINY_VISION),
    "qwen2.5-1.5b": Profile(TextShape(1536, 28, 12, 2, 8960, 32768, "BF16"), _TINY_TEXT, _TINY_VISION),
    "qwen2.5-vl-3b": Profile(
        TextShape(2048, 36, 16, 2, 11008, 32768, "BF16"),
        TextShape(2048, 36, 16, 2, 11008, 128000, "BF16"),
        VisionShape(32, 1280, 16, 3420, (7, 15, 23, 31), "F32"),
    ),
}


@dataclass(frozen=True)
class TensorSpec:
    """One weight: name, shape, safetensors dtype and initialisation std (0 means ones)."""

    name: str
    shape: tuple[int, ...]
    dtype: str
    std: float

    @property
    def nbytes(self) -> int:
        return math.prod(self.shape) * (4 if self.dtype == "F32" else 2)


@dataclass(frozen=True)
class ModelPlan:
    """Everything needed to write one checkpoint directory."""

    config: dict
    tensors: tuple[TensorSpec, ...]

    @property
    def num_parameters(self) -> int:
        return sum(math.prod(t.shape) for t in self.tensors)

    @property
    def num_bytes(self) -> int:
        return sum(t.nbytes for t in self.tensors)


@dataclass(frozen=True)
class SynthModels:
    """Paths of the synthesized text and vision model directories."""

    text: Path
    vision: Path


def _lm_tensors(t: TextShape, prefix: str) -> list[TensorSpec]:
    h, kv = t.hidden_size, t.num_kv_heads * t.head_dim

    def spec(name, shape, std):
        return TensorSpec(prefix + name, shape, t.dtype, std)

    out = [spec("model.embed_tokens.weight", (VOCAB_SIZE, h), 1.0)]
    for i in range(t.num_layers):
        p = f"model.layers.{i}."
        out += [
            spec(p + "self_attn.q_proj.weight", (h, h), QK_GAIN / math.sqrt(h)),
            spec(p + "self_attn.q_proj.bias", (h,), BIAS_STD),
            spec(p + "self_attn.k_proj.weight", (kv, h), QK_GAIN / math.sqrt(h)),
            spec(p + "self_attn.k_proj.bias", (kv,), BIAS_STD),
            spec(p + "self_attn.v_proj.weight", (kv, h), 1 / math.sqrt(h)),
            spec(p + "self_attn.v_proj.bias", (kv,), BIAS_STD),
            spec(p + "self_attn.o_proj.weight", (h, h), 1 / math.sqrt(h)),
            spec(p + "mlp.gate_proj.weight", (t.intermediate_size, h), 1 / math.sqrt(h)),
            spec(p + "mlp.up_proj.weight", (t.intermediate_size, h), 1 / math.sqrt(h)),
            spec(p + "mlp.down_proj.weight", (h, t.intermediate_size), 1 / math.sqrt(t.intermediate_size)),
            spec(p + "input_layernorm.weight", (h,), 0.0),
            spec(p + "post_attention_layernorm.weight", (h,), 0.0),
        ]
    out += [
        spec("model.norm.weight", (h,), 0.0),
        spec("lm_head.weight", (VOCAB_SIZE, h), LOGIT_GAIN / math.sqrt(h)),
    ]
    return out


def _vision_tensors(v: VisionShape, out_hidden: int) -> list[TensorSpec]:
    h, i, merged = v.hidden_size, v.intermediate_size, v.hidden_size * v.spatial_merge_size**2
    patch = (h, v.temporal_patch_size, v.patch_size, v.patch_size, 3)

    def spec(name, shape, std):
        return TensorSpec("vision_tower." + name, shape, v.dtype, std)

    out = [spec("patch_embed.proj.weight", patch, 1 / math.sqrt(math.prod(patch[1:])))]
    for b in range(v.depth):
        p = f"blocks.{b}."
        out += [
            spec(p + "norm1.weight", (h,), 0.0),
            spec(p + "norm2.weight", (h,), 0.0),
            spec(p + "attn.qkv.weight", (3 * h, h), QK_GAIN / math.sqrt(h)),
            spec(p + "attn.qkv.bias", (3 * h,), BIAS_STD),
            spec(p + "attn.proj.weight", (h, h), 1 / math.sqrt(h)),
            spec(p + "attn.proj.bias", (h,), BIAS_STD),
            spec(p + "mlp.gate_proj.weight", (i, h), 1 / math.sqrt(h)),
            spec(p + "mlp.gate_proj.bias", (i,), BIAS_STD),
            spec(p + "mlp.up_proj.weight", (i, h), 1 / math.sqrt(h)),
            spec(p + "mlp.up_proj.bias", (i,), BIAS_STD),
            spec(p + "mlp.down_proj.weight", (h, i), 1 / math.sqrt(i)),
            spec(p + "mlp.down_proj.bias", (h,), BIAS_STD),
        ]
    out += [
        spec("merger.ln_q.weight", (h,), 0.0),
        spec("merger.mlp.0.weight", (merged, merged), 1 / math.sqrt(merged)),
        spec("merger.mlp.0.bias", (merged,), BIAS_STD),
        spec("merger.mlp.2.weight", (out_hidden, merged), 2 / math.sqrt(merged)),
        spec("merger.mlp.2.bias", (out_hidden,), BIAS_STD),
    ]
    return out


def _torch_dtype(dtype: str) -> str:
    return {"F32": "float32", "BF16": "bfloat16"}[dtype]


def _text_config(t: TextShape, model_type: str) -> dict:
    return {
        "model_type": model_type,
        "hidden_size": t.hidden_size,
        "intermediate_size": t.intermediate_size,
        "num_hidden_layers": t.num_layers,
        "num_attention_heads": t.num_heads,
        "num_key_value_heads": t.num_kv_heads,
        "max_position_embeddings": t.max_position_embeddings,
        "max_window_layers": t.num_layers,
        "sliding_window": t.max_position_embeddings,
        "use_sliding_window": False,
        "hidden_act": "silu",
        "rms_norm_eps": 1e-6,
        "rope_theta": 1000000.0,
        "attention_dropout": 0.0,
        "initializer_range": 0.02,
        "tie_word_embeddings": False,
        "use_cache": True,
        "vocab_size": VOCAB_SIZE,
        "bos_token_id": TOKEN_IDS["<|endoftext|>"],
        "eos_token_id": TOKEN_IDS["<|im_end|>"],
        "torch_dtype": _torch_dtype(t.dtype),
    }


def plan(profile: str = "tiny") -> dict[str, ModelPlan]:
    """Return the configs and weight layouts of a profile as {"text": ..., "vision": ...}."""
    if profile not in PROFILES:
        raise ValueError(f"unknown profile {profile!r}; choose from {sorted(PROFILES)}")
    p = PROFILES[profile]
    text_config = {"architectures": ["Qwen2ForCausalLM"], **_text_config(p.text, "qwen2")}
    v, vt = p.vision, p.vision_text
    head_half = vt.head_dim // 2
    mrope = [head_half // 4, (head_half - head_half // 4) // 2]
    mrope.append(head_half - sum(mrope))
    vision_config = {
        "architectures": ["Qwen2_5_VLForConditionalGeneration"],
        **_text_config(vt, "qwen2_5_vl"),
        "rope_scaling": {"type": "mrope", "mrope_section": mrope},
        "vision_start_token_id": TOKEN_IDS["<|vision_start|>"],
        "vision_end_token_id": TOKEN_IDS["<|vision_end|>"],
        "vision_token_id": TOKEN_IDS["<|vision_pad|>"],
        "image_token_id": TOKEN_IDS["<|image_pad|>"],
        "video_token_id": TOKEN_IDS["<|video_pad|>"],
        "vision_config": {
            "model_type": "qwen2_5_vl",
            "depth": v.depth,
            "hidden_act": "silu",
            "hidden_size": v.hidden_size,
            "intermediate_size": v.intermediate_size,
            "num_heads": v.num_heads,
            "in_chans": 3,
            "in_channels": 3,
            "out_hidden_size": vt.hidden_size,
            "patch_size": v.patch_size,
            "spatial_merge_size": v.spatial_merge_size,
            "spatial_patch_size": v.patch_size,
            "temporal_patch_size": v.temporal_patch_size,
            "window_size": v.window_size,
            "fullatt_block_indexes": list(v.fullatt_block_indexes),
            "tokens_per_second": 2,
            "torch_dtype": _torch_dtype(v.dtype),
        },
    }
    return {
        "text": ModelPlan(text_config, tuple(_lm_tensors(p.text, ""))),
        "vision": ModelPlan(
            vision_config,
            tuple(_lm_tensors(vt, "language_model.") + _vision_tensors(v, vt.hidden_size)),
        ),
    }


@functools.lru_cache(maxsize=1)
def _output_row_scales() -> np.ndarray:
    """Per-token lm_head row scale.

    Tokens that do not decode to printable ASCII (stray bytes, control
    characters) and added tokens are silenced so that greedy output is clean
    text. <|im_end|> keeps an ordinary row, so it is emitted only occasionally.
    """
    from tokenizers import Tokenizer

    tok = Tokenizer.from_str(_tokenizer_json())
    scales = np.zeros(VOCAB_SIZE, dtype=np.float32)
    for i in range(BPE_SIZE):
        text = tok.decode([i])
        scales[i] = float(all(c == "\n" or (c.isascii() and c.isprintable()) for c in text))
    scales[TOKEN_IDS["<|im_end|>"]] = 1.0
    return scales


def _materialize(spec: TensorSpec, seed: int) -> bytes:
    """Draw one tensor from a generator keyed by (seed, name) and encode it."""
    if spec.std == 0.0:
        values = np.ones(spec.shape, dtype=np.float32)
    else:
        rng = np.random.default_rng([seed, zlib.crc32(spec.name.encode())])
        values = rng.standard_normal(spec.shape, dtype=np.float32)
        values *= np.float32(spec.std)
        if spec.name.endswith("lm_head.weight"):
            values *= _output_row_scales()[:, None]
    if spec.dtype == "F32":
        return values.astype("<f4").tobytes()
    bits = values.astype("<f4").view("<u4")
    rounded = (bits + 0x7FFF + ((bits >> 16) & 1)) >> 16
    return rounded.astype("<u2").tobytes()


def _write_safetensors(path: Path, tensors: list[TensorSpec], seed: int) -> None:
    header: dict = {"__metadata__": {"format": "mlx"}}
    offset = 0
    for t in tensors:
        header[t.name] = {"dtype": t.dtype, "shape": list(t.shape), "data_offsets": [offset, offset + t.nbytes]}
        offset += t.nbytes
    blob = json.dumps(header, separators=(",", ":")).encode()
    blob += b" " * (-len(blob) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(blob)))
        f.write(blob)
        for t in tensors:
            f.write(_materialize(t, seed))


def _write_weights(directory: Path, model: ModelPlan, seed: int) -> None:
    shards: list[list[TensorSpec]] = [[]]
    size = 0
    for t in model.tensors:
        if shards[-1] and size + t.nbytes > SHARD_BYTES:
            shards.append([])
            size = 0
        shards[-1].append(t)
        size += t.nbytes
    if len(shards) == 1:
        _write_safetensors(directory / "model.safetensors", shards[0], seed)
        return
    weight_map = {}
    for n, shard in enumerate(shards, 1):
        name = f"model-{n:05d}-of-{len(shards):05d}.safetensors"
        _write_safetensors(directory / name, shard, seed)
        weight_map.update({t.name: name for t in shard})
    index = {"metadata": {"total_size": model.num_bytes}, "weight_map": weight_map}
    _write_json(directory / "model.safetensors.index.json", index)


def _write_json(path: Path, data: dict) -> None:
    path.write_text(json.dumps(data, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")


def _write_tokenizer(directory: Path, chat_template: str, context: int, extra: dict) -> None:
    (directory / "tokenizer.json").write_text(_tokenizer_json(), encoding="utf-8")
    special = [t for t in SPECIAL_TOKENS if t != "<|endoftext|>"]
    decoder = {
        str(i): {
            "content": t,
            "lstrip": False,
            "normalized": False,
            "rstrip": False,
            "single_word": False,
            "special": t in SPECIAL_TOKENS,
        }
        for t, i in TOKEN_IDS.items()
    }
    _write_json(
        directory / "tokenizer_config.json",
        {
            "add_bos_token": False,
            "add_prefix_space": False,
            "added_tokens_decoder": decoder,
            "additional_special_tokens": special,
            "bos_token": None,
            "chat_template": chat_template,
            "clean_up_tokenization_spaces": False,
            "eos_token": "<|im_end|>",
            "errors": "replace",
            "model_max_length": context,
            "pad_token": "<|endoftext|>",
            "split_special_tokens": False,
            "tokenizer_class": "Qwen2Tokenizer",
            "unk_token": None,
            **extra,
        },
    )

    def token(content):
        return {"content": content, "lstrip": False, "normalized": False, "rstrip": False, "single_word": False}

    _write_json(
        directory / "special_tokens_map.json",
        {
            "additional_special_tokens": special,
            "eos_token": token("<|im_end|>"),
            "pad_token": token("<|endoftext|>"),
        },
    )
    _write_json(
        directory / "generation_config.json",
        {
            "bos_token_id": TOKEN_IDS["<|endoftext|>"],
            "pad_token_id": TOKEN_IDS["<|endoftext|>"],
            "eos_token_id": [TOKEN_IDS["<|im_end|>"], TOKEN_IDS["<|endoftext|>"]],
        },
    )


def _write_image_processor(directory: Path, v: VisionShape) -> None:
    _write_json(
        directory / "preprocessor_config.json",
        {
            "min_pixels": 3136,
            "max_pixels": 12845056,
            "patch_size": v.patch_size,
            "temporal_patch_size": v.temporal_patch_size,
            "merge_size": v.spatial_merge_size,
            "image_mean": [0.48145466, 0.4578275, 0.40821073],
            "image_std": [0.26862954, 0.26130258, 0.27577711],
            "image_processor_type": "Qwen2VLImageProcessor",
            "processor_class": "Qwen2_5_VLProcessor",
        },
    )


def synthesize(out_dir: str | Path, *, seed: int = 0, profile: str = "tiny") -> SynthModels:
    """Write a random-weight text model and vision model under ``out_dir``.

    ``out_dir/text`` is a ``qwen2`` checkpoint for ``mlx_lm.load`` and
    ``out_dir/vision`` a ``qwen2_5_vl`` checkpoint for ``mlx_vlm.load``. The same
    seed always produces byte-identical files. Both are written in a staging
    directory beside them and moved into place only once complete, so an interrupted
    run leaves no half-written model (the demo reuses a model whose config exists).
    """
    plans = plan(profile)
    shapes = PROFILES[profile]
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".synth-", dir=out))
    try:
        text, vision = staging / "text", staging / "vision"
        text.mkdir()
        _write_json(text / "config.json", plans["text"].config)
        _write_tokenizer(text, _TEXT_CHAT_TEMPLATE, shapes.text.max_position_embeddings, {})
        _write_weights(text, plans["text"], seed)

        vision.mkdir()
        _write_json(vision / "config.json", plans["vision"].config)
        _write_tokenizer(
            vision,
            _VISION_CHAT_TEMPLATE,
            shapes.vision_text.max_position_embeddings,
            {"processor_class": "Qwen2_5_VLProcessor"},
        )
        _write_json(vision / "chat_template.json", {"chat_template": _VISION_CHAT_TEMPLATE})
        _write_image_processor(vision, shapes.vision)
        _write_weights(vision, plans["vision"], seed)

        models = SynthModels(text=out / "text", vision=out / "vision")
        for done in (text, vision):  # the banner says such a model is a demo
            (done / ".mmserve-random-weights").write_text("random weights written by mmserve synth\n")
        for done, final in ((text, models.text), (vision, models.vision)):
            if final.exists():
                shutil.rmtree(final)
            done.rename(final)
        return models
    finally:
        shutil.rmtree(staging, ignore_errors=True)
