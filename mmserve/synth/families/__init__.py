"""The families ``mmserve synth --family NAME`` can write, by name."""

from . import gemma3, mistral3, pixtral, qwen2_5_vl, qwen2_vl, qwen3_vl

FAMILIES = {
    f.name: f
    for f in (gemma3.FAMILY, pixtral.FAMILY, mistral3.FAMILY, qwen2_vl.FAMILY, qwen2_5_vl.FAMILY, qwen3_vl.FAMILY)
}
