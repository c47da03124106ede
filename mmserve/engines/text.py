"""The text engine: an mlx-lm model behind mlx-lm's continuous BatchGenerator."""

from __future__ import annotations

from mlx_lm import load
from mlx_lm.generate import BatchGenerator
from mlx_lm.models.cache import LRUPromptCache, can_trim_prompt_cache, trim_prompt_cache

from . import messages
from .common import Admitted, kv_bytes_per_token, make_logits, make_sampler, warm_up, weights_bytes

__all__ = ["TextEngine"]


class TextEngine:
    kind = "text"

    def __init__(self, path: str, *, max_batch: int = 16, prefix_cache_bytes: int = 256 << 20) -> None:
        self.model, self.tokenizer = load(path)
        self.max_batch = max_batch
        self.memory_limit = 0
        config = self.model.args
        self.context_length = int(getattr(config, "max_position_embeddings", 0) or 4096)
        self.weights_bytes = weights_bytes(self.model)
        dtype = self.model.model.embed_tokens.weight.dtype
        self.kv_bytes_per_token = kv_bytes_per_token(config, dtype)
        self.eos_token_ids = set(self.tokenizer.eos_token_ids)
        # KV of finished requests, keyed by their tokens: a later prompt sharing a prefix
        # (multi-turn chat, a common system prompt) prefills only what is new.
        self.prefix_cache = LRUPromptCache(max_size=256, max_bytes=prefix_cache_bytes) if prefix_cache_bytes else None
        self.reset()

    def reset(self) -> None:
        self.generator = BatchGenerator(
            self.model,
            stop_tokens=[[t] for t in sorted(self.eos_token_ids)],
            completion_batch_size=self.max_batch,
            prefill_batch_size=min(self.max_batch, 8),
        )

    def encode(self, chat: list[dict]) -> list[int]:
        return self.tokenizer.apply_chat_template(chat, add_generation_prompt=True)

    def count(self, chat: list[dict], n_images: int) -> int:
        return len(self.encode(chat))

    def detokenizer(self):
        return self.tokenizer.detokenizer

    def _cached_prefix(self, prompt: list[int]) -> tuple[list | None, int]:
        """The KV cache of the longest cached prefix of ``prompt`` and its length."""
        if self.prefix_cache is None:
            return None, 0
        cache, rest = self.prefix_cache.fetch_nearest_cache(self.kind, prompt)
        if cache is None:
            return None, 0
        if not rest:  # the whole prompt is cached: recompute its last token to get logits
            if not can_trim_prompt_cache(cache):
                return None, 0
            trim_prompt_cache(cache, 1)
            rest = prompt[-1:]
        return cache, len(prompt) - len(rest)

    def prepare(self, request: messages.Generate) -> tuple[messages.Generate, list[int]]:
        """Thread-safe per-request work: the templated prompt's tokens."""
        return request, self.encode(request.messages)

    def insert(self, prepared: tuple[messages.Generate, list[int]]) -> Admitted:
        request, prompt = prepared
        cache, cached = self._cached_prefix(prompt)
        (uid,) = self.generator.insert(
            [prompt[cached:]],
            max_tokens=[request.max_tokens],
            caches=[cache] if cache is not None else None,
            all_tokens=[prompt[:cached]],
            samplers=[make_sampler(request.sampling)],
            logits_processors=[make_logits(request.sampling)],
        )
        return Admitted(uid=uid, prompt_tokens=len(prompt), cached_tokens=cached)

    def remove(self, uid: int) -> None:
        self.generator.remove([uid])

    def step(self) -> list[tuple[int, int, str | None]]:
        _, generated = self.generator.next()
        if self.prefix_cache is not None:
            for r in generated:
                if r.finish_reason is not None and r.prompt_cache is not None:
                    self.prefix_cache.insert_cache(self.kind, r.all_tokens[:], r.prompt_cache)
        return [(r.uid, r.token, r.finish_reason) for r in generated]

    @property
    def prefix_cache_bytes(self) -> int:
        return self.prefix_cache.nbytes if self.prefix_cache is not None else 0

    def calibrate(self, max_side: int) -> list:
        return []

    def warm_up(self, batch_sizes: list[int]) -> None:
        """Run bursts of short requests so the first real ones do not pay for kernel compilation."""
        prefix_cache, self.prefix_cache = self.prefix_cache, None  # leave no warm-up entries behind
        warm_up(self, batch_sizes)
        self.prefix_cache = prefix_cache
