"""The families ``mmserve synth --family NAME`` can write, by name."""

from . import gemma3, mistral3, pixtral

FAMILIES = {f.name: f for f in (gemma3.FAMILY, pixtral.FAMILY, mistral3.FAMILY)}
