"""Text chat with the official openai SDK: one answer, then the same question streamed.

make serve                                    # in another terminal (tiny random models: gibberish answers)
.venv/bin/python examples/chat_text.py "Why is the sky blue?"
"""

import json
import os
import sys

from openai import OpenAI

# Any key works unless the server was started with --api-key.
client = OpenAI(
    base_url=os.environ.get("OPENAI_BASE_URL", "http://127.0.0.1:8000/v1"),
    api_key=os.environ.get("OPENAI_API_KEY", "none"),
)
question = sys.argv[1] if len(sys.argv) > 1 else "Write a haiku about memory."
messages = [{"role": "user", "content": question}]

# 1. Whole answer. with_raw_response also gives the headers (X-MMServe-Route says which engine answered).
raw = client.chat.completions.with_raw_response.create(model="auto", messages=messages, max_tokens=64)
completion = raw.parse()
print("route:", raw.headers.get("x-mmserve-route"))
print(completion.choices[0].message.content)
print("finish:", completion.choices[0].finish_reason, "| usage:", completion.usage)
# mmserve's own report rides along as an extra field the SDK keeps in model_extra.
print("mmserve:", json.dumps(completion.model_extra.get("mmserve"), indent=2))

# 2. Streamed: print tokens as they arrive; the last chunk carries usage.
print("\nstreaming:")
stream = client.chat.completions.create(
    model="auto", messages=messages, max_tokens=64, stream=True, stream_options={"include_usage": True}
)
for chunk in stream:
    if chunk.choices and chunk.choices[0].delta.content:
        print(chunk.choices[0].delta.content, end="", flush=True)
    if chunk.usage:
        print("\nusage:", chunk.usage)
