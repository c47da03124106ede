"""Each family's ``encode`` (mmserve.engines.families), on its tiny checkpoint loaded as the engine loads it.

The engine passes ``encode``'s features back to mlx-vlm as ``cached_image_features`` on
every image request, and prepares images on worker threads with streams of their own.
"""

from __future__ import annotations

import pytest

pytest.importorskip("mlx_vlm")

import mlx.core as mx  # noqa: E402

from mmserve.engines.families import adapter_for  # noqa: E402
from mmserve.synth.families import FAMILIES  # noqa: E402
from tests.integration.guards.families._real_processor import Served, on_a_thread  # noqa: E402

# Every served family with an encode, and an image size that keeps its views few
# (Idefics3 tiles every image to 1456 px). Gemma 3n's and Phi-3-vision's towers take
# tens of seconds a run on CPU: their encode is exercised by the family test's greedy run.
SIZES = {"idefics3": (400, 40), "smolvlm": (400, 40), "internvl_chat": (300, 300), "deepseek_vl_v2": (300, 300)}
SLOW = {"gemma3n", "phi3_v"}
ENCODED = sorted(
    name
    for name, family in FAMILIES.items()
    if family.kind == "vision" and name not in SLOW and adapter_for(name).refuse is None and adapter_for(name).encode
)


# DeepSeek-VL2's merged embeddings are not repeatable between computations on the CPU backend
# (docs/models.md), so two of them can differ whatever encode does.
UNREPEATABLE = {"deepseek_vl_v2"}
PARAMS = [
    pytest.param(name, marks=pytest.mark.xfail(reason="embeddings not repeatable", strict=False))
    if name in UNREPEATABLE
    else name
    for name in ENCODED
]


@pytest.fixture(scope="module", params=PARAMS)
def served(request, tmp_path_factory) -> tuple[Served, tuple[int, int]]:
    return Served.write(request.param, tmp_path_factory.mktemp(request.param)), SIZES.get(request.param, (200, 150))


def test_cached_features_give_the_same_embeddings(served):
    """Embeddings with encode's features as cached_image_features equal the ones mlx-vlm computes from pixels."""
    model, size = served
    cached, plain = model.embed(*size, cached=True), model.embed(*size, cached=False)
    assert mx.array_equal(cached.inputs_embeds, plain.inputs_embeds).item()


def test_another_thread_with_its_own_stream_gives_the_same_embeddings(served):
    """An image prepared and encoded on a worker thread's own stream embeds as on the loading thread."""
    model, size = served
    on_thread = on_a_thread(lambda: model.embed(*size, cached=True))
    assert mx.array_equal(on_thread.inputs_embeds, model.embed(*size, cached=False).inputs_embeds).item()
