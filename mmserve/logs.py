"""structlog set-up (called once by the CLI or the app factory, never at import).

Every line goes through structlog: mmserve's own events, and the standard-library
records of uvicorn, Litestar and asyncio (through ``ProcessorFormatter``), so a JSON
log has JSON lines only, tracebacks included as a field.
"""

from __future__ import annotations

import logging
import sys

import structlog

__all__ = ["WORKER_LOG_FORMAT", "configure_logging", "log_format"]

# Tells a worker process how the server logs, so that its tracebacks match (JSON or text).
WORKER_LOG_FORMAT = "MMSERVE_WORKER_LOG_FORMAT"
_format = "console"


def log_format() -> str:
    """``json`` or ``console``: what ``configure_logging`` chose last."""
    return _format


# Console request lines lead with these, in this order: what was asked, how it went, where, how long.
_REQUEST_LEAD = ("route", "model", "tokens", "total_ms")


def _drop_banner_text(logger, name, event_dict: dict) -> dict:
    """JSON has the banner's fields; its console text would only repeat them."""
    event_dict.pop("banner_text", None)
    return event_dict


class _ConsoleRenderer:
    """structlog's console renderer in insertion order, with the banner as its block and a
    request line that reads 'POST /v1/chat/completions 200 route=... model=... tokens=...'."""

    def __init__(self) -> None:
        self._inner = structlog.dev.ConsoleRenderer(sort_keys=False, colors=sys.stderr.isatty())

    def __call__(self, logger, name, event_dict: dict) -> str:
        banner = event_dict.pop("banner_text", None)
        if banner is not None:
            return banner
        if event_dict.get("event") == "request" and "method" in event_dict:
            event_dict = _request_line(event_dict)
        return self._inner(logger, name, event_dict)


def _request_line(fields: dict) -> dict:
    fields = dict(fields)
    fields.pop("event")
    head = f"{fields.pop('method')} {fields.pop('path', '')} {fields.pop('status', '-')}"
    if "prompt_tokens" in fields or "completion_tokens" in fields:
        fields["tokens"] = f"{fields.pop('prompt_tokens', 0)}+{fields.pop('completion_tokens', 0)}"
    lead = {key: fields.pop(key) for key in _REQUEST_LEAD if key in fields}
    return {"event": head, **lead, **fields}


def configure_logging(level: str = "info", json: bool | None = None) -> None:
    """JSON lines when stderr is not a terminal (or ``json=True``), readable console lines otherwise."""
    global _format
    if json is None:
        json = not sys.stderr.isatty()
    _format = "json" if json else "console"
    numeric = logging.getLevelNamesMapping()[level.upper()]
    renderer = structlog.processors.JSONRenderer() if json else _ConsoleRenderer()
    shared = [
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
    ]
    tail = [_drop_banner_text, structlog.processors.format_exc_info] if json else []
    structlog.configure(
        processors=[structlog.contextvars.merge_contextvars, *shared, *tail, renderer],
        wrapper_class=structlog.make_filtering_bound_logger(numeric),
        logger_factory=structlog.PrintLoggerFactory(file=sys.stderr),
        cache_logger_on_first_use=False,
    )
    # The standard library's records (uvicorn, Litestar, asyncio, warnings) take the same road.
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            foreign_pre_chain=[structlog.stdlib.add_logger_name, *shared],
            processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta, *tail, renderer],
        )
    )
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(numeric)
    logging.captureWarnings(True)
    # uvicorn's own start and stop lines repeat the banner and the shutdown line: shown at debug.
    logging.getLogger("uvicorn.error").setLevel(logging.DEBUG if numeric <= logging.DEBUG else logging.WARNING)
