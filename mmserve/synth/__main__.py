"""``python -m mmserve.synth``: the same as ``mmserve synth``."""

from . import main

raise SystemExit(main())
