"""The families ``mmserve synth --family NAME`` can write, by name."""

from . import gemma3, idefics3, smolvlm

FAMILIES = {f.name: f for f in (gemma3.FAMILY, idefics3.FAMILY, smolvlm.FAMILY)}
