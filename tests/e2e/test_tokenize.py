"""POST /tokenize and /detokenize: ids equal the Hugging Face tokenizer's, images counted
as the guard plans them, and detokenize round-trips."""

from __future__ import annotations

import httpx
import pytest
from transformers import AutoTokenizer

from tests.conftest import png_data_uri

pytestmark = pytest.mark.slow

TEXT = "The quick brown fox, naïvely: 42 €."


def post(server, path: str, body: dict) -> httpx.Response:
    return httpx.post(server.base_url + path, json=body, timeout=60)


@pytest.fixture(scope="module")
def tokenizer(models):
    return AutoTokenizer.from_pretrained(models / "text")


def test_a_text_prompt_is_the_tokenizer_s_ids(server, tokenizer):
    reply = post(server, "/tokenize", {"prompt": TEXT}).json()
    assert reply["tokens"] == tokenizer.encode(TEXT)
    assert reply["count"] == len(reply["tokens"]) and reply["max_model_len"] > 0


def test_messages_are_rendered_by_the_template(server, tokenizer):
    messages = [{"role": "user", "content": TEXT}]
    reply = post(server, "/tokenize", {"messages": messages}).json()
    assert reply["tokens"] == tokenizer.apply_chat_template(messages, add_generation_prompt=True, return_dict=False)
    chat = httpx.post(
        server.base_url + "/v1/chat/completions", json={"messages": messages, "max_tokens": 1}, timeout=60
    ).json()
    assert reply["count"] == chat["usage"]["prompt_tokens"]


def test_detokenize_round_trips(server, tokenizer):
    ids = post(server, "/tokenize", {"prompt": TEXT, "add_special_tokens": False}).json()["tokens"]
    assert post(server, "/detokenize", {"tokens": ids}).json()["prompt"] == TEXT


def test_images_count_as_the_guard_plans_them(server):
    """The count of a message with an image is the prompt the guard plans (and a chat request runs)."""
    image = {"type": "image_url", "image_url": {"url": png_data_uri(900, 600, seed=2)}}
    messages = [{"role": "user", "content": [image, {"type": "text", "text": "What is this?"}]}]
    reply = post(server, "/tokenize", {"messages": messages}).json()
    chat = httpx.post(
        server.base_url + "/v1/chat/completions", json={"messages": messages, "max_tokens": 1}, timeout=60
    ).json()
    assert reply["count"] == chat["usage"]["prompt_tokens"] == chat["mmserve"]["prompt_tokens_planned"]
    assert reply["mmserve"]["images"][0]["resized"] == chat["mmserve"]["images"][0]["resized"]
    assert reply["count"] > len(reply["tokens"])  # each image's placeholder stands for its tokens


@pytest.mark.parametrize(
    ("path", "body", "param"),
    [
        ("/tokenize", {}, "prompt"),
        ("/tokenize", {"prompt": "a", "messages": [{"role": "user", "content": "b"}]}, "prompt"),
        ("/tokenize", {"prompt": "a", "add_generation_prompt": False}, "add_generation_prompt"),
        ("/detokenize", {"tokens": [-1]}, "tokens[0]"),
        ("/detokenize", {"tokens": "abc"}, "tokens"),
    ],
)
def test_bad_bodies_are_400_naming_the_field(server, path, body, param):
    response = post(server, path, body)
    assert response.status_code == 400
    assert response.json()["error"]["param"] == param
