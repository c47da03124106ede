"""A thinking model's reply split into reasoning_content and content, streamed or not, and
chat_template_kwargs reaching its template (Qwen3's thinking template, tiny weights)."""

from __future__ import annotations

import openai
import pytest

from mmserve.synth.families import FAMILIES
from tests.conftest import start_server, stop_server

pytestmark = pytest.mark.slow

ASK = [{"role": "user", "content": "Why is the sky blue?"}]


@pytest.fixture(scope="module")
def client(models, tmp_path_factory):
    thinking = tmp_path_factory.mktemp("thinking")
    FAMILIES["qwen3_thinking"].write(thinking, 0)
    server = start_server(models, tmp_path_factory.mktemp("thinking-logs"), "--text-model", str(thinking))
    yield openai.OpenAI(base_url=server.base_url + "/v1", api_key="none", max_retries=0)
    stop_server(server)


def test_a_reply_that_begins_inside_thinking_is_reasoning_content(client):
    """The template opens <think>; what the model writes before </think> is its reasoning."""
    reply = client.chat.completions.create(model="auto", messages=ASK, max_tokens=24, temperature=0)
    message = reply.choices[0].message
    reasoning = message.model_extra["reasoning_content"]
    assert reasoning and "<think>" not in reasoning and "</think>" not in reasoning
    assert "<think>" not in (message.content or "")
    assert reply.usage.completion_tokens == 24


def test_reasoning_streams_as_its_own_delta(client):
    plain = client.chat.completions.create(model="auto", messages=ASK, max_tokens=24, temperature=0)
    stream = client.chat.completions.create(model="auto", messages=ASK, max_tokens=24, temperature=0, stream=True)
    reasoning, content = [], []
    for chunk in stream:
        if chunk.choices:
            delta = chunk.choices[0].delta
            reasoning.append((delta.model_extra or {}).get("reasoning_content") or "")
            content.append(delta.content or "")
    assert "".join(reasoning) == plain.choices[0].message.model_extra["reasoning_content"]
    assert "".join(content) == (plain.choices[0].message.content or "")


def test_chat_template_kwargs_reach_the_template(client):
    """enable_thinking: false makes the template close the thinking block: no reasoning, all content."""
    reply = client.chat.completions.create(
        model="auto",
        messages=ASK,
        max_tokens=8,
        temperature=0,
        extra_body={"chat_template_kwargs": {"enable_thinking": False}},
    )
    thinking = client.chat.completions.create(model="auto", messages=ASK, max_tokens=8, temperature=0)
    message = reply.choices[0].message
    assert message.content and not message.model_extra.get("reasoning_content")
    assert reply.usage.prompt_tokens > thinking.usage.prompt_tokens  # "\n\n</think>\n\n" more


def test_reasoning_effort_is_passed_to_the_template(client):
    reply = client.chat.completions.create(model="auto", messages=ASK, max_tokens=4, reasoning_effort="low")
    assert reply.choices[0].finish_reason == "length"


def test_chat_template_kwargs_may_not_replace_the_messages(client):
    with pytest.raises(openai.BadRequestError) as err:
        client.chat.completions.create(
            model="auto", messages=ASK, max_tokens=4, extra_body={"chat_template_kwargs": {"messages": []}}
        )
    assert err.value.body["param"] == "chat_template_kwargs"


def test_a_responses_stream_gives_the_thinking_first_as_deltas(client):
    """/v1/responses: the reasoning item comes before the message, streamed as
    reasoning_text deltas that add up to the item the plain response has."""
    plain = client.responses.create(model="auto", input="Why is the sky blue?", max_output_tokens=24, temperature=0)
    assert [item.type for item in plain.output][0] == "reasoning"
    thought = plain.output[0].content[0].text
    events = list(
        client.responses.create(
            model="auto", input="Why is the sky blue?", max_output_tokens=24, temperature=0, stream=True
        )
    )
    added = [e.item.type for e in events if e.type == "response.output_item.added"]
    assert added == [item.type for item in plain.output]
    deltas = [e for e in events if e.type == "response.reasoning_text.delta"]
    assert len(deltas) > 1 and "".join(e.delta for e in deltas) == thought
    (done,) = [e for e in events if e.type == "response.reasoning_text.done"]
    assert done.text == thought
    final = events[-1].response
    assert [item.type for item in final.output] == added and final.output[0].content[0].text == thought
    numbers = [e.sequence_number for e in events]
    assert numbers == list(range(len(events)))
