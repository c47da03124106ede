"""Log-probabilities of a request's tokens (``logprobs``, ``top_logprobs``).

``TokenLogprobs`` is the last of a request's logits processors: it keeps, for each position,
the distribution the token there is drawn from (after the request's penalties, bias and
grammar; before temperature), and changes nothing. Being a processor, it works the same in
both engines' batches. At temperature 0 the token chosen is the most likely of that
distribution, so its logprob is the largest of its ``top_logprobs``.
"""

from __future__ import annotations

import mlx.core as mx

__all__ = ["TokenLogprobs", "recorder_in"]

FLOOR = -9999.0  # what OpenAI reports for a token that cannot be drawn (JSON has no -inf)


class TokenLogprobs:
    def __init__(self, top: int, decode) -> None:
        self.top = top
        self.decode = decode  # token ids -> text
        self.start: int | None = None  # the context's length at the first call: the prompt
        self.rows: dict[int, mx.array] = {}  # by position after the prompt

    def __call__(self, context: mx.array, logits: mx.array) -> mx.array:
        length = context.shape[-1]
        if self.start is None:
            self.start = length
        self.rows[length - self.start] = logits - mx.logsumexp(logits, axis=-1, keepdims=True)
        return logits

    def take(self, position: int, token: int) -> dict:
        """The entry for the token sampled at ``position`` (0: the reply's first), in OpenAI's shape."""
        for earlier in [p for p in self.rows if p < position]:
            del self.rows[earlier]
        row = self.rows.pop(position).reshape(-1)
        entry = self._entry(token, row[token].item())
        if self.top:
            ids = mx.argpartition(-row, self.top - 1)[: self.top]
            values = row[ids].tolist()
            ranked = sorted(zip(values, ids.tolist()), key=lambda pair: -pair[0])
            entry["top_logprobs"] = [self._entry(t, v) for v, t in ranked]
        else:
            entry["top_logprobs"] = []
        return entry

    def _entry(self, token: int, logprob: float) -> dict:
        text = self.decode([token])
        return {"token": text, "logprob": max(logprob, FLOOR), "bytes": list(text.encode())}


def recorder_in(processors: list) -> TokenLogprobs | None:
    return next((p for p in processors if isinstance(p, TokenLogprobs)), None)
