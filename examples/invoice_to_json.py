"""Invoice to JSON, end to end, on an invoice this script writes itself.

Writes ``invoice_demo/invoice.pdf`` (one page, known fields), asks the server for the
fields of ``invoice_demo/invoice.schema.json`` with ``mmserve ocr --schema`` (through
``response_format`` where the server takes it, else with the schema in the prompt,
which the client says), and prints ``invoice_demo/invoice.json`` next to the fields the
invoice holds. Needs a running server::

    python examples/invoice_to_json.py [--base-url http://127.0.0.1:8000/v1]

The same from the shell:
    mmserve ocr invoice_demo/invoice.pdf --schema invoice_demo/invoice.schema.json -o invoice_demo/run.jsonl

With the demo models the answer is random text and ``json`` stays null (with
``json_error`` saying why); with a real vision model it holds the fields.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from mmserve.clients import ocr
from mmserve.clients.samples import INVOICE_FIELDS, write_invoice

SCHEMA = {
    "type": "object",
    "properties": {
        "invoice_number": {"type": "string"},
        "date": {"type": "string", "description": "YYYY-MM-DD"},
        "seller": {"type": "string"},
        "buyer": {"type": "string"},
        "currency": {"type": "string"},
        "total": {"type": "number"},
    },
    "required": ["invoice_number", "date", "seller", "buyer", "currency", "total"],
}
PROMPT = "Extract the invoice's fields."


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--base-url", help="default: $OPENAI_BASE_URL, else http://127.0.0.1:8000/v1")
    parser.add_argument("--image-side", type=int, help="longer side to send pages at (default: the server's most)")
    parser.add_argument("--folder", default="invoice_demo")
    args = parser.parse_args()
    folder = Path(args.folder)
    folder.mkdir(exist_ok=True)
    pdf = write_invoice(folder / "invoice.pdf")
    (folder / "invoice.schema.json").write_text(json.dumps(SCHEMA, indent=2) + "\n")

    summary = ocr.ocr(
        pdf,
        out=folder / "run.jsonl",
        base_url=args.base_url,
        image_side=args.image_side,
        prompt=PROMPT,
        schema=SCHEMA,
        max_tokens=256,
    )
    extracted = json.loads((folder / "invoice.json").read_text())
    print("extracted:", json.dumps(extracted["pages"][0]["json"], indent=2))
    print("expected: ", json.dumps(INVOICE_FIELDS, indent=2))
    return summary.exit_code


if __name__ == "__main__":
    sys.exit(main())
