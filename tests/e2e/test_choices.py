"""n choices: side by side in the batch, greedy ones equal to the single answer, streamed by index."""

from __future__ import annotations

import openai
import pytest

from tests.conftest import png_data_uri

pytestmark = pytest.mark.slow

ASK = [{"role": "user", "content": "Name a colour."}]
LOOK = [
    {
        "role": "user",
        "content": [
            {"type": "image_url", "image_url": {"url": png_data_uri(64, 64, seed=4)}},
            {"type": "text", "text": "?"},
        ],
    }
]


@pytest.fixture(scope="module")
def client(server) -> openai.OpenAI:
    return openai.OpenAI(base_url=server.base_url + "/v1", api_key="none", max_retries=0)


@pytest.mark.parametrize("messages", [ASK, LOOK], ids=["text", "image"])
def test_greedy_choices_all_equal_the_single_answer(client, messages):
    one = client.chat.completions.create(model="auto", messages=messages, max_tokens=10, temperature=0)
    three = client.chat.completions.create(model="auto", messages=messages, max_tokens=10, temperature=0, n=3)
    assert [c.index for c in three.choices] == [0, 1, 2]
    assert [c.message.content for c in three.choices] == [one.choices[0].message.content] * 3
    assert three.usage.prompt_tokens == one.usage.prompt_tokens
    assert three.usage.completion_tokens == 3 * one.usage.completion_tokens


def test_seeded_choices_differ_from_each_other_and_repeat(client):
    ask = dict(model="auto", messages=ASK, max_tokens=10, temperature=1.5, seed=11, n=3)
    first = [c.message.content for c in client.chat.completions.create(**ask).choices]
    again = [c.message.content for c in client.chat.completions.create(**ask).choices]
    assert first == again
    assert len(set(first)) > 1


def test_streamed_choices_arrive_by_index(client):
    plain = client.chat.completions.create(model="auto", messages=ASK, max_tokens=10, temperature=0, n=2)
    stream = client.chat.completions.create(
        model="auto",
        messages=ASK,
        max_tokens=10,
        temperature=0,
        n=2,
        stream=True,
        stream_options={"include_usage": True},
    )
    texts, finishes, usage = ["", ""], [None, None], None
    for chunk in stream:
        usage = chunk.usage or usage
        for choice in chunk.choices:
            texts[choice.index] += choice.delta.content or ""
            finishes[choice.index] = choice.finish_reason or finishes[choice.index]
    assert texts == [c.message.content for c in plain.choices]
    assert finishes == [c.finish_reason for c in plain.choices]
    assert usage.completion_tokens == plain.usage.completion_tokens


def test_more_choices_than_the_server_gives_is_a_400(client):
    with pytest.raises(openai.BadRequestError) as err:
        client.chat.completions.create(model="auto", messages=ASK, max_tokens=2, n=9)
    assert err.value.body["param"] == "n" and "max_choices" in err.value.body["message"]
