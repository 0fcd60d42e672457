"""Logging for the long-running commands (``sn46 gateway``, ``sn46 serve``), configured in one place.

Without a configuration Python drops INFO records and prints warnings with no
time, level or logger, which is useless in a service's log stream. Every
record here carries all three, as text for a terminal or as one JSON object
per line for a log collector, and uvicorn's own loggers go through the same
handler, so its access lines and the project's look alike. The returned
dictionary is what uvicorn takes as ``log_config``: each worker process it
starts applies it again.
"""

from __future__ import annotations

import argparse
import json
import logging
import logging.config
from datetime import UTC, datetime
from typing import Any, Literal

LogFormat = Literal["text", "json"]
LOG_FORMATS: tuple[LogFormat, ...] = ("text", "json")
#: uvicorn's loggers: they get our handler instead of their own.
_UVICORN_LOGGERS = ("uvicorn", "uvicorn.error", "uvicorn.access")
#: Libraries that narrate routine work at INFO ("Found credentials in environment variables"):
#: WARNING and up unless DEBUG is asked for.
_CHATTY_LOGGERS = ("botocore", "boto3", "urllib3", "s3transfer", "httpx", "httpcore")


class JsonFormatter(logging.Formatter):
    """One JSON object per record: ``time`` (UTC, ISO 8601), ``level``, ``logger``, ``message``."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, default=str)


def logging_config(level: str = "INFO", fmt: LogFormat = "text") -> dict[str, Any]:
    """The ``logging.config.dictConfig`` dictionary for ``level`` and ``fmt``."""
    if fmt not in LOG_FORMATS:
        raise ValueError(f"log format {fmt!r}: expected one of {', '.join(LOG_FORMATS)}")
    level = level.upper()
    if not isinstance(logging.getLevelName(level), int):
        raise ValueError(f"log level {level!r}: expected DEBUG, INFO, WARNING, ERROR or CRITICAL")
    formatter: dict[str, Any] = (
        {"()": f"{__name__}.JsonFormatter"}
        if fmt == "json"
        else {"format": "%(asctime)s %(levelname)-7s %(name)s: %(message)s"}
    )
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"default": formatter},
        "handlers": {
            "default": {
                "class": "logging.StreamHandler",
                "formatter": "default",
                "stream": "ext://sys.stderr",
            }
        },
        "root": {"handlers": ["default"], "level": level},
        "loggers": {
            **{name: {"handlers": [], "level": level, "propagate": True} for name in _UVICORN_LOGGERS},
            **{name: {"level": "DEBUG" if level == "DEBUG" else "WARNING"} for name in _CHATTY_LOGGERS},
        },
    }


def configure_logging(level: str = "INFO", fmt: LogFormat = "text") -> dict[str, Any]:
    """Apply :func:`logging_config` to this process and return it (for uvicorn's ``log_config``)."""
    config = logging_config(level, fmt)
    logging.config.dictConfig(config)
    return config


def add_logging_arguments(parser: argparse.ArgumentParser) -> None:
    """``--log-level`` and ``--log-format``, the same on every long-running command."""
    parser.add_argument(
        "--log-level",
        type=str.upper,
        choices=("DEBUG", "INFO", "WARNING", "ERROR"),
        default="INFO",
        help="DEBUG, INFO (default), WARNING or ERROR",
    )
    parser.add_argument(
        "--log-format",
        choices=LOG_FORMATS,
        default="text",
        help="text (default) or json, one object per line",
    )
