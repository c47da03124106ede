"""The families ``mmserve synth --family NAME`` can write, by name."""

from . import aya_vision, gemma3, gemma3n, idefics2, kimi_vl, lfm2_vl, mllama, molmo, phi3_v

FAMILIES = {
    f.name: f
    for f in (
        aya_vision.FAMILY,
        gemma3.FAMILY,
        gemma3n.FAMILY,
        idefics2.FAMILY,
        kimi_vl.FAMILY,
        lfm2_vl.FAMILY,
        mllama.FAMILY,
        molmo.FAMILY,
        phi3_v.FAMILY,
    )
}
