"""POST /v1/completions through the openai SDK: the raw prompt, no chat template."""

from __future__ import annotations

import httpx
import openai
import pytest

pytestmark = pytest.mark.slow

PROMPT = "Once upon a time, in a valley"


@pytest.fixture(scope="module")
def client(server) -> openai.OpenAI:
    return openai.OpenAI(base_url=server.base_url + "/v1", api_key="none", max_retries=0)


@pytest.fixture(scope="module")
def reference(models):
    from mlx_lm import load

    return load(str(models / "text"))


def test_the_prompt_is_the_raw_text_and_greedy_equals_mlx_lm(client, reference):
    from mlx_lm import generate

    model, tokenizer = reference
    expected = generate(model, tokenizer, PROMPT, max_tokens=12)
    served = client.completions.create(model="auto", prompt=PROMPT, max_tokens=12, temperature=0)
    assert served.object == "text_completion"
    assert served.choices[0].text == expected
    assert served.usage.prompt_tokens == len(tokenizer.encode(PROMPT))


def test_token_ids_are_a_prompt_too(client, reference):
    _, tokenizer = reference
    ids = tokenizer.encode(PROMPT)
    by_ids = client.completions.create(model="auto", prompt=ids, max_tokens=8, temperature=0)
    by_text = client.completions.create(model="auto", prompt=PROMPT, max_tokens=8, temperature=0)
    assert by_ids.choices[0].text == by_text.choices[0].text
    assert by_ids.usage.prompt_tokens == len(ids)


def test_max_tokens_defaults_to_sixteen_as_openai_s(client):
    served = client.completions.create(model="auto", prompt=PROMPT, temperature=0)
    assert served.usage.completion_tokens <= 16


def test_echo_puts_the_prompt_first(client):
    plain = client.completions.create(model="auto", prompt=PROMPT, max_tokens=6, temperature=0)
    echoed = client.completions.create(model="auto", prompt=PROMPT, max_tokens=6, temperature=0, echo=True)
    assert echoed.choices[0].text == PROMPT + plain.choices[0].text


def test_a_stream_gives_the_same_text(client):
    plain = client.completions.create(model="auto", prompt=PROMPT, max_tokens=10, temperature=0, n=2)
    stream = client.completions.create(model="auto", prompt=PROMPT, max_tokens=10, temperature=0, n=2, stream=True)
    texts = ["", ""]
    for chunk in stream:
        for choice in chunk.choices:
            texts[choice.index] += choice.text
    assert texts == [c.text for c in plain.choices]


def test_logprobs_in_the_legacy_shape(client):
    served = client.completions.create(model="auto", prompt=PROMPT, max_tokens=6, temperature=0, logprobs=3)
    logprobs = served.choices[0].logprobs
    assert len(logprobs.tokens) == len(logprobs.token_logprobs) == served.usage.completion_tokens
    for chosen, top in zip(logprobs.token_logprobs, logprobs.top_logprobs, strict=True):
        assert len(top) <= 3 and chosen == max(top.values())
    assert logprobs.text_offset[0] == 0


@pytest.mark.parametrize(
    ("fields", "param"),
    [
        ({"suffix": "THE END"}, "suffix"),
        ({"prompt": ["one", "two"]}, "prompt"),
        ({"model": "vision"}, "model"),
        ({"prompt": [1, 2], "echo": True}, "echo"),
        ({"best_of": 3}, "best_of"),
    ],
)
def test_what_is_not_served_is_a_400_naming_it(server, fields, param):
    body = {"model": "auto", "prompt": PROMPT, "max_tokens": 2, **fields}
    response = httpx.post(server.base_url + "/v1/completions", json=body, timeout=30)
    assert response.status_code == 400
    assert response.json()["error"]["param"] == param
