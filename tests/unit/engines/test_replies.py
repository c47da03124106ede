"""Tools for a template that renders none: the Hermes format."""

from __future__ import annotations

import json

from mmserve.engines.replies import hermes_chat

TOOL = {"type": "function", "function": {"name": "get_weather", "parameters": {"type": "object"}}}


def test_the_tools_join_the_system_message_or_make_one():
    with_system = hermes_chat([{"role": "system", "content": "Be brief."}, {"role": "user", "content": "hi"}], [TOOL])
    assert (
        with_system[0]["content"].startswith("Be brief.\n\n# Tools") and json.dumps(TOOL) in with_system[0]["content"]
    )
    without = hermes_chat([{"role": "user", "content": "hi"}], [TOOL])
    assert [m["role"] for m in without] == ["system", "user"] and "<tools>" in without[0]["content"]


def test_calls_become_text_and_results_one_user_turn():
    call = {"id": "c1", "type": "function", "function": {"name": "get_weather", "arguments": {"city": "Oslo"}}}
    chat = [
        {"role": "user", "content": "weather?"},
        {"role": "assistant", "content": None, "tool_calls": [call, call]},
        {"role": "tool", "tool_call_id": "c1", "content": "3 C"},
        {"role": "tool", "tool_call_id": "c1", "content": "4 C"},
    ]
    out = hermes_chat(chat, [TOOL])
    assert [m["role"] for m in out] == ["system", "user", "assistant", "user"]
    assert (
        out[2]["content"].count('<tool_call>\n{"name": "get_weather", "arguments": {"city": "Oslo"}}\n</tool_call>')
        == 2
    )
    assert out[3]["content"] == "<tool_response>\n3 C\n</tool_response>\n<tool_response>\n4 C\n</tool_response>"
    assert "from_tools" not in out[3]


class Plain:
    """A tokenizer without thinking markers."""

    has_thinking = False


def test_a_reply_split_into_text_and_calls_and_done_after_one_when_not_parallel():
    from mmserve.engines.replies import HERMES, ReplyParts

    one_call = ReplyParts(Plain(), tools=[TOOL], thinking=False, calls=HERMES, parallel=False)
    text = 'Sure.<tool_call>\n{"name": "get_weather", "arguments": {"city": "Oslo"}}\n</tool_call>'
    content, reasoning, calls = one_call.add(text)
    assert content == "Sure." and reasoning == ""
    assert [c["function"]["name"] for c in calls] == ["get_weather"] and json.loads(
        calls[0]["function"]["arguments"]
    ) == {"city": "Oslo"}
    assert one_call.done
    many = ReplyParts(Plain(), tools=[TOOL], thinking=False, calls=HERMES)
    many.add(text)
    assert not many.done


def test_a_call_that_does_not_parse_stays_in_the_content_with_its_markers():
    from mmserve.engines.replies import HERMES, ReplyParts

    parts = ReplyParts(Plain(), tools=[TOOL], thinking=False, calls=HERMES)
    content, _, calls = parts.add("<tool_call>\n{not json\n</tool_call>")
    assert calls == [] and content == "<tool_call>\n{not json\n</tool_call>"
    content, _, calls = parts.add("<tool_call>\n{cut")
    assert parts.finish("length")[0] == "<tool_call>\n{cut"


def test_json_that_is_no_call_stays_in_the_content():
    """A block the parser reads but that names no function (or is no object) is text, not a
    crash of the worker that decodes it."""
    from mmserve.engines.replies import HERMES, ReplyParts

    for block in ('{"x": 1}', "[1, 2]", '{"name": 5}'):
        parts = ReplyParts(Plain(), tools=[TOOL], thinking=False, calls=HERMES)
        content, _, calls = parts.add(f"<tool_call>\n{block}\n</tool_call>")
        assert calls == [] and content == f"<tool_call>\n{block}\n</tool_call>"
