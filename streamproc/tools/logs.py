"""Log set-up for the command line: text for people, JSON lines for log shippers."""

from __future__ import annotations

import logging
import sys

_TEXT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


def configure(level: str, fmt: str = "text") -> None:
    """Send the root logger to stderr at ``level`` as ``text`` or ``json`` (one object a line)."""
    handler = logging.StreamHandler(sys.stderr)
    if fmt == "json":
        from pythonjsonlogger.json import JsonFormatter

        handler.setFormatter(JsonFormatter(
            "%(asctime)s %(levelname)s %(name)s %(message)s %(threadName)s",
            rename_fields={"asctime": "time", "levelname": "level", "name": "logger",
                           "threadName": "thread"}))
    else:
        handler.setFormatter(logging.Formatter(_TEXT))
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level)
