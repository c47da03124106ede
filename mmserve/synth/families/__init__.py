"""The families ``mmserve synth --family NAME`` can write, by name."""

from . import deepseek_vl_v2, gemma3, idefics3, internvl, internvl_chat, smolvlm

FAMILIES = {
    f.name: f
    for f in (
        deepseek_vl_v2.FAMILY,
        gemma3.FAMILY,
        idefics3.FAMILY,
        internvl.FAMILY,
        internvl_chat.FAMILY,
        smolvlm.FAMILY,
    )
}
