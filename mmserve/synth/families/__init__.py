"""The families ``mmserve synth --family NAME`` can write, by name."""

from . import gemma3, gemma3n, kimi_vl, phi3_v

FAMILIES = {f.name: f for f in (gemma3.FAMILY, gemma3n.FAMILY, kimi_vl.FAMILY, phi3_v.FAMILY)}
