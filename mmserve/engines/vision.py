"""The vision engine: an mlx-vlm model behind mlx-vlm's continuous BatchGenerator.

Every request, with or without images, enters the batch as input embeddings, so
text and image requests share batches without flushing each other. mlx-vlm's batch
takes one sampler for all rows; per-request sampling is done by a last logits
processor that samples the row and leaves only its token, so the batch's greedy
pick takes exactly that token.
"""

from __future__ import annotations

import functools
import hashlib
import json
import threading
import time
from collections import OrderedDict
from collections.abc import Mapping
from contextlib import nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import mlx.core as mx
import mlx.nn as nn
import numpy as np
from mlx.utils import tree_flatten, tree_map
from mlx_lm.tokenizer_utils import load as load_tokenizer
from mlx_vlm import load
from mlx_vlm.apc import APCManager, semantic_extra_hash
from mlx_vlm.generate import BatchGenerator
from mlx_vlm.generate.common import DEFAULT_PREFILL_STEP_SIZE as PREFILL_STEP
from mlx_vlm.models.rope_utils import MRoPERotaryEmbedding, apply_multimodal_rotary_pos_emb
from mlx_vlm.prompt_utils import apply_chat_template
from mlx_vlm.utils import prepare_inputs, should_add_special_tokens
from PIL import Image

import guards
import guards.families

from . import messages
from .common import (
    Admitted,
    backend,
    chat_for_template,
    context_length,
    kv_layout,
    logits_for_kept_positions,
    longest_token_chars,
    make_logits,
    make_sampler,
    quiet_transformers,
    reply_parts,
    vocab_size,
    warm_up,
    weights_bytes,
)
from .families import UnservedFamilyError, adapter_for
from .grammar import GrammarTokenizer
from .logprobs import recorder_in
from .replies import tool_format

__all__ = ["VisionEngine"]


class _Evaluated(nn.Module):
    """A vision block whose output is evaluated as soon as it is built.

    On mlx's CPU backend one graph for the whole tower keeps two preparer threads
    from encoding side by side (measured: 1.3x from two threads); block by block
    they reach 1.65x.
    """

    def __init__(self, block: nn.Module) -> None:
        super().__init__()
        self.block = block

    def __call__(self, *args, **kwargs) -> mx.array:
        out = self.block(*args, **kwargs)
        mx.eval(out)
        return out


class _BatchGenerator(BatchGenerator):
    """mlx-vlm's batch generator, reusing cached prefixes that hold image tokens.

    mlx-vlm 0.7.10 reuses a cached prefix only when it holds no image tokens and
    leaves a text-only suffix, so a page asked a second question would prefill its
    whole image again. Here every prompt enters as precomputed input embeddings (the
    image features included) and the cache is salted with the images' content hash
    from the first block on, so a prefix that ends inside an image is reused like any
    other and the rest of the image is prefilled from its embeddings.
    ``tests/integration/test_vision_engine.py`` checks that answers with and without
    the cache are identical.
    """

    def _apc_prefix_has_media_tokens(self, ids_list, prefix_len) -> bool:
        return False

    def _apc_suffix_is_text_only(self, ids_list, prefix_len) -> bool:
        return True


class _DecodeRoPE(MRoPERotaryEmbedding):
    """Multimodal RoPE that rotates a decode step's single token with ``mx.fast.rope``,
    and a prompt's tokens with two kernels per tensor.

    A generated token is text, and a text token's temporal, height and width positions
    are equal, so its multimodal rotation is the ordinary one at that position: one
    kernel for queries and one for keys, where mlx-vlm's path off Metal builds cos and
    sin and applies them with about a dozen small ops per layer (measured on an H100:
    docs/performance.md). A prompt (with its image tokens) gets cos and sin once per
    forward pass, as in mlx-vlm, and each layer applies them with ``_rotate``.
    """

    _pass: tuple | None = None  # (position_ids, cos, sin) of the current forward pass

    def apply_rotary(self, q, k, position_ids, *, unsqueeze_dim: int = 1, cast_output: bool = True):
        if q.shape[2] == 1 and unsqueeze_dim == 1:
            positions = position_ids[0] if position_ids.ndim == 3 else position_ids
            offset = positions[:, 0].astype(mx.int32)
            return tuple(
                mx.fast.rope(x, self.dim, traditional=False, base=self.base, scale=1.0, offset=offset) for x in (q, k)
            )
        if self._pass is None or self._pass[0] is not position_ids:  # each layer gets the same array
            # Set past nn.Module's __setattr__, which would make the arrays parameters.
            object.__setattr__(self, "_pass", (position_ids, *self(k, position_ids)))
        _, cos, sin = self._pass
        if unsqueeze_dim == 1 and cast_output and cos.shape[-1] == q.shape[-1] == k.shape[-1]:
            cos, sin = cos[:, None], sin[:, None]
            turn = _half_turn(q.shape[-1], q.dtype)
            return _rotate(q, cos, sin, turn), _rotate(k, cos, sin, turn)
        return apply_multimodal_rotary_pos_emb(
            q,
            k,
            cos,
            sin,
            mrope_section=self.mrope_section,
            unsqueeze_dim=unsqueeze_dim,
            style=self.style,
            cast_output=cast_output,
        )


@functools.lru_cache(maxsize=8)
def _half_turn(dim: int, dtype: mx.Dtype) -> mx.array:
    """The matrix that ``rotate_half`` is: ``x @ _half_turn(...) == concat([-x2, x1])``."""
    turn = np.zeros((dim, dim), np.float32)
    half = dim // 2
    turn[np.arange(half) + half, np.arange(half)] = -1
    turn[np.arange(half), np.arange(half) + half] = 1
    return mx.array(turn, dtype=dtype)


@functools.partial(mx.compile, shapeless=True)
def _rotate(x: mx.array, cos: mx.array, sin: mx.array, turn: mx.array) -> mx.array:
    """``x * cos + rotate_half(x) * sin`` in ``x``'s dtype: a matmul and one fused kernel.

    mlx-vlm's ``rotate_half`` slices and concatenates, which a shapeless compiled
    function cannot; multiplying by a signed permutation moves each value exactly.
    """
    return (x * cos + (x @ turn) * sin).astype(x.dtype)


def _fast_decode_rope(model: nn.Module) -> None:
    """Give the language model's attention layers ``_DecodeRoPE``.

    Only the chunked multimodal RoPE of Qwen2-VL and Qwen2.5-VL without attention scaling
    qualifies, and not where mlx-vlm already fuses the rotation (Metal).
    """
    for layer in getattr(getattr(model.language_model, "model", None), "layers", []):
        rope = getattr(getattr(layer, "self_attn", None), "rotary_emb", None)
        if (
            isinstance(rope, MRoPERotaryEmbedding)
            and rope.style == "chunked"
            and rope.attention_scaling == 1.0
            and not rope.fused_apply
        ):
            rope.__class__ = _DecodeRoPE
            rope.fused_apply = True  # the model then leaves rotation to each layer's apply_rotary


def _position_ids_on_the_host(language_model: nn.Module) -> None:
    """Compute the multimodal position ids of a one-row prompt with images in numpy.

    mlx-vlm's ``get_rope_index`` (Qwen2-VL, Qwen2.5-VL) walks the prompt with small mlx
    ops and reads a value back every few: on a GPU each read-back waits for the device.
    The positions are the same arithmetic on the host: text counts on from the last
    position, and an image's tokens take (frame, row, column) offsets after its text.
    Other prompts (videos, several rows, padding, none at all) take mlx-vlm's path.
    On the CPU machine, the embedding step of a page asked again took 0.4 ms instead of
    0.8-1.0 (``bench/vision_profile.py``); it has not been measured on a GPU.
    """
    config = language_model.config
    merge = config.vision_config.spatial_merge_size
    image, start = config.image_token_id, config.vision_start_token_id
    get_rope_index = language_model.get_rope_index

    def positions(input_ids, image_grid_thw=None, video_grid_thw=None, attention_mask=None):
        tokens = np.array(input_ids)
        if (
            image_grid_thw is None
            or video_grid_thw is not None
            or tokens.shape[0] != 1
            or (attention_mask is not None and not np.array(attention_mask).all())
        ):
            return get_rope_index(input_ids, image_grid_thw, video_grid_thw, attention_mask)
        tokens = tokens[0]
        images = int(np.sum(tokens[1:][tokens[:-1] == start] == image))
        pieces, done, next_position = [], 0, 0
        for t, h, w in np.array(image_grid_thw)[:images].tolist():
            found = done + int(np.argmax(tokens[done:] == image))
            text = found - done
            pieces.append(np.broadcast_to(np.arange(text) + next_position, (3, text)))
            rows, columns = h // merge, w // merge
            grid = np.indices((t, rows, columns)).reshape(3, -1)  # frame, row, column of each token
            pieces.append(grid + text + next_position)
            next_position = int(pieces[-1].max()) + 1
            done = found + t * rows * columns
        rest = len(tokens) - done
        pieces.append(np.broadcast_to(np.arange(rest) + next_position, (3, rest)))
        ids = np.concatenate(pieces, axis=1)
        deltas = mx.array([[int(ids.max()) + 1 - len(tokens)]], dtype=mx.int32)
        return mx.array(ids[:, None, :], dtype=input_ids.dtype), deltas

    language_model.get_rope_index = positions


def _one_chunk_at_most(*, inputs_embeds=None, **_) -> bool:
    """The language model's ``chunked_prefill_policy``: chunk only prompts longer than one chunk.

    mlx-vlm's batch prefills a prompt but its last token, then feeds the last token alone
    for the first logits: two forward passes, each costing the CPU 8-40 ms to launch on
    CUDA (docs/performance.md). Where the policy declines chunking it leaves the whole
    prompt to that last pass, which asks for the last position's logits only.
    """
    return inputs_embeds is None or inputs_embeds.shape[1] > PREFILL_STEP


_MROPE_LANGUAGE_MODELS = ("mlx_vlm.models.qwen2_vl.", "mlx_vlm.models.qwen2_5_vl.")  # whose get_rope_index we know
_PROCESSED = "mmserve.processed"  # in a request's first image's ``info``: the image processor's output


@dataclass(frozen=True)
class _Seen:
    """What the engine keeps of images it has seen: the encoder's output, and the image processor's."""

    features: Any  # an array, or a tuple of them (a family's ``encode``)
    processed: Mapping | None  # arrays by name (pixel values, grid); None if the model's processor bypassed it

    @property
    def nbytes(self) -> int:
        arrays = self.processed.values() if isinstance(self.processed, Mapping) else ()
        return sum(v.nbytes for _, v in tree_flatten(self.features)) + sum(getattr(v, "nbytes", 0) for v in arrays)


def _remember_preprocessing(image_processor) -> None:
    """Let the image processor hand back its output for images it has processed before.

    The engine puts a seen image set's earlier output in the first image's ``info`` and
    the processor returns it instead of resizing, normalizing and cutting the images into
    patches again; what it makes for new images it leaves there for the engine to keep.
    Every request calls the processor with the same options, so the images' content is
    the whole key. The class is derived, not wrapped, so that mlx-vlm's type checks see
    the original.

    The pixel values are kept as an mx array: mlx-vlm converts what is not one yet on
    every call. On an H100 that made preprocessing an image seen before 2.9-4.1 ms
    instead of 0.9-1.6 (``bench/vision_profile.py``).
    """
    base = type(image_processor)

    def __call__(self, images=None, **kwargs):
        # Only a call with the request's list of images (not one per image, nor nested lists).
        info = images[0].info if isinstance(images, list) and images and isinstance(images[0], Image.Image) else {}
        if info.get(_PROCESSED) is None:
            processed = base.__call__(self, images=images, **kwargs)
            if isinstance(processed.get("pixel_values"), np.ndarray):
                processed["pixel_values"] = mx.array(processed["pixel_values"])
            info[_PROCESSED] = processed
        return info[_PROCESSED]

    image_processor.__class__ = type(base.__name__, (base,), {"__call__": __call__})


def _sampling_processor(sampler):
    def sample_row(tokens, logits):
        logprobs = logits - mx.logsumexp(logits, axis=-1, keepdims=True)
        token = sampler(logprobs)
        keep = mx.arange(logits.shape[-1]) == token.reshape(-1, 1)
        return mx.where(keep, mx.zeros_like(logits), mx.full(logits.shape, -mx.inf, dtype=logits.dtype))

    return sample_row


class VisionEngine:
    kind = "vision"

    def __init__(
        self,
        path: str,
        *,
        max_batch: int = 16,
        prefix_cache_bytes: int = 0,
        kv_reuse: bool | None = None,
    ) -> None:
        quiet_transformers()
        self.checkpoint = _checkpoint_files(Path(path))
        self.adapter = adapter_for(self.checkpoint.model_type)
        if self.adapter.refuse is not None:
            raise UnservedFamilyError(self.adapter.refuse)
        with self.adapter.before_load(dict(self.checkpoint.config)) if self.adapter.before_load else nullcontext():
            self.model, self.processor = load(path)
        config = self.model.config
        if self.adapter.after_load is not None:
            self.adapter.after_load(self.model, self.processor)
        _fast_decode_rope(self.model)
        if any(c.__module__.startswith(_MROPE_LANGUAGE_MODELS) for c in type(self.model.language_model).__mro__):
            _position_ids_on_the_host(self.model.language_model)
        # A prompt of up to one chunk reaches its first token in one forward pass (see
        # ``_one_chunk_at_most``), where the model computes the head only for the last position.
        if logits_for_kept_positions(self.model.language_model):
            self.model.language_model.chunked_prefill_policy = _one_chunk_at_most
        # Reusing cached KV (mlx-vlm's prefix cache); by default not on CUDA, where a prompt's
        # prefill is faster than restoring mlx-vlm's KV blocks, with or without image tokens in
        # them (measured on an H100: docs/performance.md). The feature cache is kept either way.
        if kv_reuse is None:
            kv_reuse = backend() != "cuda"
        self.tokenizer = getattr(self.processor, "tokenizer", self.processor)
        # Replies are streamed with mlx-lm's detokenizer, as the text engine's are: text goes out
        # token by token. mlx-vlm's holds each word back until the next one starts, which kept a
        # reply's first text waiting for at least its second token.
        self.streaming = load_tokenizer(Path(path))
        self.max_batch = max_batch
        self.memory_limit = 0
        self.context_length = context_length(dict(self.checkpoint.config), model=self.model.language_model)
        self.weights_bytes = weights_bytes(self.model)
        self.vocab_size = vocab_size(dict(self.checkpoint.config), self.tokenizer)
        self.longest_token_chars = longest_token_chars(self.tokenizer)
        self.text_dtype = _text_dtype(self.model.language_model)
        # What a sequence's cache holds, measured from the language model's own caches.
        self.kv_layout = kv_layout(self.model.language_model)
        self.kv_bytes_per_token = self.kv_layout.marginal_bytes_per_token
        # The processor's image token where it names one (it is what it writes into the prompt).
        self.image_token_id = next(
            (
                value
                for value in (
                    getattr(self.processor, "image_token_id", None),
                    _token_id(self.tokenizer, getattr(self.processor, "image_token", None)),
                    _token_id(self.tokenizer, getattr(self.processor, "image_patch_token", None)),  # Molmo
                    getattr(config, "image_token_id", None),
                    getattr(config, "image_token_index", None),
                )
                if isinstance(value, int)
            ),
            None,
        )
        eos = config.eos_token_id if config.eos_token_id is not None else self.tokenizer.eos_token_id
        self.eos_token_ids = set(eos if isinstance(eos, list) else [eos])
        self.replies_tokenizer = self.streaming  # mlx-lm's wrapper: thinking and tool-call markers
        self.grammar_tokenizer = GrammarTokenizer(
            self.tokenizer, vocab_size=self.vocab_size, eos_token_ids=self.eos_token_ids
        )
        self.tool_format = tool_format(self.replies_tokenizer)
        self.add_special_tokens = should_add_special_tokens(config.model_type, self.processor)
        image_processor = getattr(self.processor, "image_processor", None)
        if image_processor is not None:
            _remember_preprocessing(image_processor)
        self.geometry = guards.families.geometry_for(self.checkpoint)
        self.geometry_check: dict = {}
        tower = getattr(self.model, "vision_tower", None)
        if mx.default_device().type == mx.DeviceType.cpu and isinstance(getattr(tower, "blocks", None), list):
            tower.blocks = [_Evaluated(block) for block in tower.blocks]
        # Encoder and image-processor outputs by image content: the same image asked again
        # skips both. A quarter of the prefix-cache bytes, the rest holding KV blocks; all of
        # them without KV reuse.
        self.features: OrderedDict[tuple, _Seen] = OrderedDict()
        self.features_lock = threading.Lock()  # preparer threads share it
        self.encoding: dict[tuple, threading.Event] = {}  # images a preparer thread is encoding now
        # mlx-vlm's automatic prefix cache: KV blocks keyed by tokens chained with the
        # images' content hash, so a page asked again prefills only the new question.
        kv_bytes = prefix_cache_bytes - prefix_cache_bytes // 4 if kv_reuse else 0
        self.feature_cache_bytes = prefix_cache_bytes - kv_bytes
        self.prefix_cache = APCManager(overrides={"memory_max_gb": kv_bytes / (1 << 30)}) if kv_bytes else None
        self.reset()

    def reset(self) -> None:
        self.reported_first: set[int] = set()  # uids whose first token went out early (see ``step``)
        self.generator = _BatchGenerator(
            self.model.language_model,
            self.processor,
            stop_tokens=sorted(self.eos_token_ids),
            completion_batch_size=self.max_batch,
            prefill_batch_size=min(self.max_batch, 8),
            compute_logprobs=False,
            apc_manager=self.prefix_cache,
        )

    def prompt(
        self, chat: list[dict], n_images: int, tools: list[dict] | None = None, template_kwargs: dict | None = None
    ) -> str:
        chat, tools = chat_for_template(self, chat, tools)
        kwargs = {**(template_kwargs or {}), **({"tools": tools} if tools else {})}
        return apply_chat_template(self.processor, self.model.config, chat, num_images=n_images, **kwargs)

    def count(
        self,
        chat: list[dict],
        n_images: int,
        tools: list[dict] | None = None,
        template_kwargs: dict | None = None,
        raw: str | list[int] | None = None,
    ) -> int:
        if raw is not None:
            raise ValueError("the vision engine takes chat messages, not a raw prompt")
        prompt = self.prompt(chat, n_images, tools, template_kwargs)
        ids = self.tokenizer.encode(prompt, add_special_tokens=self.add_special_tokens)
        return sum(1 for token in ids if token != self.image_token_id)

    def tokenize(self, request: messages.Tokenize) -> list[int]:
        """The prompt's ids with each image as its placeholder: how many tokens an image
        becomes is the guard's plan, which depends on the image."""
        if request.prompt is not None:
            return self.tokenizer.encode(request.prompt, add_special_tokens=request.add_special_tokens)
        prompt = self.prompt(request.messages, request.n_images, request.tools, request.template_kwargs)
        return self.tokenizer.encode(prompt, add_special_tokens=self.add_special_tokens)

    def detokenizer(self):
        return self.streaming.detokenizer

    def _embed(self, request: messages.Generate, *, cache_features: bool = True):
        key = tuple((im.sha256, im.width, im.height) for im in request.images)
        cacheable = bool(key) and cache_features and self.adapter.encode is not None
        seen = self._cached_or_claim(key) if cacheable else None
        try:
            return self._embed_with(request, key, seen, cache=cacheable)
        finally:
            if cacheable and seen is None:
                self._release(key)

    def _cached_or_claim(self, key: tuple) -> _Seen | None:
        """The cached features of these images; else None once no other thread is encoding
        them, and then the caller encodes them and calls ``_release``. A thread that finds
        them being encoded waits for that, so the choices of one request, or two requests
        for one page at once, run the encoder once."""
        while True:
            with self.features_lock:
                seen = self.features.get(key)
                if seen is not None:
                    self.features.move_to_end(key)
                    return seen
                busy = self.encoding.get(key)
                if busy is None:
                    self.encoding[key] = threading.Event()
                    return None
            busy.wait()

    def _release(self, key: tuple) -> None:
        with self.features_lock:
            self.encoding.pop(key).set()

    def _embed_with(self, request: messages.Generate, key: tuple, seen: _Seen | None, *, cache: bool):
        images = [Image.frombytes("RGB", (im.width, im.height), im.rgb) for im in request.images]
        encode = self.adapter.encode
        if seen is not None and seen.processed is not None:
            images[0].info[_PROCESSED] = seen.processed
        inputs = prepare_inputs(
            self.processor,
            images=images or None,
            prompts=self.prompt(request.messages, len(images), request.tools, request.template_kwargs),
            image_token_index=self.image_token_id,
            add_special_tokens=self.add_special_tokens,
            **request.processor_kwargs,
        )
        input_ids = inputs["input_ids"]
        pixel_values = inputs.get("pixel_values")
        extra = {k: v for k, v in inputs.items() if k not in ("input_ids", "pixel_values", "attention_mask")}
        if pixel_values is not None and encode is not None and seen is None:
            # Image features join the text embeddings in the language model's dtype (as HF's
            # Qwen2.5-VL does): a float32 tower would otherwise turn the whole prefill float32.
            features = _astype(encode(self.model, pixel_values, extra), self.text_dtype)
            mx.eval(features)
            seen = _Seen(features, images[0].info.get(_PROCESSED))
            if cache and seen.nbytes <= self.feature_cache_bytes:
                with self.features_lock:
                    self.features[key] = seen
                    while sum(s.nbytes for s in self.features.values()) > self.feature_cache_bytes:
                        self.features.popitem(last=False)
        if seen is not None:
            extra["cached_image_features"] = seen.features
        embed = self.model.get_input_embeddings(
            input_ids,
            pixel_values,
            mask=inputs.get("attention_mask"),
            **extra,
        )
        extra.pop("cached_image_features", None)
        prompt_kwargs = {**extra, **{k: v for k, v in embed.to_dict().items() if v is not None}}
        # The prefix cache's salt: the images' content and the model, and nothing that differs
        # between two questions: left to itself, mlx-vlm folds in the whole prompt's embeddings,
        # and no two prompts would ever share a prefix.
        image_hash = int(hashlib.sha256(repr(key).encode()).hexdigest()[:15], 16) if key else 0
        prompt_kwargs["_apc_semantic_hash"] = semantic_extra_hash(
            image_hash=image_hash, model=self.model.language_model, processor=self.processor
        )
        return input_ids, prompt_kwargs

    def prepare(self, request: messages.Generate):
        """Thread-safe per-request work: preprocess the images, run the encoder, build the embeddings."""
        input_ids, prompt_kwargs = self._embed(request)
        mx.eval(input_ids, prompt_kwargs)
        return request, input_ids, prompt_kwargs, make_logits(request, self)

    def insert(self, prepared) -> Admitted:
        request, input_ids, prompt_kwargs, processors = prepared
        sampler = make_sampler(request.sampling)
        if sampler is not None:
            processors.append(_sampling_processor(sampler))
        tokens = input_ids.squeeze(0).tolist()
        (uid,) = self.generator.insert(
            [tokens],
            max_tokens=[request.max_tokens],
            prompt_kwargs=[prompt_kwargs],
            logits_processors=[processors or None],
        )
        return Admitted(
            uid=uid,
            prompt_tokens=len(tokens),
            cached_tokens=self._cached_prefix(tokens, prompt_kwargs),
            parts=reply_parts(self, request.tools, tokens, request.parallel_tool_calls),
            logprobs=recorder_in(processors),
        )

    def _cached_prefix(self, tokens: list[int], prompt_kwargs: dict) -> int:
        """Prompt tokens the prefix cache holds for this prompt: what the batch will not prefill."""
        if self.prefix_cache is None:
            return 0
        blocks, cached = self.prefix_cache.lookup_prefix(tokens[:-1], extra_hash=prompt_kwargs["_apc_semantic_hash"])
        self.prefix_cache.release(blocks)
        return cached

    @property
    def prefix_cache_bytes(self) -> int:
        kv = self.prefix_cache.resident_bytes() if self.prefix_cache is not None else 0
        with self.features_lock:
            return kv + sum(s.nbytes for s in self.features.values())

    def remove(self, uid: int) -> None:
        self.generator.remove(uid)
        self.reported_first.discard(uid)

    def step(self) -> list[tuple[int, int, str | None]]:
        idle = len(self.generator._generation_batch) == 0
        _, generated = self.generator.next()
        events = []
        for r in generated:
            if r.uid in self.reported_first:  # its first token, already reported
                self.reported_first.discard(r.uid)
            else:
                events.append((r.uid, r.token, r.finish_reason))
        return (events + self._first_tokens()) if idle else events

    def _first_tokens(self) -> list[tuple[int, int, None]]:
        """The first tokens of requests that just finished prefilling into an idle batch.

        mlx-vlm's batch reports a token only after launching the next decode step, which on
        a GPU backend costs the CPU 7-15 ms (measured on an H100: docs/performance.md). With
        no other sequences to keep fed, a first token goes out as soon as it is computed.
        Tokens that end their request are left to the batch, which reports why.
        """
        batch = self.generator._generation_batch
        if len(batch) == 0 or batch._next_tokens is None:
            return []
        stops = self.generator.tokenizer.stopping_criteria
        events = []
        for uid, token, limit in zip(batch.uids, batch._next_tokens.tolist(), batch.max_tokens):
            if limit > 1 and not stops(token):
                self.reported_first.add(uid)
                events.append((uid, token, None))
        return events

    def calibrate(self, max_side: int, *, time_budget_s: float = 10.0) -> list[list[int]]:
        """Measure what a one-image request adds to the weights, at a few square sizes up to ``max_side``.

        Each sample is the encoder path's extra peak (preprocessing, encoder, merged
        embeddings) plus the fixed cost of running a request through the language
        model (prefill and a decode step, less its KV cache, which the guard counts
        per token). Larger sizes are extrapolated by the guard's quadratic fit rather
        than measured when measuring them would take longer than ``time_budget_s`` or
        come near the memory limit. Returns ``[width, height, patches, bytes]`` rows.
        """
        sizes = guards.calibration_sizes(self._sizes, max_side)
        self._measure(*sizes[0])  # warm-up: kernels compile on first use
        fixed = self._request_overhead()
        samples, spent, took = [], 0.0, 0.0
        for index, (width, height) in enumerate(sizes):
            last = index == len(sizes) - 1
            if len(samples) >= 3:
                _, _, last_patches, last_bytes = samples[-1]
                if self._guess(width, height, samples[-1]) > self._calibration_room():
                    # Measure the largest square that surely fits instead, and stop there: the guard
                    # then extrapolates as little as memory allows (and lifts the curve beyond it).
                    side = next(
                        (
                            s
                            for s in range(width, 0, -16)
                            if self._guess(*self._sizes(s, s), samples[-1]) <= self._calibration_room()
                        ),
                        0,
                    )
                    width, height = self._sizes(side, side) if side else (0, 0)
                    if not side or self._patches(width, height) < 1.15 * last_patches:
                        break
                    last = True
                # The largest size is measured whatever the time: the guard should not extrapolate to it.
                elif not last and spent + (self._patches(width, height) / last_patches) ** 2 * took > time_budget_s:
                    continue
            if samples and self._patches(width, height) == samples[-1][2]:
                # The processor sends this size at the last one's patches (a fixed resolution, or
                # images scaled to one side): the same encoder work, so the same cost.
                samples.append([width, height, *samples[-1][2:]])
                if last:
                    break
                continue
            self._measure(width, height)  # a new size compiles new kernels on GPU backends: time the second run
            started = time.monotonic()
            count, extra = self._measure(width, height)
            took = time.monotonic() - started
            spent += took
            samples.append([width, height, count, extra + fixed])
            if last:
                break
        mx.reset_peak_memory()
        return samples

    def _calibration_room(self) -> float:
        """The most one calibration image may add: half of what the weights leave of the limit."""
        return 0.5 * (self.memory_limit - self.weights_bytes) if self.memory_limit else float("inf")

    def _guess(self, width: int, height: int, sample: list[int]) -> float:
        """A pessimistic guess of an image's cost from a measured sample: growing with p squared."""
        _, _, patches, measured = sample
        return measured * (self._patches(width, height) / patches) ** 2

    def _sizes(self, width: int, height: int) -> tuple[int, int]:
        """The size the guard sends an image of this size at (the processor's grid where known)."""
        return self.geometry.snap(width, height) if self.geometry is not None else (width, height)

    def _patches(self, width: int, height: int) -> int:
        """The cost model's p: the geometry's patches, or else the image tokens the processor makes."""
        if self.geometry is not None:
            return self.geometry.layout(width, height).patches
        return self.image_tokens([(width, height)])[0][0]

    def _measure(self, width: int, height: int) -> tuple[int, int]:
        """(patches, extra peak bytes) of embedding one random image of this size, as a request does:
        pixel values, the encoder, and the merged input embeddings."""
        image = _noise_image(width, height, f"calibration-{width}x{height}")
        request = messages.Generate(
            id="calibration",
            messages=[{"role": "user", "content": [{"type": "image"}]}],
            images=[image],
            max_tokens=1,
            processor_kwargs=self.geometry.processor_kwargs(width, height) if self.geometry is not None else {},
        )
        mx.clear_cache()  # cached buffers would hide new allocations
        base = mx.get_active_memory()
        mx.reset_peak_memory()
        input_ids, prompt_kwargs = self._embed(request, cache_features=False)
        mx.eval(input_ids, prompt_kwargs)
        extra = mx.get_peak_memory() - base
        del input_ids, prompt_kwargs
        mx.clear_cache()
        return self._patches(width, height), int(extra)

    def image_tokens(self, sizes: list[tuple[int, int]], processor_kwargs: dict | None = None) -> list[tuple[int, int]]:
        """For each size, (image tokens, all prompt tokens) that the real processor makes of one
        blank image of that size: the count where no geometry is trusted, and the check of one."""
        chat = [{"role": "user", "content": [{"type": "image"}, {"type": "text", "text": "x"}]}]
        prompt = self.prompt(chat, 1)
        text = self.count(chat, 1)
        counts = []
        for width, height in sizes:
            inputs = prepare_inputs(
                self.processor,
                images=[Image.new("RGB", (width, height), (127, 127, 127))],
                prompts=prompt,
                image_token_index=self.image_token_id,
                add_special_tokens=self.add_special_tokens,
                **(processor_kwargs if processor_kwargs is not None else {}),
            )
            ids = np.array(inputs["input_ids"]).reshape(-1)
            # Negative ids are image positions too (Phi-3-vision numbers its images -1, -2, ...).
            tokens = int(np.sum((ids == self.image_token_id) | (ids < 0)))
            counts.append((tokens, len(ids) - text))
        return counts

    def check_geometry(self, max_side: int) -> dict:
        """Check the guard's geometry against the real processor at a few sizes the guard plans:
        small, a photo, a page fitted to ``max_side``, and an extreme aspect ratio. Measures the
        tokens the processor adds around every image (``wrapper_tokens``). On any disagreement the
        geometry is dropped and tokens are counted with the processor per request."""
        if self.geometry is None:
            self.geometry_check = {
                "ok": False,
                "reason": f"no image geometry for the model_type {self.model.config.model_type!r}",
            }
            return self.geometry_check
        rows, wrappers = [], set()
        try:
            for width, height in ((200, 150), (1024, 768), (2550, 3300), (2000, 120)):
                planned = guards.plan_image(width, height, max_side=max_side, spec=self.geometry)  # no wrapper yet
                ((tokens, prompt),) = self.image_tokens([planned.resized], planned.processor_kwargs)
                wrappers.add(prompt - planned.prompt_tokens)
                rows.append({"size": list(planned.resized), "planned": planned.tokens, "real": tokens})
        except Exception as exc:  # a geometry that cannot even run is as wrong as one that miscounts
            rows.append({"error": f"{type(exc).__name__}: {exc}"})
        ok = all(row.get("planned") == row.get("real") for row in rows) and len(wrappers) == 1
        self.geometry_check = {"ok": ok, "family": self.geometry.family, "sizes": rows}
        if ok:
            self.geometry = self.geometry.with_wrapper(wrappers.pop())
            self.geometry_check["wrapper_tokens"] = self.geometry.wrapper_tokens
        else:
            self.geometry_check["reason"] = "the guard's image geometry disagrees with the processor"
            self.geometry = None
        return self.geometry_check

    def _request_overhead(self) -> int:
        """Peak bytes a short text-only request adds beyond its KV cache (workspaces, activations)."""
        request = messages.Generate(id="calibration", messages=[{"role": "user", "content": "Hello"}], max_tokens=2)
        generator = BatchGenerator(  # a private batch: calibration leaves no prefix-cache entries
            self.model.language_model, self.processor, stop_tokens=sorted(self.eos_token_ids), compute_logprobs=False
        )
        peaks = []
        for _ in range(2):  # the first run compiles kernels on GPU backends
            input_ids, prompt_kwargs = self._embed(request, cache_features=False)
            mx.eval(input_ids, prompt_kwargs)
            mx.clear_cache()
            base = mx.get_active_memory()
            mx.reset_peak_memory()
            generator.insert([input_ids.squeeze(0).tolist()], max_tokens=[2], prompt_kwargs=[prompt_kwargs])
            tokens = input_ids.shape[-1] + 2
            del input_ids, prompt_kwargs
            while generator.has_work:
                generator.next()
            peaks.append(mx.get_peak_memory() - base - tokens * self.kv_bytes_per_token)
        generator.close()
        mx.clear_cache()
        return max(int(peaks[-1]), 0)

    def warm_up(self, batch_sizes: list[int], image_side: int = 448) -> None:
        """Run bursts of short requests, and one image request, so the first real ones do not pay
        for kernel compilation (an image's first prefill took seconds on CUDA)."""
        warm_up(self, batch_sizes)
        image = _noise_image(image_side, image_side, "warm-up")
        content = [{"type": "image"}, {"type": "text", "text": "warm up"}]
        request = messages.Generate(
            id="warm-up", messages=[{"role": "user", "content": content}], images=[image], max_tokens=3
        )
        prepared = self.prepare(request)
        self.features.clear()  # leave no warm-up entries behind
        uid = self.insert(prepared).uid
        while not any(u == uid and reason is not None for u, _, reason in self.step()):
            pass


def _astype(features, dtype: mx.Dtype):
    """Features (an array or a tuple of them) in ``dtype``."""
    return tree_map(lambda x: x.astype(dtype) if mx.issubdtype(x.dtype, mx.floating) else x, features)


def _token_id(tokenizer, token) -> int | None:
    """The id of a token given as text (a processor's ``image_token``), if the tokenizer has it."""
    if not isinstance(token, str):
        return None
    found = tokenizer.convert_tokens_to_ids(token)
    return found if isinstance(found, int) and found != tokenizer.unk_token_id else None


def _text_dtype(language_model: nn.Module) -> mx.Dtype:
    """The dtype the language model computes in: its token embedding's (the scales' where quantized)."""
    for _, module in language_model.named_modules():
        if isinstance(module, nn.QuantizedEmbedding):
            return module.scales.dtype
        if isinstance(module, nn.Embedding):
            return module.weight.dtype
    return mx.float16


def _checkpoint_files(path: Path) -> guards.families.Checkpoint:
    """The checkpoint's config.json and processor configs, which decide its image geometry."""

    def read(name: str) -> dict:
        file = path / name
        return json.loads(file.read_text(encoding="utf-8")) if file.is_file() else {}

    return guards.families.Checkpoint(
        config=read("config.json"),
        preprocessor=read("preprocessor_config.json"),
        processor=read("processor_config.json"),
    )


def _noise_image(width: int, height: int, name: str) -> messages.ImageData:
    """A random RGB image, the same for the same size: calibration and warm-up inputs."""
    pixels = np.random.default_rng(0).integers(0, 256, size=(height, width, 3), dtype=np.uint8)
    return messages.ImageData(width, height, pixels.tobytes(), name)
