"""Structured output: the llguidance grammar a request's ``response_format`` asks for.

Runs in the HTTP process (llguidance is plain Rust, no mlx), so that a schema llguidance
cannot use is a 400 naming it before any worker sees the request. Workers compile the
grammar against their tokenizer (``engines/grammar.py``).
"""

from __future__ import annotations

import json

from llguidance import LLMatcher

from .errors import InvalidRequestError
from .protocol.openai import JSONObjectFormat, JSONSchemaFormat

__all__ = ["json_grammar", "response_grammar", "tool_call_grammar"]

# JSON with one fixed separator between items and keys and no other whitespace: a model
# cannot spend its max_tokens on spaces and newlines between tokens (as mlx-vlm's grammar).
JSON_LAYOUT = {"item_separator": ", ", "key_separator": ": ", "whitespace_flexible": False}
ANY_OBJECT = {"type": "object"}


def json_grammar(schema: dict, *, param: str) -> str:
    """The grammar of JSON text matching ``schema``; a 400 naming ``param`` if llguidance cannot use it."""
    try:
        grammar = LLMatcher.grammar_from_json_schema(schema, overrides=JSON_LAYOUT)
        error = LLMatcher.validate_grammar(grammar)
    except (ValueError, TypeError, RuntimeError) as exc:
        error = str(exc)
    if error:
        raise InvalidRequestError(f"the JSON schema cannot be used: {error}", param=param, code="invalid_value")
    return grammar


def response_grammar(response_format) -> str | None:
    """The grammar a request's ``response_format`` holds its reply to; None for plain text."""
    if isinstance(response_format, JSONObjectFormat):
        return json_grammar(ANY_OBJECT, param="response_format")
    if isinstance(response_format, JSONSchemaFormat):
        return json_grammar(
            response_format.json_schema.schema or ANY_OBJECT, param="response_format.json_schema.schema"
        )
    return None


def tool_call_grammar(tools, tool_format: dict | None, *, parallel: bool) -> str:
    """The grammar of a reply that is one call (or, ``parallel``, one or more calls) of
    ``tools``, written in the model's tool-call format.

    Formats whose calls are a JSON object with ``name`` and ``arguments`` between two
    markers (mlx-lm's ``json_tools``: Qwen 2.5 and 3, Hermes and others) are held to it; a
    model with another format cannot be forced to call (400)."""
    if tool_format is None or tool_format["parser"] != "json_tools":
        raise InvalidRequestError(
            "tool_choice 'required' or a named function needs a model whose tool calls are JSON objects "
            f"between markers; this model's format is {tool_format and tool_format['parser']!r}",
            param="tool_choice",
            code="unsupported_parameter",
        )
    calls = [
        {
            "type": "object",
            "properties": {
                "name": {"const": tool.function.name},
                "arguments": tool.function.parameters or {"type": "object", "properties": {}},
            },
            "required": ["name", "arguments"],
            "additionalProperties": False,
        }
        for tool in tools
    ]
    schema = json.dumps({"anyOf": calls, "x-guidance": JSON_LAYOUT})
    newline = json.dumps("\n")
    start, end = tool_format["grammar_start"], tool_format["grammar_end"]
    lark = "\n".join(
        [
            f"start: call ({newline} call)*" if parallel else "start: call",
            f"call: {start} {newline} %json {schema} {newline} {end}",
        ]
    )
    grammar = LLMatcher.grammar_from_lark(lark)
    if error := LLMatcher.validate_grammar(grammar):
        raise InvalidRequestError(f"the tools' parameters cannot be used: {error}", param="tools", code="invalid_value")
    return grammar
