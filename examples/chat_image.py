"""Image chat with the official openai SDK: a local file sent as a data URI, or an http(s) URL.

    .venv/bin/python examples/chat_image.py photo.jpg          # local file -> data URI
    .venv/bin/python examples/chat_image.py --url https://example.com/cat.png
    .venv/bin/python examples/chat_image.py photo.jpg --stream
    .venv/bin/python examples/chat_image.py                    # no file: a generated test picture

(server: `make serve` in another terminal)

The `mmserve` report shows what the memory guard did to the image (original vs resized size).
"""

import argparse
import base64
import io
import json
import mimetypes
import os

from openai import OpenAI

parser = argparse.ArgumentParser()
parser.add_argument("image", nargs="?", help="local image file")
parser.add_argument("--url", help="http(s) image URL instead (the server fetches it)")
parser.add_argument("--prompt", default="What is in this image?")
parser.add_argument("--stream", action="store_true")
args = parser.parse_args()


def data_uri(path: str | None) -> str:
    if path is None:  # no file given: draw one, so the example runs anywhere
        from PIL import Image, ImageDraw

        picture = Image.new("RGB", (320, 200), "white")
        ImageDraw.Draw(picture).text((20, 90), "Hello from mmserve", fill="black")
        buffer = io.BytesIO()
        picture.save(buffer, format="PNG")
        data, mime = buffer.getvalue(), "image/png"
    else:
        with open(path, "rb") as file:
            data = file.read()
        mime = mimetypes.guess_type(path)[0] or "image/png"
    return f"data:{mime};base64,{base64.b64encode(data).decode()}"


client = OpenAI(
    base_url=os.environ.get("OPENAI_BASE_URL", "http://127.0.0.1:8000/v1"),
    api_key=os.environ.get("OPENAI_API_KEY", "none"),
)
url = args.url or data_uri(args.image)
messages = [
    {
        "role": "user",
        "content": [
            {"type": "image_url", "image_url": {"url": url}},
            {"type": "text", "text": args.prompt},
        ],
    }
]

if args.stream:
    report = None
    for chunk in client.chat.completions.create(model="auto", messages=messages, max_tokens=128, stream=True):
        if chunk.choices and chunk.choices[0].delta.content:
            print(chunk.choices[0].delta.content, end="", flush=True)
        report = (chunk.model_extra or {}).get("mmserve") or report  # the final chunk carries the report
    print("\nmmserve:", json.dumps(report, indent=2))
else:
    raw = client.chat.completions.with_raw_response.create(model="auto", messages=messages, max_tokens=128)
    completion = raw.parse()
    print("route:", raw.headers.get("x-mmserve-route"))  # "vision" for image chats
    print(completion.choices[0].message.content)
    report = completion.model_extra["mmserve"]
    for image in report["images"]:
        print(f"image: sent {image['original']}, model saw {image['resized']} ({image['tokens']} tokens)")
    print("mmserve:", json.dumps(report, indent=2))
