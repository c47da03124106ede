"""Idefics3 and SmolVLM: the longest edge scaled to ``size.longest_edge``, cut into square tiles plus a global image.

The image processor (transformers' ``Idefics3ImageProcessor``, which SmolVLM's copies)
scales every image, small ones up, so that its longest edge is ``size.longest_edge``
(the other side keeps the aspect ratio, rounded to an even number), then scales it
again so that both sides are multiples of the tile side ``max_image_size.longest_edge``
and cuts it into those tiles; a last, global view is the whole image squeezed to one
tile. Every tile and the global view take ``image_seq_len`` ``<image>`` tokens.

Around them the processor writes ``<fake_token_around_image><row_i_col_j>`` before
each tile, ``\\n`` after each row of tiles, and ``\\n<fake_token_around_image>
<global-img>`` ... ``<fake_token_around_image>`` around the global view. Two tokens per
tile and one per row but the last are ``extra_tokens``; the last row's ``\\n`` with the
global view's ``\\n``, its two fake tokens and ``<global-img>`` are the same for every
image (the wrapper).

The processor takes no per-request longest edge in mlx-vlm 0.7.10 (its ``__call__``
hands only ``return_row_col_info`` to the image processor, and ``prepare_inputs``
drops ``size``), so the tile count depends on the aspect ratio only and a smaller
image buys nothing: ``resizable`` is False. Setting the loaded processor's
``image_processor.size = {"longest_edge": n}`` does lower the count, to what this
geometry with ``longest_edge=n`` says (while ``n`` exceeds the tile side; at or below
it an image is the global view alone and the wrapper loses its ``\n\n``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from guards.families import register
from guards.families.base import Checkpoint, Geometry, Layout

__all__ = ["Idefics3Geometry"]

MAX_IMAGE_SIZE = 4096  # transformers' absolute cap on the resized longest edge


def _longest_edge_to(width: int, height: int, longest: int) -> tuple[int, int]:
    """The longest edge set to ``longest``, the other side by the aspect ratio, rounded up to even."""
    aspect = width / height
    if width >= height:
        width = longest
        height = int(width / aspect)
        height += height % 2
    else:
        height = longest
        width = int(height * aspect)
        width += width % 2
    width, height = max(width, 1), max(height, 1)
    # then no side above MAX_IMAGE_SIZE (no-op unless longest_edge is above it)
    if width >= height and width > MAX_IMAGE_SIZE:
        width, height = MAX_IMAGE_SIZE, int(MAX_IMAGE_SIZE / aspect)
    elif height > width and height > MAX_IMAGE_SIZE:
        width, height = int(MAX_IMAGE_SIZE * aspect), MAX_IMAGE_SIZE
    return max(width, 1), max(height, 1)


def _tile_multiples(width: int, height: int, tile: int) -> tuple[int, int]:
    """Both sides scaled up to multiples of ``tile``, the longer side first (``resize_for_vision_encoder``)."""
    aspect = width / height
    if width >= height:
        width = math.ceil(width / tile) * tile
        height = math.ceil(int(width / aspect) / tile) * tile
    else:
        height = math.ceil(height / tile) * tile
        width = math.ceil(int(height * aspect) / tile) * tile
    return width, height


@register("idefics3", "smolvlm")
@dataclass(frozen=True)
class Idefics3Geometry(Geometry):
    """Tiles of ``tile`` px, ``image_seq_len`` tokens each plus a global view, after scaling to ``longest_edge``."""

    longest_edge: int = 4 * 364
    tile: int = 364
    image_seq_len: int = 169
    patch_size: int = 14
    splitting: bool = True

    family = "idefics3"
    resizable = False

    @classmethod
    def from_checkpoint(cls, checkpoint: Checkpoint) -> Idefics3Geometry:
        vision = checkpoint.section("vision_config")
        tile = int((checkpoint.setting("max_image_size") or {}).get("longest_edge") or vision.get("image_size", 364))
        patch = int(vision.get("patch_size", 14))
        scale = int(checkpoint.config.get("scale_factor", 2))
        seq_len = checkpoint.processor.get("image_seq_len") or ((tile // patch) ** 2 // scale**2)
        longest = int((checkpoint.setting("size") or {}).get("longest_edge") or 4 * tile)
        splitting = checkpoint.setting("do_image_splitting", default=True)
        return cls(longest_edge=longest, tile=tile, image_seq_len=int(seq_len), patch_size=patch, splitting=bool(splitting))

    def tiles(self, width: int, height: int) -> tuple[int, int, tuple[int, int]]:
        """(rows, columns, size cut into tiles); (0, 0, ...) when the image is one tile, the global view only."""
        resized = _longest_edge_to(width, height, self.longest_edge)
        if not self.splitting:
            return 0, 0, resized
        cut = _tile_multiples(*resized, self.tile)
        if cut[0] > self.tile or cut[1] > self.tile:
            return cut[1] // self.tile, cut[0] // self.tile, cut
        return 0, 0, cut

    def layout(self, width: int, height: int) -> Layout:
        rows, cols, cut = self.tiles(width, height)
        views = rows * cols + 1
        per_view = (self.tile // self.patch_size) ** 2
        # two markers per tile, a newline after each row but the last (that one joins the wrapper)
        extra = 2 * rows * cols + max(rows - 1, 0)
        return Layout(size=cut, tokens=views * self.image_seq_len, patches=views * per_view, extra_tokens=extra)
