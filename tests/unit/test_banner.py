"""The start-up banner's console block."""

from __future__ import annotations

from mmserve.banner import human_bytes, render_banner


def _report(**overrides) -> dict:
    report = {
        "version": "0.1.0", "url": "http://127.0.0.1:8000", "backend": "cpu", "device": "AMD EPYC",
        "tier": "<24GiB", "budget_bytes": 20981215232, "max_image_side": 512, "guard": True,
        "models": [{"engine": "vision", "name": "Qwen/VL", "source": "Qwen/VL", "path": "/hf/snap/abc",
                    "family": "qwen2_5_vl", "weights_bytes": 3 << 30, "context_length": 128000, "demo": False,
                    "replicas": 1}],
    }  # fmt: skip
    report.update(overrides)
    return report


def test_banner_names_url_model_source_device_and_budget():
    """The block says where it listens, each model with family, weights and where it came from, the budget."""
    text = render_banner(_report())
    assert text.startswith("mmserve 0.1.0 serving on http://127.0.0.1:8000")
    assert "qwen2_5_vl, weights 3.0 GiB" in text and "from Qwen/VL -> /hf/snap/abc" in text
    assert "budget 19.5 GiB (20981215232 bytes), images start at 512 px" in text
    assert "DEMO" not in text


def test_banner_flags_demo_models_and_a_guard_turned_off():
    """Random-weight demo models and --no-guard are spelled out, not left to be noticed."""
    model = {**_report()["models"][0], "demo": True}
    text = render_banner(_report(models=[model], guard=False))
    assert "DEMO: random weights" in text and "guard  OFF" in text


def test_human_bytes():
    """Sizes read as binary units with one decimal."""
    assert (human_bytes(512), human_bytes(1536), human_bytes(5 << 20)) == ("512 B", "1.5 KiB", "5.0 MiB")
