"""Florence-2: an encoder-decoder captioner, not served."""

from __future__ import annotations

MODEL_TYPES = ("florence2",)

REFUSE = (
    "mmserve does not serve the vision family 'florence2': Florence-2 is an encoder-decoder captioner "
    "driven by task prompts such as <CAPTION> or <OCR>, without a chat template. Serve a chat vision "
    "model (e.g. Qwen2.5-VL), or run Florence-2 with mlx-vlm directly."
)
