"""logprobs, top_logprobs and logit_bias through the openai SDK, text and image alike."""

from __future__ import annotations

import math

import openai
import pytest
from transformers import AutoTokenizer

from tests.conftest import png_data_uri

pytestmark = pytest.mark.slow

ASK = [{"role": "user", "content": "Tell me a story."}]
LOOK = [
    {
        "role": "user",
        "content": [
            {"type": "image_url", "image_url": {"url": png_data_uri(64, 64, seed=9)}},
            {"type": "text", "text": "?"},
        ],
    }
]


@pytest.fixture(scope="module")
def client(server) -> openai.OpenAI:
    return openai.OpenAI(base_url=server.base_url + "/v1", api_key="none", max_retries=0)


@pytest.mark.parametrize("messages", [ASK, LOOK], ids=["text", "image"])
def test_greedy_tokens_are_the_most_likely_of_their_top_logprobs(client, messages):
    reply = client.chat.completions.create(
        model="auto", messages=messages, max_tokens=12, temperature=0, logprobs=True, top_logprobs=5
    )
    entries = reply.choices[0].logprobs.content
    assert len(entries) == reply.usage.completion_tokens
    # the reply drops a BPE vocabulary's leading space (docs/usage.md); its tokens keep it
    assert "".join(e.token for e in entries).lstrip() == reply.choices[0].message.content
    for entry in entries:
        assert len(entry.top_logprobs) == 5
        assert entry.logprob <= 0 and entry.logprob == max(t.logprob for t in entry.top_logprobs)
        assert entry.top_logprobs[0].token == entry.token
        assert [t.logprob for t in entry.top_logprobs] == sorted((t.logprob for t in entry.top_logprobs), reverse=True)
        assert sum(math.exp(t.logprob) for t in entry.top_logprobs) <= 1.0001


def test_streamed_logprobs_equal_the_plain_ones(client):
    plain = client.chat.completions.create(model="auto", messages=ASK, max_tokens=12, temperature=0, logprobs=True)
    stream = client.chat.completions.create(
        model="auto", messages=ASK, max_tokens=12, temperature=0, logprobs=True, stream=True
    )
    streamed = [
        e for chunk in stream if chunk.choices and chunk.choices[0].logprobs for e in chunk.choices[0].logprobs.content
    ]
    assert [(e.token, e.logprob) for e in streamed] == [(e.token, e.logprob) for e in plain.choices[0].logprobs.content]


def test_without_logprobs_there_are_none(client):
    reply = client.chat.completions.create(model="auto", messages=ASK, max_tokens=4)
    assert reply.choices[0].logprobs is None


def test_logit_bias_steers_every_choice(client, models):
    """+100 on one token makes greedy decoding pick it at every step; -100 on the greedy
    first token makes it never chosen."""
    token = 300
    text = AutoTokenizer.from_pretrained(models / "text").decode([token])
    biased = client.chat.completions.create(
        model="auto", messages=ASK, max_tokens=3, temperature=0, logprobs=True, logit_bias={str(token): 100}
    )
    assert [e.token for e in biased.choices[0].logprobs.content] == [text] * 3
    first = client.chat.completions.create(model="auto", messages=ASK, max_tokens=1, temperature=0, logprobs=True)
    greedy = first.choices[0].logprobs.content[0].token
    tokenizer = AutoTokenizer.from_pretrained(models / "text")
    (greedy_id,) = [i for i in range(len(tokenizer)) if tokenizer.decode([i]) == greedy][:1]
    banned = client.chat.completions.create(
        model="auto", messages=ASK, max_tokens=1, temperature=0, logprobs=True, logit_bias={str(greedy_id): -100}
    )
    assert banned.choices[0].logprobs.content[0].token != greedy


@pytest.mark.parametrize(
    ("fields", "param"),
    [
        ({"top_logprobs": 3}, "top_logprobs"),
        ({"logit_bias": {"abc": 1}}, "logit_bias.abc"),
        ({"logit_bias": {"5": 101}}, "logit_bias[...]"),  # msgspec spells a value's path so
    ],
)
def test_bad_logprob_fields_are_400_naming_them(client, fields, param):
    with pytest.raises(openai.BadRequestError) as err:
        client.chat.completions.create(model="auto", messages=ASK, max_tokens=2, extra_body=fields)
    assert err.value.body["param"] == param
