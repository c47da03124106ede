"""response_format through the openai SDK: replies held to a JSON schema by constrained
decoding, for text and image requests, streamed or not, beside free requests."""

from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor
from typing import Literal

import httpx
import openai
import pytest
from pydantic import BaseModel, Field

from tests.conftest import png_data_uri

pytestmark = pytest.mark.slow


class Invoice(BaseModel):
    vendor: str = Field(max_length=12)
    total: int = Field(ge=0, le=100_000)
    currency: Literal["EUR", "USD", "GBP"]
    paid: bool
    lines: list[int] = Field(max_length=3)


def question(route: str) -> list[dict]:
    text = "Extract the invoice."
    if route == "text":
        return [{"role": "user", "content": text}]
    image = {"type": "image_url", "image_url": {"url": png_data_uri(96, 128, seed=3)}}
    return [{"role": "user", "content": [image, {"type": "text", "text": text}]}]


@pytest.fixture(scope="module")
def client(server) -> openai.OpenAI:
    return openai.OpenAI(base_url=server.base_url + "/v1", api_key="none", max_retries=0)


@pytest.mark.parametrize("route", ["text", "vision"])
def test_parse_returns_an_object_of_the_schema_on_every_try(client, route):
    """The SDK's parse() with a pydantic model: sampled at several seeds, every reply validates."""
    for seed in range(4):
        completion = client.chat.completions.parse(
            model="auto",
            messages=question(route),
            response_format=Invoice,
            temperature=1.0,
            seed=seed,
            max_tokens=300,
        )
        choice = completion.choices[0]
        assert choice.finish_reason == "stop", choice.message.content
        assert isinstance(choice.message.parsed, Invoice)
        assert completion.model_extra["mmserve"]["route"] == route


def test_a_streamed_reply_holds_to_the_schema_too(client):
    with client.chat.completions.stream(
        model="auto", messages=question("vision"), response_format=Invoice, temperature=0, max_tokens=300
    ) as stream:
        final = stream.get_final_completion()
    assert isinstance(final.choices[0].message.parsed, Invoice)


def test_json_object_mode_gives_a_json_object_without_free_whitespace(client):
    """Any JSON object; between tokens only the fixed separators, so no budget goes on spaces."""
    completion = client.chat.completions.create(
        model="auto", messages=question("text"), response_format={"type": "json_object"}, max_tokens=64, temperature=0
    )
    content = completion.choices[0].message.content
    assert content.startswith("{") and "\n" not in content and "  " not in content
    if completion.choices[0].finish_reason == "stop":
        assert isinstance(json.loads(content), dict)


def test_a_schema_that_cannot_be_used_is_a_400_naming_it(server):
    body = {
        "messages": question("text"),
        "response_format": {"type": "json_schema", "json_schema": {"name": "x", "schema": {"type": "objectx"}}},
    }
    response = httpx.post(server.base_url + "/v1/chat/completions", json=body, timeout=30)
    assert response.status_code == 400
    assert response.json()["error"]["param"] == "response_format.json_schema.schema"


def test_constrained_and_free_requests_share_the_batch_and_free_answers_do_not_change(client):
    """Free greedy requests give the answer they give alone while constrained ones run beside them."""

    def free(i: int) -> str:
        messages = [{"role": "user", "content": f"tell me about number {i}"}]
        reply = client.chat.completions.create(model="auto", messages=messages, max_tokens=24, temperature=0)
        return reply.choices[0].message.content

    def constrained(seed: int) -> Invoice:
        completion = client.chat.completions.parse(
            model="auto", messages=question("text"), response_format=Invoice, seed=seed, max_tokens=300
        )
        return completion.choices[0].message.parsed

    alone = [free(i) for i in range(4)]
    with ThreadPoolExecutor(8) as pool:
        mixed = [pool.submit(free, i) for i in range(4)] + [pool.submit(constrained, s) for s in range(4)]
        results = [future.result() for future in mixed]
    assert results[:4] == alone
    assert all(isinstance(result, Invoice) for result in results[4:])
