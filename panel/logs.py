"""Logging to a file in the data folder. Nothing logged may hold a secret; callers log names, not values."""

from __future__ import annotations

import logging
import logging.handlers

from panel import paths


def log_path() -> str:
    return str(paths.data_dir() / "panel.log")


def setup_logging() -> None:
    root = logging.getLogger()
    if any(isinstance(h, logging.handlers.RotatingFileHandler) for h in root.handlers):
        return
    handler = logging.handlers.RotatingFileHandler(log_path(), maxBytes=2_000_000, backupCount=3,
                                                   encoding="utf-8")
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root.addHandler(handler)
    root.setLevel(logging.INFO)
    # paramiko logs every channel at INFO; its warnings are enough.
    logging.getLogger("paramiko").setLevel(logging.WARNING)
