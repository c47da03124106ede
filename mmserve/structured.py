"""Structured output: the llguidance grammar a request's ``response_format`` asks for.

Runs in the HTTP process (llguidance is plain Rust, no mlx), so that a schema llguidance
cannot use is a 400 naming it before any worker sees the request. Workers compile the
grammar against their tokenizer (``engines/grammar.py``).
"""

from __future__ import annotations

from llguidance import LLMatcher

from .errors import InvalidRequestError
from .protocol.openai import JSONObjectFormat, JSONSchemaFormat

__all__ = ["response_grammar"]

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
