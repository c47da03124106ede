"""Pieces both engine adapters share: samplers, logits processors, model facts, stats.

Imported only inside worker processes (it imports mlx).
"""

from __future__ import annotations

import functools
import logging
import os
from dataclasses import dataclass

import mlx.core as mx
import mlx.nn as nn
from mlx.utils import tree_flatten
from mlx_lm.sample_utils import apply_min_p, apply_top_k, apply_top_p, make_logits_processors

import guards

from . import messages

__all__ = [
    "Admitted",
    "backend",
    "chat_for_template",
    "context_length",
    "kv_layout",
    "logits_for_kept_positions",
    "longest_token_chars",
    "make_logits",
    "make_sampler",
    "memory_stats",
    "quiet_transformers",
    "reply_parts",
    "restore_random_state",
    "vocab_size",
    "warm_up",
    "weights_bytes",
]


def quiet_transformers() -> None:
    """Keep transformers' warnings out of the server's log: the tokenizer's about prompts
    over the model's length (the server answers those with context_length_exceeded), and
    the processor's about how mlx-vlm calls it, which came with every image request. mlx-vlm
    silences the latter only when it is the first to import transformers; in a worker,
    mlx-lm is."""
    logging.getLogger("transformers").setLevel(logging.ERROR)


def backend() -> str:
    """The mlx backend computing here: "metal", "cuda" or "cpu"."""
    if mx.metal.is_available():
        return "metal"
    if hasattr(mx, "cuda") and mx.cuda.is_available():
        return "cuda"
    return "cpu"


# Model classes, by module, whose forward pass is the head applied to every position of what
# an inner ``model`` returns: the final hidden states.
_HEAD_AFTER_INNER_MODEL = frozenset(
    {
        "mlx_lm.models.llama",
        "mlx_lm.models.qwen2",
        "mlx_lm.models.qwen3",
        "mlx_vlm.models.qwen2_vl.language",
        "mlx_vlm.models.qwen2_5_vl.language",
    }
)


def logits_for_kept_positions(model: nn.Module) -> bool:
    """Make ``model(..., logits_to_keep=k)`` compute the head for the last ``k`` positions only.

    A prompt's first token needs its last position's logits alone. mlx-lm's models take no
    such argument, and Qwen2-VL's language models ignore the one mlx-vlm passes: fed a
    whole prompt, they compute the head for every position (for 2,048 tokens and a
    152k-token vocabulary, 1.3 TFLOP and 0.6 GB of logits). The inner model's class is
    derived so that its hidden states are cut to the kept positions before the head; a
    call without ``logits_to_keep`` is unchanged. Returns whether ``model`` is of a family
    this applies to; others are left as they are.
    """
    if type(model).__module__ not in _HEAD_AFTER_INNER_MODEL:
        return False
    base, inner = type(model), type(model.model)

    def hidden_states(self, *args, **kwargs):
        out = inner.__call__(self, *args, **kwargs)
        return out if self.keep is None or out.shape[1] <= self.keep else out[:, -self.keep :]

    def logits(self, *args, logits_to_keep: int | None = None, **kwargs):
        object.__setattr__(self.model, "keep", logits_to_keep)  # past nn.Module's __setattr__
        try:
            return base.__call__(self, *args, **kwargs)
        finally:
            object.__setattr__(self.model, "keep", None)

    model.model.__class__ = type(inner.__name__, (inner,), {"__call__": hidden_states, "keep": None})
    model.__class__ = type(base.__name__, (base,), {"__call__": logits})
    return True


@dataclass(frozen=True)
class Admitted:
    uid: int
    prompt_tokens: int
    cached_tokens: int = 0
    parts: object = None  # replies.ReplyParts where the reply is split (thinking, tool calls)
    logprobs: object = None  # logprobs.TokenLogprobs where the request asked for them


def reply_parts(engine, tools: list[dict] | None, prompt: list[int], parallel: bool = True):
    """How a reply is split into answer, thinking and tool calls; None: it is all answer."""
    from .replies import ReplyParts, prompt_opens_thinking

    tokenizer = engine.replies_tokenizer
    if not ReplyParts.wanted(tokenizer, tools):
        return None
    thinking = prompt_opens_thinking(tokenizer, prompt)
    return ReplyParts(tokenizer, tools=tools, thinking=thinking, calls=engine.tool_format, parallel=parallel)


def chat_for_template(engine, chat: list[dict], tools: list[dict] | None) -> tuple[list[dict], list[dict] | None]:
    """The chat and tools as the model's template takes them: as they are where it renders
    tools itself, else with the tools described in the Hermes format (``replies.hermes_chat``)."""
    if not tools or engine.tool_format["template"]:
        return chat, tools
    from .replies import hermes_chat

    return hermes_chat(chat, tools), None


def make_sampler(sampling: messages.Sampling):
    """A request's sampler; ``None`` means greedy, which the batch runs as one call.

    Requests without a seed and with the same settings share one sampler, so the batch
    samples them in one call too; mlx-lm's batch calls a sampler per row otherwise (8
    requests at temperature 1 on the tiny CPU model, in process: 670-754 tok/s with a
    sampler each, 730-877 sharing one). A request with a seed gets its own PRNG key
    chain, so its sample does not depend on what else is in the batch.
    """
    if sampling.temperature <= 0:
        return None
    if sampling.seed is None:
        return _shared_sampler(sampling.temperature, sampling.top_p, sampling.min_p, sampling.top_k)
    return _sampler(sampling.temperature, sampling.top_p, sampling.min_p, sampling.top_k, sampling.seed)


@functools.lru_cache(maxsize=64)
def _shared_sampler(temperature: float, top_p: float, min_p: float, top_k: int):
    return _sampler(temperature, top_p, min_p, top_k, seed=None)


def _sampler(temperature: float, top_p: float, min_p: float, top_k: int, seed: int | None):
    filters = []
    if 0 < top_p < 1:
        filters.append(lambda x: apply_top_p(x, top_p))
    if min_p > 0:
        filters.append(lambda x: apply_min_p(x, min_p))
    if top_k > 0:
        # A top_k of the whole vocabulary or more keeps every token; mlx-lm's raises for it.
        filters.append(lambda x: apply_top_k(x, top_k) if top_k < x.shape[-1] else x)
    key = [mx.random.key(seed % (1 << 64))] if seed is not None else None  # a negative seed as its two's complement
    scale = 1.0 / temperature

    def sampler(logprobs: mx.array) -> mx.array:
        for apply in filters:
            logprobs = apply(logprobs)
        if key is None:
            return mx.random.categorical(logprobs * scale)
        key[0], sub = mx.random.split(key[0])
        return mx.random.categorical(logprobs * scale, key=sub)

    return sampler


def restore_random_state() -> None:
    """Give mlx a usable global random state again after a failed step.

    mlx-lm's samplers (``apply_top_k`` and the rest) are compiled with the global random
    state as an input: one that raises while being traced leaves a placeholder in its place,
    and every unseeded sample after it fails ("Attempting to eval an array without a
    primitive") until the process ends. Seeded requests use their own keys and never read
    it, so a fresh seed loses nothing."""
    try:
        mx.eval(mx.random.state)
    except Exception:
        mx.random.seed(int.from_bytes(os.urandom(8)))


def vocab_size(config: dict, tokenizer) -> int:
    """The number of logits a step samples from: config.json's ``vocab_size`` (its
    ``text_config``'s first), else the tokenizer's length."""
    for source in (config.get("text_config") or {}, config):
        if isinstance(source.get("vocab_size"), int) and source["vocab_size"] > 0:
            return source["vocab_size"]
    return len(tokenizer)


def longest_token_chars(tokenizer) -> int:
    """The most characters of text one token can stand for: the longest entry of the
    vocabulary, added tokens included. A text of ``n`` characters is at least ``n / longest``
    tokens, which bounds a prompt against the context before any tokenizer runs."""
    return max((len(token) for token in tokenizer.get_vocab()), default=0)


def make_logits(request: messages.Generate, engine) -> list:
    """A request's logits processors: its bias and penalties, its grammar (structured output,
    a forced tool call), and last what records its logprobs."""
    sampling = request.sampling
    processors = make_logits_processors(
        logit_bias=sampling.logit_bias,
        repetition_penalty=sampling.repetition_penalty,
        presence_penalty=sampling.presence_penalty,
        frequency_penalty=sampling.frequency_penalty,
    )
    if request.grammar is not None:
        from .grammar import Grammar

        processors.append(Grammar(request.grammar, engine.grammar_tokenizer.get()))
    if request.logprobs is not None:
        from .logprobs import TokenLogprobs

        processors.append(TokenLogprobs(request.logprobs, engine.replies_tokenizer.decode))
    return processors


def weights_bytes(model) -> int:
    return sum(v.nbytes for _, v in tree_flatten(model.parameters()))


# Keys under which configs give the longest sequence, most usual first.
_CONTEXT_KEYS = ("max_position_embeddings", "max_sequence_length", "max_seq_len", "seq_length", "n_positions", "n_ctx")
# RoPE kinds whose scaling reaches past ``original_max_position_embeddings`` (mlx-lm's rope_utils).
_EXTENDING_ROPE = ("yarn", "deepseek_yarn", "dynamic")


def context_length(config: dict, *, model: nn.Module | None = None, default: int = 4096) -> int:
    """The longest sequence a checkpoint serves, from its config.json (its ``text_config``
    first, for models that wrap a language model).

    A YaRN or dynamic-NTK ``rope_scaling`` whose ``max_position_embeddings`` is still the
    original length (Qwen2.5's recipe for 128k) extends it by its factor, where mlx-lm builds
    that rope for ``model`` (checked on its modules when given)."""
    text = config.get("text_config") or config.get("llm_config") or {}
    for source in (text, config):
        length = next((int(source[k]) for k in _CONTEXT_KEYS if isinstance(source.get(k), int) and source[k] > 0), 0)
        if length:
            break
    else:
        return default
    scaling = source.get("rope_scaling") or source.get("rope_parameters") or {}
    kind = scaling.get("rope_type") or scaling.get("type")
    factor = scaling.get("factor") or 1
    original = scaling.get("original_max_position_embeddings") or length
    if kind in _EXTENDING_ROPE and factor > 1 and length <= original and _honours_rope_scaling(model):
        length = int(original * factor)
    return length


def _honours_rope_scaling(model: nn.Module | None) -> bool:
    if model is None:
        return True
    from mlx_lm.models import rope_utils

    kinds = tuple(getattr(rope_utils, n) for n in ("YarnRoPE", "DynamicNTKScalingRoPE") if hasattr(rope_utils, n))
    return any(isinstance(m, kinds) for _, m in model.named_modules())


def _cache_leaves(cache) -> list:
    """A model's per-layer caches with CacheLists opened up."""
    leaves = []
    for entry in cache:
        caches = getattr(entry, "caches", None)
        leaves.extend(_cache_leaves(caches) if caches is not None else [entry])
    return leaves


def _grow(leaf, keys_like: mx.array, values_like: mx.array, tokens: int, chunk: int) -> int:
    """Grow an empty cache the way a prompt of ``tokens`` fills it (all but the last token in
    chunks, then the last alone) with zeros of the model's shapes; its nbytes."""
    _, heads, _, key_dim = keys_like.shape
    _, value_heads, _, value_dim = values_like.shape
    parts = [chunk] * ((tokens - 1) // chunk) + ([(tokens - 1) % chunk] if (tokens - 1) % chunk else []) + [1]
    for n in parts:
        leaf.update_and_fetch(
            mx.zeros((1, heads, n, key_dim), keys_like.dtype),
            mx.zeros((1, value_heads, n, value_dim), values_like.dtype),
        )
        mx.eval(leaf.keys, leaf.values)
    return leaf.nbytes


def kv_layout(model: nn.Module, *, chunk: int = 2048, token: int = 0) -> guards.KVLayout:
    """What one sequence's cache holds, measured from the model's own ``make_cache()``.

    Two tokens through the model fill each layer's cache with the real shapes and dtype
    (the activations', not the packed weights'). A cache whose ``keys`` grow (KVCache,
    RotatingKVCache, MLA latents...) is priced per token, up to its ``max_size`` if it has
    one; any other (linear attention, SSM state) holds what it holds now for good. Then an
    empty cache of each kind is grown to a few lengths the way prompts fill it, and where it
    holds more than priced the price is raised to cover it, so the guard never plans under
    what mlx-lm allocates.
    """
    from mlx_lm.models.cache import make_prompt_cache

    cache = make_prompt_cache(model)
    model(mx.array([[token, token]]), cache=cache)
    leaves = _cache_leaves(cache)
    mx.eval([leaf.state for leaf in leaves])
    per_sequence = 0
    kinds: dict[tuple, list[int]] = {}
    for index, leaf in enumerate(leaves):
        keys, values = getattr(leaf, "keys", None), getattr(leaf, "values", None)
        if isinstance(keys, mx.array) and isinstance(values, mx.array) and keys.ndim == 4:
            window = getattr(leaf, "max_size", None)
            signature = (type(leaf).__name__, keys.shape[1:], values.shape[1:], keys.dtype, values.dtype, window)
            kinds.setdefault(signature, []).append(index)
        else:
            per_sequence += leaf.nbytes
    step = max((getattr(leaves[i], "step", 1) for indices in kinds.values() for i in indices), default=1)
    per_token, windows = 0, {}
    for signature, indices in kinds.items():
        sample = leaves[indices[0]]
        one = -(-sample.nbytes // sample.keys.shape[2])  # bytes per token of one layer
        window = signature[-1]
        lengths = {1, 2, step - 1, step + 1, 1000, 1024, 4096}
        if window:
            lengths |= {w for w in (window - 1, window, window + 1, 2 * window + 3) if 0 < w <= 1 << 14}
        single = guards.KVLayout(
            bytes_per_token=0 if window else one,
            windows=(guards.KVWindow(window, one),) if window else (),
            step=step,
        )
        worst = 1.0
        for length in sorted(lengths):
            fresh = _cache_leaves(make_prompt_cache(model))[indices[0]]
            held = _grow(fresh, sample.keys, sample.values, length, chunk)
            worst = max(worst, held / max(single.kv_bytes(length), 1))
        one = int(-(-one * worst // 1))
        if window:
            windows[window] = windows.get(window, 0) + one * len(indices)
        else:
            per_token += one * len(indices)
    return guards.KVLayout(
        bytes_per_token=per_token,
        per_sequence_bytes=per_sequence,
        windows=tuple(guards.KVWindow(w, b) for w, b in sorted(windows.items())),
        step=step,
    )


def memory_stats(request_id: str, memory_limit: int, running: int, prefix_cache_bytes: int = 0) -> messages.Stats:
    return messages.Stats(
        id=request_id,
        active_bytes=mx.get_active_memory(),
        peak_bytes=mx.get_peak_memory(),
        cache_bytes=mx.get_cache_memory(),
        memory_limit_bytes=memory_limit,
        running=running,
        prefix_cache_bytes=prefix_cache_bytes,
    )


def warm_up(engine, batch_sizes: list[int], max_tokens: int = 3) -> None:
    """Bursts of short greedy requests at each batch size, run to the end.

    On GPU backends mlx compiles kernels for each new shape on first use (seconds
    each); doing it here keeps that cost out of the first clients' latency.
    """
    for size in batch_sizes:
        requests = [
            messages.Generate(
                id=f"warm-up-{i}",
                messages=[{"role": "user", "content": "warm up " * (i + 1)}],
                max_tokens=max_tokens,
                sampling=messages.Sampling(temperature=0),
            )
            for i in range(size)
        ]
        uids = {engine.insert(engine.prepare(request)).uid for request in requests}
        while uids:
            uids -= {uid for uid, _, finish_reason in engine.step() if finish_reason is not None}
