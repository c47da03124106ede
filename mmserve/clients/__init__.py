"""Batch clients for an mmserve (or any OpenAI-compatible) server: image captioning and document OCR.

``mmserve.clients.caption`` and ``mmserve.clients.ocr`` are the two clients. Each
offers a function (``caption.caption`` / ``ocr.ocr``, async ``acaption`` / ``aocr``)
and a command line (``add_arguments(parser)`` + ``run(args) -> int``, or
``main(argv)``; also ``python -m mmserve.clients.caption``). Both talk to the
server only through the official ``openai`` SDK (imported when a run starts),
keep an append-only JSONL journal that makes a re-run resume where the last one
stopped, and never import mlx or litestar.
"""

from importlib import import_module

__all__ = ["JournalBusyError", "OcrSummary", "Summary", "caption", "ocr"]

# Resolved on first use, so that `python -m mmserve.clients.caption` does not import itself twice.
_HOMES = {
    "caption": ".caption",
    "ocr": ".ocr",
    "JournalBusyError": "._journal",
    "Summary": "._progress",
    "OcrSummary": ".ocr",
}


def __getattr__(name: str):
    if name not in _HOMES:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    module = import_module(_HOMES[name], __name__)
    return module if name in ("caption", "ocr") else getattr(module, name)


def __dir__() -> list[str]:
    return sorted(__all__)
