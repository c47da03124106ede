"""What every text family shares: a chat style (special tokens and a template in the family's
own format) and the writer of a text checkpoint (config, random weights, tokenizer)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from ..family import Vocabulary, write_random_model, write_tokenizer

__all__ = ["STYLES", "ChatStyle", "text_config", "write_text"]


@dataclass(frozen=True)
class ChatStyle:
    """A family's turn format: ``turn`` formats one message (``{role}``, ``{content}``),
    ``prompt`` opens the assistant's turn; ``eos`` ends generation."""

    vocab: Vocabulary
    turn: str
    prompt: str
    eos: tuple[str, ...]
    bos: str | None = None
    roles: tuple[tuple[str, str], ...] = ()  # role renames, e.g. assistant -> model
    # The assistant's opening when a thinking template is asked not to think (enable_thinking=false).
    unthinking: str | None = None

    def template(self) -> str:
        rename = "".join(f"{{%- if role == '{a}' %}}{{%- set role = '{b}' %}}{{%- endif %}}" for a, b in self.roles)
        turn = self.turn.replace("{role}", "' + role + '").replace("{content}", "' + message['content'] + '")
        return (
            ("{{- bos_token }}" if self.bos else "")
            + "{%- for message in messages %}{%- set role = message['role'] %}"
            + rename
            + "{{- '"
            + turn
            + "' }}{%- endfor %}{%- if add_generation_prompt %}"
            + self._opening()
            + "{%- endif %}"
        )

    def _opening(self) -> str:
        if self.unthinking is None:
            return "{{- '" + self.prompt + "' }}"
        return (
            "{%- if enable_thinking is defined and enable_thinking is false %}{{- '"
            + self.unthinking
            + "' }}{%- else %}{{- '"
            + self.prompt
            + "' }}{%- endif %}"
        )


def _style(special, turn, prompt, eos, bos=None, roles=(), unthinking=None) -> ChatStyle:
    return ChatStyle(Vocabulary(special=tuple(special)), turn, prompt, tuple(eos), bos, tuple(roles), unthinking)


STYLES = {
    "chatml": _style(
        ("<|endoftext|>", "<|im_start|>", "<|im_end|>"),
        "<|im_start|>{role}\\n{content}<|im_end|>\\n",
        "<|im_start|>assistant\\n",
        ("<|im_end|>", "<|endoftext|>"),
    ),
    # Qwen3's thinking checkpoints (Qwen3-*-Thinking-2507): the template opens the model's
    # thinking block itself, or closes it empty when asked not to think.
    "chatml_thinking": _style(
        ("<|endoftext|>", "<|im_start|>", "<|im_end|>", "<think>", "</think>"),
        "<|im_start|>{role}\\n{content}<|im_end|>\\n",
        "<|im_start|>assistant\\n<think>\\n",
        ("<|im_end|>", "<|endoftext|>"),
        unthinking="<|im_start|>assistant\\n<think>\\n\\n</think>\\n\\n",
    ),
    "llama3": _style(
        ("<|begin_of_text|>", "<|end_of_text|>", "<|start_header_id|>", "<|end_header_id|>", "<|eot_id|>"),
        "<|start_header_id|>{role}<|end_header_id|>\\n\\n{content}<|eot_id|>",
        "<|start_header_id|>assistant<|end_header_id|>\\n\\n",
        ("<|eot_id|>", "<|end_of_text|>"),
        bos="<|begin_of_text|>",
    ),
    "llama4": _style(
        ("<|begin_of_text|>", "<|end_of_text|>", "<|header_start|>", "<|header_end|>", "<|eot|>"),
        "<|header_start|>{role}<|header_end|>\\n\\n{content}<|eot|>",
        "<|header_start|>assistant<|header_end|>\\n\\n",
        ("<|eot|>", "<|end_of_text|>"),
        bos="<|begin_of_text|>",
    ),
    "mistral": _style(
        ("<unk>", "<s>", "</s>", "[INST]", "[/INST]"),
        "[INST]{content}[/INST]",
        "",
        ("</s>",),
        bos="<s>",
    ),
    "gemma": _style(
        ("<pad>", "<eos>", "<bos>", "<start_of_turn>", "<end_of_turn>"),
        "<start_of_turn>{role}\\n{content}<end_of_turn>\\n",
        "<start_of_turn>model\\n",
        ("<eos>", "<end_of_turn>"),
        bos="<bos>",
        roles=(("assistant", "model"),),
    ),
    "phi3": _style(
        ("<|endoftext|>", "<|user|>", "<|assistant|>", "<|system|>", "<|end|>"),
        "<|{role}|>\\n{content}<|end|>\\n",
        "<|assistant|>\\n",
        ("<|end|>", "<|endoftext|>"),
    ),
    "harmony": _style(
        ("<|startoftext|>", "<|endoftext|>", "<|start|>", "<|message|>", "<|end|>", "<|return|>", "<|channel|>"),
        "<|start|>{role}<|message|>{content}<|end|>",
        "<|start|>assistant",
        ("<|return|>", "<|endoftext|>"),
    ),
    "deepseek": _style(
        ("<｜begin▁of▁sentence｜>", "<｜end▁of▁sentence｜>", "<｜User｜>", "<｜Assistant｜>"),
        "<｜{role}｜>{content}",
        "<｜Assistant｜>",
        ("<｜end▁of▁sentence｜>",),
        bos="<｜begin▁of▁sentence｜>",
        roles=(("user", "User"), ("assistant", "Assistant"), ("system", "User")),
    ),
    "cohere": _style(
        ("<PAD>", "<BOS_TOKEN>", "<|END_OF_TURN_TOKEN|>", "<|START_OF_TURN_TOKEN|>", "<|USER_TOKEN|>", "<|CHATBOT_TOKEN|>", "<|SYSTEM_TOKEN|>"),
        "<|START_OF_TURN_TOKEN|><|{role}|>{content}<|END_OF_TURN_TOKEN|>",
        "<|START_OF_TURN_TOKEN|><|CHATBOT_TOKEN|>",
        ("<|END_OF_TURN_TOKEN|>",),
        bos="<BOS_TOKEN>",
        roles=(("user", "USER_TOKEN"), ("assistant", "CHATBOT_TOKEN"), ("system", "SYSTEM_TOKEN")),
    ),
    "granite": _style(
        ("<|end_of_text|>", "<|start_of_role|>", "<|end_of_role|>"),
        "<|start_of_role|>{role}<|end_of_role|>{content}<|end_of_text|>\\n",
        "<|start_of_role|>assistant<|end_of_role|>",
        ("<|end_of_text|>",),
    ),
}


def text_config(style: str, **fields) -> dict:
    """A text model's config.json: ``fields`` plus the vocabulary and special-token ids of ``style``."""
    chat = STYLES[style]
    eos = [chat.vocab[t] for t in chat.eos]
    config = {"vocab_size": chat.vocab.size, "eos_token_id": eos if len(eos) > 1 else eos[0], "torch_dtype": "float32"}
    if chat.bos:
        config["bos_token_id"] = chat.vocab[chat.bos]
    return {**config, **fields}


def write_text(directory: Path, seed: int, config: dict, style: str) -> None:
    """Write a text checkpoint: config.json, random weights from mlx-lm's model class, and a
    tokenizer with ``style``'s special tokens and chat template."""
    chat = STYLES[style]
    write_random_model(directory, config, kind="text", seed=seed)
    write_tokenizer(
        directory,
        chat.vocab,
        chat_template=chat.template(),
        eos=chat.eos[0],
        bos=chat.bos,
        pad=chat.vocab.special[0],
        add_bos=False,
    )
