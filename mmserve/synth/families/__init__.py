"""The families ``mmserve synth --family NAME`` can write, by name."""

from . import gemma3, mistral3, pixtral, qwen3_vl

FAMILIES = {f.name: f for f in (gemma3.FAMILY, pixtral.FAMILY, mistral3.FAMILY, qwen3_vl.FAMILY)}
