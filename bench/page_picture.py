"""docs/ocr-page-sizes.png: one page's corner as the model reads it at the tier's side and at the ceiling.

Renders a letter page of the sample report at 300 dpi (2550x3300), resizes it as the guard
does (LANCZOS) to the sizes it plans at a 512 px start and at a 1536 px ceiling, and puts the
same top-left corner of each side by side, enlarged to one scale. Usage:
    python bench/page_picture.py docs/ocr-page-sizes.png
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import pypdfium2  # noqa: E402
from PIL import Image, ImageDraw  # noqa: E402

from guards import VisionSpec, plan_image  # noqa: E402
from mmserve.clients.samples import sample_pages, write_pdf  # noqa: E402


def main(target: str) -> int:
    with tempfile.TemporaryDirectory() as folder:
        pdf = write_pdf(Path(folder) / "page.pdf", sample_pages(1, title="Quarterly report"))
        page = pypdfium2.PdfDocument(pdf)[0].render(scale=300 / 72).to_pil().convert("L")
    width, height = page.size
    panels = []
    for label, side in (("start 512 px (tier default, detail auto)", 512), ("ceiling 1536 px (detail high)", 1536)):
        planned = plan_image(width, height, max_side=side, spec=VisionSpec())
        seen = page.resize(planned.resized, Image.Resampling.LANCZOS)
        crop_w, crop_h = round(seen.width * 0.6), round(seen.height * 0.18)  # the first lines of text
        corner = seen.crop((0, 0, crop_w, crop_h)).resize((900, round(900 * crop_h / crop_w)), Image.Resampling.NEAREST)
        caption = f"{label}: read at {planned.resized[0]}x{planned.resized[1]}, {planned.tokens} image tokens"
        panel = Image.new("L", (corner.width, corner.height + 28), 255)
        panel.paste(corner, (0, 28))
        ImageDraw.Draw(panel).text((6, 8), caption, fill=0)
        panels.append(panel)
    out = Image.new("L", (max(p.width for p in panels), sum(p.height for p in panels) + 10), 200)
    y = 0
    for panel in panels:
        out.paste(panel, (0, y))
        y += panel.height + 10
    out.save(target, optimize=True)
    print(target, out.size)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1] if len(sys.argv) > 1 else "docs/ocr-page-sizes.png"))
