"""The text engine: an mlx-lm model behind mlx-lm's continuous BatchGenerator."""

from __future__ import annotations

from mlx_lm import load
from mlx_lm.generate import BatchGenerator

from . import messages
from .common import Admitted, kv_bytes_per_token, make_logits, make_sampler, weights_bytes

__all__ = ["TextEngine"]


class TextEngine:
    kind = "text"

    def __init__(self, path: str, *, max_batch: int = 16) -> None:
        self.model, self.tokenizer = load(path)
        self.max_batch = max_batch
        self.memory_limit = 0
        config = self.model.args
        self.context_length = int(getattr(config, "max_position_embeddings", 0) or 4096)
        self.weights_bytes = weights_bytes(self.model)
        dtype = self.model.model.embed_tokens.weight.dtype
        self.kv_bytes_per_token = kv_bytes_per_token(config, dtype)
        self.eos_token_ids = set(self.tokenizer.eos_token_ids)
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

    def insert(self, request: messages.Generate) -> Admitted:
        prompt = self.encode(request.messages)
        (uid,) = self.generator.insert(
            [prompt],
            max_tokens=[request.max_tokens],
            samplers=[make_sampler(request.sampling)],
            logits_processors=[make_logits(request.sampling)],
        )
        return Admitted(uid=uid, prompt_tokens=len(prompt))

    def remove(self, uid: int) -> None:
        self.generator.remove([uid])

    def step(self) -> list[tuple[int, int, str | None]]:
        _, generated = self.generator.next()
        return [(r.uid, r.token, r.finish_reason) for r in generated]

    def calibrate(self, max_side: int) -> list:
        return []
