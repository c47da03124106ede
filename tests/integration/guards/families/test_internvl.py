"""InternVL's tiles (guards.families.internvl) against mlx-vlm's real processor, in both checkpoint formats.

``internvl`` is the transformers format, ``internvl_chat`` the original one (OpenGVLab's).
"""

from __future__ import annotations

import pytest

pytest.importorskip("mlx_vlm")

from ._real_processor import Served  # noqa: E402


@pytest.fixture(scope="module", params=["internvl", "internvl_chat"])
def internvl(request, tmp_path_factory) -> Served:
    return Served.write(request.param, tmp_path_factory.mktemp(request.param))


@pytest.mark.parametrize(("size", "grid"), [((1024, 768), (4, 3)), ((2000, 120), (12, 1))])
def test_tiles_equal_the_pixel_values(internvl, size, grid):
    """Grid tiles plus the thumbnail equal the processor's pixel_values views of 448 px."""
    geometry = internvl.geometry
    cols, rows = geometry.grid(*size)
    assert internvl.inputs(*size)["pixel_values"].shape[1:] == (cols * rows + 1, 3, 448, 448)
    assert geometry.layout(*size).size == (cols * 448, rows * 448)
    assert geometry.layout(*size).patches == (cols * rows + 1) * 32 * 32
    assert (cols, rows) == grid


def test_size_only_breaks_aspect_ties(internvl):
    """A square photo gets 2x2 tiles and a thumbnail, the same square shrunk gets one tile; a 4:3 one stays 12+1."""
    geometry = internvl.geometry
    assert internvl.tokens(internvl.inputs(1000, 1000)) == 5 * 256 == geometry.layout(1000, 1000).tokens
    assert internvl.tokens(internvl.inputs(300, 300)) == 256 == geometry.layout(300, 300).tokens
    assert geometry.layout(200, 150).tokens == geometry.layout(2000, 1500).tokens == 13 * 256
