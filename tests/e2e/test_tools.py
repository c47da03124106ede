"""Tool calling through the openai SDK: tools rendered by the model's template, calls parsed
with mlx-lm's parser for it, forced calls held to the tools' schemas by constrained decoding."""

from __future__ import annotations

import json

import httpx
import openai
import pytest

pytestmark = pytest.mark.slow

WEATHER = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "The weather in a city",
        "parameters": {
            "type": "object",
            "properties": {
                "city": {"type": "string", "maxLength": 20},
                "unit": {"type": "string", "enum": ["celsius", "fahrenheit"]},
            },
            "required": ["city", "unit"],
            "additionalProperties": False,
        },
    },
}
TIME = {
    "type": "function",
    "function": {
        "name": "get_time",
        "parameters": {
            "type": "object",
            "properties": {"zone": {"type": "string", "maxLength": 8}},
            "required": ["zone"],
            "additionalProperties": False,
        },
    },
}
ASK = [{"role": "user", "content": "What is the weather in Paris?"}]


@pytest.fixture(scope="module")
def client(server) -> openai.OpenAI:
    return openai.OpenAI(base_url=server.base_url + "/v1", api_key="none", max_retries=0)


def test_a_required_call_is_parsed_into_tool_calls(client):
    reply = client.chat.completions.create(
        model="auto",
        messages=ASK,
        tools=[WEATHER, TIME],
        tool_choice="required",
        parallel_tool_calls=False,
        max_tokens=200,
        temperature=0,
    )
    choice = reply.choices[0]
    assert choice.finish_reason == "tool_calls"
    assert choice.message.content is None
    call = choice.message.tool_calls[0]
    assert call.type == "function" and call.id
    assert call.function.name in ("get_weather", "get_time")
    assert isinstance(json.loads(call.function.arguments), dict)


@pytest.mark.parametrize("seed", range(3))
def test_a_named_function_is_the_one_called_with_arguments_of_its_schema(client, seed):
    reply = client.chat.completions.create(
        model="auto",
        messages=ASK,
        tools=[WEATHER, TIME],
        tool_choice={"type": "function", "function": {"name": "get_weather"}},
        max_tokens=200,
        temperature=1.0,
        seed=seed,
    )
    (call,) = reply.choices[0].message.tool_calls
    arguments = json.loads(call.function.arguments)
    assert call.function.name == "get_weather"
    assert set(arguments) == {"city", "unit"} and arguments["unit"] in ("celsius", "fahrenheit")


def test_a_streamed_call_arrives_as_tool_call_deltas(client):
    stream = client.chat.completions.create(
        model="auto",
        messages=ASK,
        tools=[WEATHER],
        tool_choice={"type": "function", "function": {"name": "get_weather"}},
        max_tokens=200,
        temperature=0,
        stream=True,
    )
    deltas, finish = [], None
    for chunk in stream:
        if chunk.choices:
            deltas += chunk.choices[0].delta.tool_calls or []
            finish = chunk.choices[0].finish_reason or finish
    assert finish == "tool_calls"
    assert [d.index for d in deltas] == [0]
    assert deltas[0].function.name == "get_weather" and json.loads(deltas[0].function.arguments)["city"]


def test_a_round_trip_renders_the_call_and_its_result_and_answers(client):
    first = client.chat.completions.create(
        model="auto",
        messages=ASK,
        tools=[WEATHER],
        tool_choice="required",
        parallel_tool_calls=False,
        max_tokens=200,
        temperature=0,
    )
    call = first.choices[0].message.tool_calls[0]
    history = [
        *ASK,
        {"role": "assistant", "content": None, "tool_calls": [call.model_dump()]},
        {"role": "tool", "tool_call_id": call.id, "content": '{"temperature": 21}'},
    ]
    answer = client.chat.completions.create(
        model="auto", messages=history, tools=[WEATHER], max_tokens=12, temperature=0
    )
    assert answer.choices[0].finish_reason in ("stop", "length", "tool_calls")
    usage_with_result = answer.usage.prompt_tokens
    plain = client.chat.completions.create(model="auto", messages=ASK, tools=[WEATHER], max_tokens=1)
    assert usage_with_result > plain.usage.prompt_tokens  # the call and its result were rendered


def test_tools_count_in_the_prompt_and_none_turns_them_off(client):
    without = client.chat.completions.create(model="auto", messages=ASK, max_tokens=1)
    offered = client.chat.completions.create(model="auto", messages=ASK, tools=[WEATHER], max_tokens=1)
    declined = client.chat.completions.create(
        model="auto", messages=ASK, tools=[WEATHER], tool_choice="none", max_tokens=1
    )
    assert offered.usage.prompt_tokens > without.usage.prompt_tokens == declined.usage.prompt_tokens


@pytest.mark.parametrize(
    ("body", "param"),
    [
        (
            {"tools": [WEATHER], "tool_choice": {"type": "function", "function": {"name": "nope"}}},
            "tool_choice.function.name",
        ),
        ({"tool_choice": "required"}, "tool_choice"),
        ({"tools": [WEATHER, WEATHER]}, "tools"),
        (
            {
                "messages": [
                    *ASK,
                    {
                        "role": "assistant",
                        "tool_calls": [
                            {"id": "c1", "type": "function", "function": {"name": "f", "arguments": "{oops"}}
                        ],
                    },
                    {"role": "tool", "tool_call_id": "c1", "content": "x"},
                ]
            },
            "messages[1].tool_calls[0].function.arguments",
        ),
        ({"tools": [{"type": "function", "function": {"name": "bad name"}}]}, "tools[0].function.name"),
    ],
)
def test_bad_tool_requests_are_400_naming_the_field(server, body, param):
    response = httpx.post(
        server.base_url + "/v1/chat/completions", json={"messages": ASK, "max_tokens": 4, **body}, timeout=30
    )
    assert response.status_code == 400, response.text
    assert response.json()["error"]["param"] == param


def test_with_an_image_on_a_template_without_tools_the_hermes_format_is_used(client):
    """Qwen2.5-VL's template renders no tools: they are described in the system message in the
    Hermes format its family uses, and the forced call is parsed as usual."""
    from tests.conftest import png_data_uri

    image = {"type": "image_url", "image_url": {"url": png_data_uri(64, 64, seed=8)}}
    look = [{"role": "user", "content": [image, {"type": "text", "text": "Where was this taken? Check the weather."}]}]
    plain = client.chat.completions.create(model="auto", messages=look, max_tokens=1)
    reply = client.chat.completions.create(
        model="auto",
        messages=look,
        tools=[WEATHER],
        tool_choice={"type": "function", "function": {"name": "get_weather"}},
        max_tokens=200,
        temperature=0,
    )
    assert reply.model_extra["mmserve"]["route"] == "vision"
    assert reply.usage.prompt_tokens > plain.usage.prompt_tokens  # the tools were described
    (call,) = reply.choices[0].message.tool_calls
    assert call.function.name == "get_weather" and set(json.loads(call.function.arguments)) == {"city", "unit"}
    assert reply.choices[0].finish_reason == "tool_calls"
