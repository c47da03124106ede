"""Structured extraction: a JSON schema over a scanned invoice, parsed into a pydantic object.

make serve                                    # in another terminal (tiny random models: random values)
.venv/bin/python examples/extract_invoice.py

The reply is held to the schema by constrained decoding, so it always parses, whatever
the model. The invoice image is drawn here with Pillow.
"""

import base64
import io
import os
from typing import Literal

from openai import OpenAI
from PIL import Image, ImageDraw
from pydantic import BaseModel, Field


class Invoice(BaseModel):
    vendor: str = Field(max_length=40)
    number: str = Field(max_length=20)
    total: float
    currency: Literal["EUR", "USD", "GBP"]


page = Image.new("RGB", (850, 1100), "white")
draw = ImageDraw.Draw(page)
for y, line in enumerate(
    ["ACME Supplies Ltd", "Invoice No. 2024-117", "3 x Widget   EUR 30.00", "TOTAL        EUR 30.00"]
):
    draw.text((80, 100 + 60 * y), line, fill="black")
buffer = io.BytesIO()
page.save(buffer, format="PNG")
image = "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode()

client = OpenAI(
    base_url=os.environ.get("OPENAI_BASE_URL", "http://127.0.0.1:8000/v1"),
    api_key=os.environ.get("OPENAI_API_KEY", "none"),
)
completion = client.chat.completions.parse(
    model="auto",
    messages=[
        {
            "role": "user",
            "content": [
                {"type": "image_url", "image_url": {"url": image}},
                {"type": "text", "text": "Extract the invoice's vendor, number, total and currency."},
            ],
        }
    ],
    response_format=Invoice,
    max_tokens=200,
)
print(completion.choices[0].message.parsed)
print("what the guard did:", completion.model_extra["mmserve"]["images"])
