"""Routing and message normalization (pure)."""

from __future__ import annotations

import pytest

from mmserve.errors import ContextLengthError, InvalidRequestError, ModelNotFoundError
from mmserve.normalize import Route, normalize
from mmserve.protocol.openai import decode_chat_request

TEXT = Route("text", "qwen-text", "/models/text")
VISION = Route("vision", "qwen-vl", "/models/vision")
IMAGE = {"type": "image_url", "image_url": {"url": "data:image/png;base64,AAAA", "detail": "low"}}


def request(**body):
    import json

    body.setdefault("messages", [{"role": "user", "content": "hi"}])
    return decode_chat_request(json.dumps(body).encode())


def with_image(text="what is this?"):
    return [{"role": "user", "content": [{"type": "text", "text": text}, IMAGE]}]


def test_auto_sends_text_to_text_engine():
    """Without images, auto goes to the text engine."""
    assert normalize(request(), [TEXT, VISION]).route == TEXT


def test_auto_sends_images_to_vision_engine():
    """With an image part, auto goes to the vision engine, keeping the parts in order."""
    job = normalize(request(messages=with_image()), [TEXT, VISION])
    assert job.route == VISION
    assert job.messages[0]["content"] == [{"type": "text", "text": "what is this?"}, {"type": "image"}]
    assert job.images[0].param == "messages[0].content[1].image_url"
    assert job.images[0].detail == "low"


def test_text_goes_to_vision_engine_when_it_is_the_only_one():
    """With only a vision engine, text requests are served by it."""
    assert normalize(request(), [VISION]).route == VISION


def test_image_without_vision_engine_is_400_naming_the_part():
    """An image where no vision engine exists is a 400 naming the image part."""
    with pytest.raises(InvalidRequestError) as caught:
        normalize(request(messages=with_image()), [TEXT])
    assert caught.value.param == "messages[0].content[1].image_url"


def test_named_model_routes_by_name_or_path():
    """Naming a served model (by name or path) picks that engine."""
    assert normalize(request(model="qwen-vl"), [TEXT, VISION]).route == VISION
    assert normalize(request(model="/models/text"), [TEXT, VISION]).route == TEXT


def test_unknown_model_is_model_not_found():
    """An unknown model name raises model_not_found listing what is served."""
    with pytest.raises(ModelNotFoundError, match="qwen-text"):
        normalize(request(model="nope"), [TEXT, VISION])


def test_text_parts_are_joined_for_the_text_engine():
    """For the text engine, list content becomes one string."""
    messages = [{"role": "user", "content": [{"type": "text", "text": "a"}, {"type": "text", "text": "b"}]}]
    assert normalize(request(messages=messages), [TEXT]).messages[0]["content"] == "a\nb"


def test_developer_role_becomes_system():
    """OpenAI's developer role reaches the template as system."""
    job = normalize(
        request(messages=[{"role": "developer", "content": "be brief"}, {"role": "user", "content": "hi"}]), [TEXT]
    )
    assert job.messages[0]["role"] == "system"


def test_image_in_assistant_message_is_refused():
    """Images are only accepted from the user."""
    messages = [{"role": "assistant", "content": [IMAGE]}, {"role": "user", "content": "hi"}]
    with pytest.raises(InvalidRequestError) as caught:
        normalize(request(messages=messages), [VISION])
    assert caught.value.param == "messages[0].content[0]"


def test_sampling_and_stop_are_carried():
    """Sampling values, a single stop string and max_completion_tokens reach the job."""
    job = normalize(request(temperature=0, top_k=5, seed=3, stop="END", max_completion_tokens=7, max_tokens=99), [TEXT])
    assert (job.sampling.temperature, job.sampling.top_k, job.sampling.seed) == (0, 5, 3)
    assert job.stop == ["END"] and job.max_tokens == 7


BOUNDED = Route("text", "qwen-text", "/models/text", vocab_size=1000, context_length=100, longest_token_chars=8)


def test_top_k_up_to_the_vocabulary_is_taken_and_past_it_refused():
    """top_k may be the whole vocabulary (keep every token); one more is a 400 naming top_k."""
    assert normalize(request(top_k=1000), [BOUNDED]).sampling.top_k == 1000
    with pytest.raises(InvalidRequestError) as err:
        normalize(request(top_k=1001), [BOUNDED])
    assert err.value.param == "top_k" and "1000" in err.value.message


def test_top_k_minus_one_means_off():
    """-1 (vLLM's and llama.cpp's spelling) turns top_k off, as 0 does."""
    assert normalize(request(top_k=-1), [BOUNDED]).sampling.top_k == 0


def test_prompt_that_cannot_fit_is_refused_from_its_length_alone():
    """Characters over the context times the longest token: context_length_exceeded, no tokenizer involved."""
    fits = [{"role": "user", "content": "a" * 800}]
    assert normalize(request(messages=fits), [BOUNDED]).messages[0]["content"] == "a" * 800
    parts = [{"type": "text", "text": "a" * 400}, {"type": "text", "text": "a" * 401}]
    with pytest.raises(ContextLengthError) as err:
        normalize(request(messages=[{"role": "user", "content": parts}]), [BOUNDED])
    assert err.value.param == "messages" and "802 characters" in err.value.message  # parts joined by a newline


def test_unknown_bounds_check_nothing():
    """Before a worker has loaded the model its bounds are unknown and nothing is refused for them."""
    assert normalize(request(top_k=10**6, messages=[{"role": "user", "content": "a" * 10**5}]), [TEXT])


@pytest.mark.parametrize(
    ("field", "value", "param"),
    [
        ("seed", -(2**63) - 1, "seed"),
        ("seed", 2**63, "seed"),
        ("seed", 2**64, "seed"),
        ("top_k", -2, "top_k"),
        ("top_k", 2**31, "top_k"),
        ("stop", "x" * 1025, "stop"),
        ("stop", ["x" * 1025], "stop[0]"),
        ("stop", [""], "stop[0]"),
        ("stop", ["a"] * 17, "stop"),
        ("user", "u" * 257, "user"),
        ("model", "m" * 257, "model"),
        ("messages", [{"role": "user", "content": "hi"}] * 10_001, "messages"),
        ("messages", [{"role": "user", "content": [{"type": "text", "text": "a"}] * 1001}], "messages[0].content"),
    ],
)
def test_fields_past_their_bounds_are_400_naming_them(field, value, param):
    with pytest.raises(InvalidRequestError) as err:
        request(**{field: value})
    assert err.value.param == param


@pytest.mark.parametrize("seed", [-(2**63), -1, 0, 2**63 - 1])
def test_seeds_across_the_64_bit_range_are_taken(seed):
    assert normalize(request(seed=seed), [TEXT]).sampling.seed == seed


def test_deeply_nested_json_is_a_400():
    """Nesting past what the decoder goes is invalid JSON, not a server error."""
    body = b'{"messages": [{"role": "user", "content": "hi"}], "extra": ' + b"[" * 100_000 + b"]" * 100_000 + b"}"
    with pytest.raises(InvalidRequestError) as err:
        decode_chat_request(body)
    assert err.value.code == "invalid_json" and "nested" in err.value.message


def test_response_format_json_schema_becomes_the_job_s_grammar():
    schema = {"type": "object", "properties": {"a": {"type": "integer"}}, "required": ["a"]}
    job = normalize(
        request(response_format={"type": "json_schema", "json_schema": {"name": "a", "schema": schema}}), [TEXT]
    )
    assert job.grammar and '"required":["a"]' in job.grammar
    assert normalize(request(response_format={"type": "json_object"}), [TEXT]).grammar
    assert normalize(request(response_format={"type": "text"}), [TEXT]).grammar is None


@pytest.mark.parametrize(
    ("response_format", "param"),
    [
        (
            {"type": "json_schema", "json_schema": {"name": "a", "schema": {"type": "objectx"}}},
            "response_format.json_schema.schema",
        ),
        ({"type": "json_schema", "json_schema": {"name": "a b"}}, "response_format.json_schema.name"),
        ({"type": "json_schema"}, "response_format.json_schema"),
        ({"type": "yaml"}, "response_format.type"),
    ],
)
def test_a_response_format_that_cannot_be_served_is_a_400_naming_it(response_format, param):
    with pytest.raises(InvalidRequestError) as err:
        normalize(request(response_format=response_format), [TEXT])
    assert err.value.param == param
