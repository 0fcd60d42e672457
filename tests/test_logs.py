"""Logging for long-running commands: every record with time, level and logger, as text or JSON lines."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from sn46_pipelines.logs import logging_config

EMIT = """
import logging, sys
from sn46_pipelines.logs import configure_logging
configure_logging(sys.argv[1], sys.argv[2])
logging.getLogger("sn46_pipelines.modelstore.inference").info("swapped to %s", "v0000000002")
logging.getLogger("uvicorn.access").info("GET /health 200")
logging.getLogger("sn46_pipelines.gateway.app").debug("hidden at INFO")
try:
    1 / 0
except ZeroDivisionError:
    logging.getLogger("sn46_pipelines.gateway.app").exception("request failed")
"""


def emitted(level: str, fmt: str) -> list[str]:
    """What a fresh process logs to stderr after configuring logging as a command does."""
    result = subprocess.run(
        [sys.executable, "-c", EMIT, level, fmt], capture_output=True, text=True, check=True
    )
    assert result.stdout == ""
    return result.stderr.splitlines()


def test_json_lines_carry_time_level_logger_and_the_exception():
    lines = [json.loads(line) for line in emitted("INFO", "json")]
    assert [(e["level"], e["logger"], e["message"]) for e in lines] == [
        ("INFO", "sn46_pipelines.modelstore.inference", "swapped to v0000000002"),
        ("INFO", "uvicorn.access", "GET /health 200"),
        ("ERROR", "sn46_pipelines.gateway.app", "request failed"),
    ]
    assert all(e["time"].endswith("+00:00") for e in lines)
    assert "ZeroDivisionError" in lines[-1]["exception"]


def test_text_lines_show_level_and_logger_and_debug_only_when_asked():
    info = emitted("INFO", "text")
    assert "INFO    sn46_pipelines.modelstore.inference: swapped to v0000000002" in info[0]
    assert info[0][:4].isdigit()  # starts with the time
    assert not any("hidden at INFO" in line for line in info)
    assert any("hidden at INFO" in line for line in emitted("debug", "text"))


def test_a_bad_level_or_format_is_named():
    with pytest.raises(ValueError, match="log level 'LOUD'"):
        logging_config("loud")
    with pytest.raises(ValueError, match="log format 'xml'"):
        logging_config("INFO", "xml")  # type: ignore[arg-type]


def test_the_long_running_commands_take_the_options():
    from sn46_pipelines.cli import build_parser

    parser = build_parser()
    serve = parser.parse_args(["serve", "--log-format", "json", "--log-level", "debug"])
    assert (serve.log_format, serve.log_level, serve.access_log) == ("json", "DEBUG", False)
    gateway = parser.parse_args(["gateway", "--log-format", "json"])
    assert (gateway.log_format, gateway.log_level) == ("json", "INFO")
