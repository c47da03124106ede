"""Function calling with the official openai SDK: the model calls a tool, gets its result, answers.

make serve                                    # in another terminal (tiny random models: gibberish answers)
.venv/bin/python examples/tools.py

tool_choice names the function, so even a random-weight model makes the call (constrained
decoding holds its arguments to the schema); "auto" leaves the choice to the model.
"""

import json
import os

from openai import OpenAI

client = OpenAI(
    base_url=os.environ.get("OPENAI_BASE_URL", "http://127.0.0.1:8000/v1"),
    api_key=os.environ.get("OPENAI_API_KEY", "none"),
)
weather = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Current weather in a city",
        "parameters": {
            "type": "object",
            "properties": {"city": {"type": "string", "maxLength": 30}},
            "required": ["city"],
            "additionalProperties": False,
        },
    },
}
messages = [{"role": "user", "content": "What is the weather in Lisbon?"}]
first = client.chat.completions.create(
    model="auto",
    messages=messages,
    tools=[weather],
    tool_choice={"type": "function", "function": {"name": "get_weather"}},
    max_tokens=100,
)
call = first.choices[0].message.tool_calls[0]
print("finish:", first.choices[0].finish_reason, "| call:", call.function.name, call.function.arguments)

# Run the tool, send its result back, and let the model answer.
result = {"city": json.loads(call.function.arguments)["city"], "celsius": 21}
messages += [
    first.choices[0].message.model_dump(exclude_none=True),
    {"role": "tool", "tool_call_id": call.id, "content": json.dumps(result)},
]
answer = client.chat.completions.create(model="auto", messages=messages, tools=[weather], max_tokens=40)
print("answer:", answer.choices[0].message.content)
