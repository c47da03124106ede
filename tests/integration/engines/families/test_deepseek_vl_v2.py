"""The DeepSeek-VL2 adapter's ``after_load`` (mmserve.engines.families.deepseek_vl_v2), on the tiny checkpoint."""

from __future__ import annotations

import pytest

pytest.importorskip("mlx_vlm")

from tests.integration.guards.families._real_processor import Served, image  # noqa: E402


def test_greedy_text_is_the_same_every_time(tmp_path):
    """With after_load, mlx_vlm.generate preparing the image itself gives one greedy text (lazy inputs gave two)."""
    import mlx_vlm

    served = Served.write("deepseek_vl_v2", tmp_path)
    texts = {
        mlx_vlm.generate(
            served.model, served.processor, served.prompt(1), image=[image(300, 300)], max_tokens=2, temperature=0,
            verbose=False,
        ).text
        for _ in range(8)
    }  # fmt: skip
    assert len(texts) == 1
