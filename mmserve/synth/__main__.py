"""``python -m mmserve.synth``: the same as ``mmserve synth``."""

import sys

from ..cli import main

raise SystemExit(main(["synth", *sys.argv[1:]]))
