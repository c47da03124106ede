"""The families ``mmserve synth --family NAME`` can write, by name."""

from . import gemma3, gemma3n, phi3_v

FAMILIES = {f.name: f for f in (gemma3.FAMILY, gemma3n.FAMILY, phi3_v.FAMILY)}
