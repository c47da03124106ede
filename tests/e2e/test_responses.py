"""POST /v1/responses through the official SDK: text and images in, streamed events in
order, function tools, json_schema output, conversations by previous_response_id."""

from __future__ import annotations

import json

import openai
import pytest
from pydantic import BaseModel, Field

from tests.conftest import png_data_uri

pytestmark = pytest.mark.slow

WEATHER = {
    "type": "function",
    "name": "get_weather",
    "parameters": {
        "type": "object",
        "properties": {"city": {"type": "string", "maxLength": 16}},
        "required": ["city"],
        "additionalProperties": False,
    },
}


class Colour(BaseModel):
    name: str = Field(max_length=10)
    bright: bool


@pytest.fixture(scope="module")
def client(server) -> openai.OpenAI:
    return openai.OpenAI(base_url=server.base_url + "/v1", api_key="none", max_retries=0)


def test_text_in_text_out(client):
    response = client.responses.create(
        model="auto", input="Say hello.", instructions="Be brief.", max_output_tokens=8, temperature=0
    )
    assert response.object == "response" and response.id.startswith("resp_")
    assert response.output_text and response.usage.output_tokens <= 8
    assert response.status in ("completed", "incomplete")


def test_an_image_goes_to_the_vision_model(client):
    response = client.responses.create(
        model="auto",
        input=[
            {
                "role": "user",
                "content": [
                    {"type": "input_image", "image_url": png_data_uri(64, 48, seed=6)},
                    {"type": "input_text", "text": "What is this?"},
                ],
            }
        ],
        max_output_tokens=6,
        temperature=0,
    )
    assert response.model_extra["mmserve"]["route"] == "vision" and response.output_text


def test_max_output_tokens_makes_it_incomplete(client):
    response = client.responses.create(model="auto", input="Tell me a long story.", max_output_tokens=3)
    assert response.status == "incomplete" and response.incomplete_details.reason == "max_output_tokens"


def test_a_stream_is_the_event_sequence_in_order(client):
    """Cut off by max_output_tokens, a stream ends with response.incomplete (the SDK's helper
    gives a final response only for response.completed, so the events are read here)."""
    plain = client.responses.create(model="auto", input="Count to ten.", max_output_tokens=10, temperature=0)
    kinds, numbers, deltas, last = [], [], [], None
    with client.responses.stream(model="auto", input="Count to ten.", max_output_tokens=10, temperature=0) as stream:
        for event in stream:
            kinds.append(event.type)
            numbers.append(event.sequence_number)
            if event.type == "response.output_text.delta":
                deltas.append(event.delta)
            last = event
    assert kinds[:2] == ["response.created", "response.in_progress"]
    assert kinds[2:5] == ["response.output_item.added", "response.content_part.added", "response.output_text.delta"]
    assert kinds[-4:-1] == ["response.output_text.done", "response.content_part.done", "response.output_item.done"]
    assert kinds[-1] == "response.incomplete" and last.response.incomplete_details.reason == "max_output_tokens"
    assert numbers == list(range(len(numbers)))
    assert "".join(deltas) == plain.output_text == last.response.output_text


def test_a_function_call_and_its_output_continue_the_conversation(client):
    first = client.responses.create(
        model="auto",
        input="What is the weather in Oslo?",
        tools=[WEATHER],
        tool_choice={"type": "function", "name": "get_weather"},
        max_output_tokens=100,
        temperature=0,
    )
    (call,) = [item for item in first.output if item.type == "function_call"]
    assert call.name == "get_weather" and "city" in json.loads(call.arguments)
    second = client.responses.create(
        model="auto",
        previous_response_id=first.id,
        input=[{"type": "function_call_output", "call_id": call.call_id, "output": '{"temp": 3}'}],
        tools=[WEATHER],
        max_output_tokens=5,
        temperature=0,
    )
    assert second.usage.input_tokens > first.usage.input_tokens  # the call and its output were rendered


def test_a_streamed_function_call(client):
    with client.responses.stream(
        model="auto",
        input="Weather in Rome?",
        tools=[WEATHER],
        tool_choice="required",
        parallel_tool_calls=False,
        max_output_tokens=100,
        temperature=0,
    ) as stream:
        final = stream.get_final_response()
    (call,) = [item for item in final.output if item.type == "function_call"]
    assert json.loads(call.arguments)["city"]


def test_text_format_json_schema_parses(client):
    response = client.responses.parse(model="auto", input="A colour?", text_format=Colour, max_output_tokens=60)
    assert isinstance(response.output_parsed, Colour)


def test_previous_response_id_continues_and_an_unknown_one_is_a_400(client):
    first = client.responses.create(model="auto", input="My name is Ada.", max_output_tokens=4, temperature=0)
    second = client.responses.create(
        model="auto", input="What is my name?", previous_response_id=first.id, max_output_tokens=4, temperature=0
    )
    alone = client.responses.create(model="auto", input="What is my name?", max_output_tokens=4, temperature=0)
    assert second.usage.input_tokens > alone.usage.input_tokens
    with pytest.raises(openai.BadRequestError) as err:
        client.responses.create(model="auto", input="hi", previous_response_id="resp_gone", max_output_tokens=2)
    assert err.value.body["param"] == "previous_response_id"


def test_an_image_by_file_id_is_refused_clearly(client):
    with pytest.raises(openai.BadRequestError) as err:
        client.responses.create(
            model="auto",
            input=[{"role": "user", "content": [{"type": "input_image", "file_id": "file-123"}]}],
            max_output_tokens=2,
        )
    assert err.value.body["code"] == "unsupported_parameter" and "file_id" in err.value.body["param"]
