"""The families ``mmserve synth --family NAME`` can write, by name."""

from . import gemma3, phi3_v

FAMILIES = {f.name: f for f in (gemma3.FAMILY, phi3_v.FAMILY)}
