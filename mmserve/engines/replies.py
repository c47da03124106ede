"""A reply's text split into the answer, the model's thinking and its tool calls.

mlx-lm's ``TextStateMachine`` follows the markers (``<think>`` ... ``</think>``,
``<tool_call>`` ... ``</tool_call>``) through decoded text, whatever tokens spell them, and
strips them. Tool-call text is parsed with the parser mlx-lm picked for the model's chat
template (``mlx_lm.tool_parsers``); a call that does not parse stays in the answer, so
nothing the model wrote is lost.

A model whose template declares no tool-call format (Qwen2.5-VL's, LLaVA's, many vision
templates) is offered tools in the Hermes format, which the Qwen 2.5 family's own templates
write: the tools described in the system message, calls as JSON objects between
``<tool_call>`` markers, results as ``<tool_response>`` blocks in a user turn
(``hermes_chat``).
"""

from __future__ import annotations

import importlib
import json
import uuid

import structlog
from mlx_lm.generate import TextStateMachine

__all__ = ["HERMES", "ReplyParts", "hermes_chat", "prompt_opens_thinking", "special_tokens", "tool_format"]

log = structlog.get_logger("mmserve.worker")

# What a template without a format of its own is offered: mlx-lm's json_tools parser and markers.
HERMES = {"parser": "json_tools", "start": "<tool_call>", "end": "</tool_call>"}
_HERMES_PROMPT = (
    "# Tools\n\nYou may call one or more functions to assist with the user query.\n\n"
    "You are provided with function signatures within <tools></tools> XML tags:\n<tools>\n{tools}\n</tools>\n\n"
    "For each function call, return a json object with function name and arguments within "
    '<tool_call></tool_call> XML tags:\n<tool_call>\n{{"name": <function-name>, "arguments": '
    "<args-json-object>}}\n</tool_call>"
)


def tool_format(tokenizer) -> dict:
    """How the model calls tools: the parser (mlx-lm's for its template, or Hermes'), the
    markers around a call, how llguidance's lark spells each (``grammar_start``,
    ``grammar_end``: a special token, which stands for no text there, by its id), and whether
    the template renders tools itself (``template``)."""
    declared = tokenizer.has_tool_calling
    if declared:
        start, end = tokenizer.tool_call_start, tokenizer.tool_call_end or ""
        parser = tokenizer.tool_parser.__module__.rsplit(".", 1)[-1]
    else:
        start, end, parser = HERMES["start"], HERMES["end"], HERMES["parser"]
    special = special_tokens(tokenizer._tokenizer)

    def spelling(marker: str) -> str:
        ids = tokenizer.encode(marker, add_special_tokens=False) if marker else []
        return f"<[{ids[0]}]>" if len(ids) == 1 and ids[0] in special else json.dumps(marker)

    return {
        "parser": parser,
        "start": start,
        "end": end,
        "grammar_start": spelling(start),
        "grammar_end": spelling(end),
        "template": declared,
    }


def special_tokens(hf_tokenizer) -> set[int]:
    """The ids llguidance takes for special tokens: every added token of a fast tokenizer
    (llguidance reads the same tokenizer.json, and takes added tokens for special whether
    or not they are marked so, as Qwen2.5-VL's ``<tool_call>`` is not). Read here rather than from
    llguidance's own tokenizer, whose building walks the whole vocabulary (about a second for
    150k tokens) and is left to the first constrained request. llguidance takes fast
    tokenizers only; for others the markers are spelled as text."""
    if not getattr(hf_tokenizer, "is_fast", False):
        return set()
    return set(hf_tokenizer.added_tokens_decoder)


def hermes_chat(chat: list[dict], tools: list[dict]) -> list[dict]:
    """A chat with tools for a template that takes none: the tools described in the system
    message, earlier calls as ``<tool_call>`` text, their results as ``<tool_response>``
    blocks in a user turn."""
    described = _HERMES_PROMPT.format(tools="\n".join(json.dumps(tool) for tool in tools))
    out: list[dict] = []
    for message in chat:
        if message["role"] == "tool":
            block = f"<tool_response>\n{message['content']}\n</tool_response>"
            if out and out[-1].get("from_tools"):
                out[-1]["content"] += "\n" + block
            else:
                out.append({"role": "user", "content": block, "from_tools": True})
        elif message.get("tool_calls"):
            calls = "\n".join(
                "<tool_call>\n"
                + json.dumps({"name": c["function"]["name"], "arguments": c["function"]["arguments"]})
                + "\n</tool_call>"
                for c in message["tool_calls"]
            )
            text = message["content"] if isinstance(message["content"], str) else ""
            out.append({"role": "assistant", "content": f"{text}\n{calls}".strip()})
        else:
            out.append(dict(message))
    for message in out:
        message.pop("from_tools", None)
    if out and out[0]["role"] == "system" and isinstance(out[0]["content"], str):
        out[0] = {"role": "system", "content": f"{out[0]['content']}\n\n{described}"}
    else:
        out.insert(0, {"role": "system", "content": described})
    return out


def prompt_opens_thinking(tokenizer, prompt: list[int]) -> bool:
    """Whether the prompt ends inside a thinking block (a template that opens ``<think>`` for
    the model): the last few tokens hold the start marker after any end marker."""
    if not tokenizer.has_thinking:
        return False
    tail = list(prompt[-8:])
    last = {token: i for i, token in enumerate(tail)}
    return last.get(tokenizer.think_start_tokens[-1], -1) > last.get(tokenizer.think_end_tokens[-1], -1)


class ReplyParts:
    """Splits one reply, as it is decoded, into answer, thinking and tool calls."""

    def __init__(
        self, tokenizer, *, tools: list[dict] | None, thinking: bool, calls: dict, parallel: bool = True
    ) -> None:
        """``calls``: the model's tool format (``tool_format``); ``parallel``: whether the reply
        may make more than one call (else it is ``done`` after the first)."""
        transitions: dict[str, list[tuple[str, str]]] = {"normal": []}
        if tokenizer.has_thinking:
            transitions["normal"].append((tokenizer.think_start, "reasoning"))
            transitions["reasoning"] = [(tokenizer.think_end, "normal")]
        if tools:
            transitions["normal"].append((calls["start"], "tool"))
            if tokenizer.has_thinking:
                transitions["reasoning"].append((calls["start"], "tool"))
            transitions["tool"] = [(calls["end"], "normal")] if calls["end"] else []
        self.tools = tools
        self.parse = importlib.import_module(f"mlx_lm.tool_parsers.{calls['parser']}").parse_tool_call
        self.markers = (calls["start"], calls["end"])
        self.machine = TextStateMachine(transitions)
        self.state = self.machine.make_state("reasoning" if thinking and tokenizer.has_thinking else "normal")
        self.tool_text = ""
        self.called = False  # whether any tool call was made
        self.parallel = parallel

    @staticmethod
    def wanted(tokenizer, tools: list[dict] | None) -> bool:
        """Whether a reply needs splitting at all: the model thinks, or it was offered tools."""
        return tokenizer.has_thinking or bool(tools)

    @property
    def done(self) -> bool:
        """Whether the reply has made the one call it may make."""
        return self.called and not self.parallel

    def add(self, text: str) -> tuple[str, str, list[dict]]:
        """The answer, thinking and complete tool calls in the next piece of text."""
        self.state, segments = TextStateMachine.split(self.state, text)
        return self._collect(segments)

    def finish(self, finish_reason: str) -> tuple[str, str, list[dict]]:
        """What is left at the end: a partial marker is dropped on a natural stop, kept when cut off."""
        if finish_reason == "stop":
            self.state, current = TextStateMachine.discard(self.state)
            segments = [(current, "")]
        else:
            self.state, rest, current = TextStateMachine.flush(self.state)
            segments = [(current, rest)]
        content, reasoning, calls = self._collect(segments)
        if self.tool_text:  # a call the reply ended inside of
            more, unparsed = self._calls(self.tool_text, closed=False)
            calls, content = calls + more, content + unparsed
            self.tool_text = ""
        return content, reasoning, calls

    def _collect(self, segments) -> tuple[str, str, list[dict]]:
        content, reasoning, calls = [], [], []
        for state, text in segments:
            if state == "tool":
                self.tool_text += text
                continue
            if self.tool_text:  # the call just ended
                more, unparsed = self._calls(self.tool_text, closed=True)
                calls += more
                content.append(unparsed)
                self.tool_text = ""
            (reasoning if state == "reasoning" else content).append(text)
        return "".join(content), "".join(reasoning), calls

    def _calls(self, text: str, *, closed: bool) -> tuple[list[dict], str]:
        """The calls in one tool-call block, in OpenAI's shape; or none and the block's text,
        its markers put back (``closed``: the end marker was seen)."""
        try:
            parsed = self.parse(text, self.tools)
            calls = [_openai_call(call) for call in (parsed if isinstance(parsed, list) else [parsed])]
        except Exception as exc:  # the parsers raise what their format's decoder raises; or no name
            log.warning("tool call not parsed; kept as text", error=str(exc)[:200])
            return [], self.markers[0] + text + (self.markers[1] if closed else "")
        self.called = self.called or bool(calls)
        return calls, ""


def _openai_call(call: dict) -> dict:
    """A parser's call (name, arguments as an object or JSON text) in OpenAI's shape; raises
    where it has no name."""
    name = call["name"]
    if not isinstance(name, str):
        raise TypeError(f"a tool call's name must be a string, not {type(name).__name__}")
    arguments = call.get("arguments", {})
    return {
        "id": call.get("id") or f"call_{uuid.uuid4().hex[:24]}",
        "type": "function",
        "function": {"name": name, "arguments": arguments if isinstance(arguments, str) else json.dumps(arguments)},
    }
