"""The rest of the API in one tour: logprobs, n choices, logit_bias, a text completion, the
Responses API (streamed), and tokenize / detokenize.

make serve                                    # in another terminal (tiny random models: gibberish answers)
.venv/bin/python examples/more_apis.py
"""

import os

import httpx
from openai import OpenAI

base_url = os.environ.get("OPENAI_BASE_URL", "http://127.0.0.1:8000/v1")
client = OpenAI(base_url=base_url, api_key=os.environ.get("OPENAI_API_KEY", "none"))
ask = [{"role": "user", "content": "Name a colour."}]

# logprobs: each token's log-probability and its 3 most likely alternatives.
reply = client.chat.completions.create(
    model="auto", messages=ask, max_tokens=5, temperature=0, logprobs=True, top_logprobs=3
)
for entry in reply.choices[0].logprobs.content:
    print(f"{entry.token!r:>14} {entry.logprob:7.3f}  alternatives: {[t.token for t in entry.top_logprobs]}")

# n: three sampled answers side by side in the batch (a seed makes them repeatable).
three = client.chat.completions.create(model="auto", messages=ask, max_tokens=8, n=3, seed=7)
print("n=3:", [c.message.content for c in three.choices])

# logit_bias: token 300 pushed up so far that greedy decoding always picks it.
biased = client.chat.completions.create(
    model="auto", messages=ask, max_tokens=3, temperature=0, logit_bias={"300": 100}
)
print("biased:", repr(biased.choices[0].message.content))

# A text completion: the prompt as it is, no chat template.
completion = client.completions.create(model="auto", prompt="Once upon a time", max_tokens=12, temperature=0)
print("completion:", repr(completion.choices[0].text))

# The Responses API, streamed: print the text as it arrives.
with client.responses.stream(model="auto", input="Tell me a story.", max_output_tokens=16) as stream:
    for event in stream:
        if event.type == "response.output_text.delta":
            print(event.delta, end="", flush=True)
        elif event.type in ("response.completed", "response.incomplete"):
            print(f"\n[{event.type}]")

# Tokenize and detokenize (vLLM's routes, at the server's root).
root = base_url.removesuffix("/v1")
tokens = httpx.post(f"{root}/tokenize", json={"prompt": "Hello, world"}).json()
print(
    "tokens:",
    tokens["tokens"],
    "| back:",
    httpx.post(f"{root}/detokenize", json={"tokens": tokens["tokens"]}).json()["prompt"],
)
