"""Safe image intake: data URIs, remote http(s) and local files to decoded RGB images.

``MediaLoader`` applies a ``MediaPolicy`` (allowed sources, address allowlist,
byte, pixel, time and count caps) and raises only ``mmserve.errors`` image
errors, each naming the request field it is about. Nothing here imports mlx or
litestar.
"""

from mmserve.media._decode import DecodedImage
from mmserve.media._loader import MediaLoader
from mmserve.media._policy import MediaPolicy

__all__ = ["DecodedImage", "MediaLoader", "MediaPolicy"]
