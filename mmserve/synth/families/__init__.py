"""The families ``mmserve synth --family NAME`` can write, by name."""

from . import gemma3, llava, llava_next, paligemma

FAMILIES = {
    f.name: f for f in (gemma3.FAMILY, llava.FAMILY, llava_next.FAMILY, paligemma.FAMILY, paligemma.FAMILY_448)
}
