"""Log lines as an operator reads them: console request lines, and one road for every record."""

from __future__ import annotations

import json
import logging
import re

import pytest
import structlog

from mmserve.logs import configure_logging

_ANSI = re.compile(r"\x1b\[[0-9;]*m")


@pytest.fixture(autouse=True)
def _restore_logging():
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)
    logging.captureWarnings(False)
    structlog.reset_defaults()


def test_console_request_line_leads_with_method_path_status_route_model_tokens_time(capsys):
    """A console request line reads 'POST /v1/chat/completions 200 route=.. model=.. tokens=p+c total_ms=..'."""
    configure_logging("info", json=False)
    fields = {"request_id": "abc", "method": "POST", "path": "/v1/chat/completions", "status": 200,
              "images": 1, "resized": 1, "route": "vision", "model": "qwen", "prompt_tokens": 300,
              "completion_tokens": 16, "total_ms": 812.5}  # fmt: skip
    structlog.get_logger("mmserve").info("request", **fields)
    line = _ANSI.sub("", capsys.readouterr().err)
    after = line.split("POST /v1/chat/completions 200", 1)[1].split()
    assert after[:4] == ["route=vision", "model=qwen", "tokens=300+16", "total_ms=812.5"]


def test_json_mode_renders_uvicorn_and_framework_records_and_tracebacks_as_json(capsys):
    """Records of the standard library's loggers come out as JSON lines, a traceback as a field."""
    configure_logging("info", json=True)
    logging.getLogger("uvicorn.error").warning("something from uvicorn")
    try:
        raise RuntimeError("boom")
    except RuntimeError:
        logging.getLogger("litestar").exception("handler failed")
    lines = capsys.readouterr().err.strip().splitlines()
    events = [json.loads(line) for line in lines]  # every line is JSON
    assert events[0]["event"] == "something from uvicorn" and events[0]["level"] == "warning"
    assert events[1]["logger"] == "litestar" and "RuntimeError: boom" in events[1]["exception"]


def test_banner_is_a_block_on_the_console_and_fields_in_json(capsys):
    """The start-up banner is its text block on a console and structured fields in JSON."""
    configure_logging("info", json=False)
    structlog.get_logger().info("started", banner_text="mmserve 0.1.0 serving\n  text ...", budget_bytes=1)
    assert capsys.readouterr().err == "mmserve 0.1.0 serving\n  text ...\n"
    configure_logging("info", json=True)
    structlog.get_logger().info("started", banner_text="block", budget_bytes=1)
    event = json.loads(capsys.readouterr().err)
    assert event["budget_bytes"] == 1 and "banner_text" not in event
