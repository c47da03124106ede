"""PDF to Markdown, end to end, on a document this script writes itself.

Writes a 5-page report (mixed page sizes, one page rotated) to ``pdf_demo/report.pdf``,
transcribes it with ``mmserve ocr`` (pages rendered at the side the server will read,
sent with the server's batches full) and prints ``pdf_demo/report.md``. Run it twice:
the second run sends nothing. Needs a running server::

    make serve                      # or: mmserve serve --demo
    python examples/pdf_to_markdown.py [--base-url http://127.0.0.1:8000/v1]

With the demo models the text is random; with a real vision model it is the report.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from mmserve.clients import ocr
from mmserve.clients.samples import SamplePage, sample_pages, write_pdf


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--base-url", help="default: $OPENAI_BASE_URL, else http://127.0.0.1:8000/v1")
    parser.add_argument("--image-side", type=int, help="longer side to send pages at (default: the server's most)")
    parser.add_argument("--folder", default="pdf_demo")
    args = parser.parse_args()
    folder = Path(args.folder)
    folder.mkdir(exist_ok=True)
    pages = sample_pages(3, title="Quarterly report")
    pages.append(SamplePage(["Appendix A (landscape)", "Region  Q1  Q2  Q3", "North   12  14  15"], size=(792, 612)))
    pages.append(SamplePage(["Appendix B (a page stored rotated)", "Signed: J. Doe"], rotate=90))
    pdf = write_pdf(folder / "report.pdf", pages)

    summary = ocr.ocr(pdf, out=folder / "run.jsonl", base_url=args.base_url, image_side=args.image_side, max_tokens=512)
    for line in (folder / "run.jsonl").read_text().splitlines():
        record = json.loads(line)
        print(f"page {record['page']}: sent {record['size']}, read at {record['resized']}, {record['tokens']} tokens")
    print((folder / "report.md").read_text())
    return summary.exit_code


if __name__ == "__main__":
    sys.exit(main())
