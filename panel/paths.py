"""Where the panel keeps its own files (platformdirs), overridable for tests with PANEL_DATA_DIR."""

from __future__ import annotations

import os
from pathlib import Path

import platformdirs


def data_dir() -> Path:
    override = os.environ.get("PANEL_DATA_DIR")
    path = Path(override) if override else platformdirs.user_data_path("panel")
    path.mkdir(parents=True, exist_ok=True, mode=0o700)
    return path


def store_path() -> Path:
    return data_dir() / "panel.sqlite3"


def known_hosts_path() -> Path:
    """Host keys the operator trusted for booted systems, in OpenSSH's format."""
    return data_dir() / "known_hosts"


def initramfs_known_hosts_path() -> Path:
    """Initramfs (dropbear) keys, kept apart so neither ever overwrites the other."""
    return data_dir() / "known_hosts.initramfs"
