"""Constrained decoding: a sequence's tokens kept inside a grammar, with llguidance.

A ``Grammar`` is one sequence's logits processor. Each call it first feeds the matcher
the tokens sampled since its last call, then masks every token the grammar does not allow
next. It works on every mlx backend: the mask is unpacked on the host and applied with
``mx.where`` (mlx-vlm's and llguidance's own mask kernels are Metal-only).

The grammar text comes from ``grammar_for_schema`` in the HTTP process, which also
checks it; workers only compile it against their tokenizer.
"""

from __future__ import annotations

import threading

import llguidance
import llguidance.hf
import llguidance.numpy
import mlx.core as mx
import numpy as np

__all__ = ["Grammar", "GrammarTokenizer"]


class GrammarTokenizer:
    """An engine's tokenizer as llguidance sees it, built on first use (walking the whole
    vocabulary takes about a second for 150k tokens) and shared by its sequences."""

    def __init__(self, hf_tokenizer, *, vocab_size: int, eos_token_ids: set[int]) -> None:
        self._source = hf_tokenizer
        self._vocab_size = vocab_size
        self._eos = sorted(eos_token_ids)
        self._built: llguidance.LLTokenizer | None = None
        self._lock = threading.Lock()  # preparer threads build it

    def get(self) -> llguidance.LLTokenizer:
        with self._lock:
            if self._built is None:
                self._built = llguidance.hf.from_tokenizer(
                    self._source, n_vocab=max(self._vocab_size, len(self._source)), eos_token=self._eos
                )
            return self._built


class Grammar:
    """A logits processor holding one sequence to a grammar.

    The first call sees the prompt (``context`` is every token of the sequence so far); each
    later call feeds the matcher what was sampled since, so calling it again for the same
    position changes nothing. When the grammar is complete only end-of-sequence is allowed;
    a reply cut off by ``max_tokens`` is a prefix of a valid one.
    """

    def __init__(self, grammar: str, tokenizer: llguidance.LLTokenizer) -> None:
        self.matcher = llguidance.LLMatcher(tokenizer, grammar)
        if self.matcher.is_error():
            raise ValueError(f"the grammar cannot be used: {self.matcher.get_error()}")
        self.words = llguidance.numpy.allocate_token_bitmask(1, tokenizer.vocab_size)
        self.start: int | None = None  # the context's length at the first call: the prompt
        self.fed = 0  # tokens after the prompt the matcher has consumed

    def __call__(self, context: mx.array, logits: mx.array) -> mx.array:
        length = context.shape[-1]
        if self.start is None:
            self.start = length
        new = self.start + self.fed
        if length > new:
            tokens = context.reshape(-1)[new:].tolist()
            self.fed += len(tokens)
            # Once complete, the matcher takes nothing more: a batch that computes a step ahead
            # may still feed it the end-of-sequence token it chose.
            if not self.matcher.is_stopped() and not self.matcher.consume_tokens(tokens):
                raise ValueError(f"a token outside the grammar was sampled: {self.matcher.get_error()}")
        llguidance.numpy.fill_next_token_bitmask(self.matcher, self.words, 0)
        allowed = np.unpackbits(self.words.view(np.uint8), bitorder="little")
        width = logits.shape[-1]
        allowed = allowed[:width] if allowed.size >= width else np.pad(allowed, (0, width - allowed.size))
        return mx.where(mx.array(allowed.astype(bool)), logits, mx.array(-mx.inf, dtype=logits.dtype))
