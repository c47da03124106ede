"""The Pixtral / Mistral 3 adapter's ``after_load`` (mmserve.engines.families.pixtral), on the tiny checkpoints."""

from __future__ import annotations

import pytest

pytest.importorskip("mlx_vlm")

from tests.integration.guards.families._real_processor import Served, on_a_thread  # noqa: E402


@pytest.mark.parametrize("family", ["pixtral", "mistral3"])
def test_without_after_load_another_thread_cannot_run_the_tower(family, tmp_path):
    """mlx-vlm leaves the rotary table lazy on the loading thread's stream (the bug ``after_load`` fixes)."""
    served = Served.write(family, tmp_path, after_load=False)
    with pytest.raises(RuntimeError, match="There is no Stream"):
        on_a_thread(lambda: served.embed(200, 150, cached=False))
