"""Real LUKS2 headers on plain files, checked by the real ``cryptsetup``; no device mapper needed.

The passphrase always goes to cryptsetup on standard input (``--key-file -``), never on argv, and
cryptsetup reads it to the end of input without stripping a newline, exactly as a real key file.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

from panel.lab.procs import LabError

# A tiny header: 16 KiB of metadata, a 256 KiB keyslot area, data from 1 MiB on. The keyslot uses
# PBKDF2 at its minimum iteration count, so formatting and testing each take a few milliseconds
# (a real header spends about 2 s on Argon2 on purpose). No caching is needed at that speed.
VOLUME_BYTES = 2 * 1024 * 1024
FORMAT_OPTIONS = [
    "--type", "luks2",
    "--pbkdf", "pbkdf2",
    "--pbkdf-force-iterations", "1000",
    "--luks2-metadata-size", "16k",
    "--luks2-keyslots-size", "256k",
    "--offset", "2048",  # in 512-byte sectors: the data area starts at 1 MiB
    "--batch-mode",
]  # fmt: skip


def cryptsetup_path() -> str:
    """cryptsetup lives in /usr/sbin, which is not on every user's PATH."""
    found = shutil.which("cryptsetup") or shutil.which("cryptsetup", path="/usr/sbin:/sbin")
    if found is None:
        raise LabError("cryptsetup is not installed (Debian package cryptsetup-bin).")
    return found


def create_volume(path: Path, passphrase: str | bytes) -> Path:
    """Write a small file at ``path`` holding a LUKS2 header whose only keyslot opens with ``passphrase``."""
    secret = passphrase.encode() if isinstance(passphrase, str) else passphrase
    path.parent.mkdir(parents=True, exist_ok=True)
    path.unlink(missing_ok=True)
    with open(path, "wb") as image:
        image.truncate(VOLUME_BYTES)  # sparse: costs no disk until written
    result = subprocess.run(
        [cryptsetup_path(), "luksFormat", *FORMAT_OPTIONS, "--key-file", "-", str(path)],
        input=secret,
        capture_output=True,
        check=False,
    )
    if result.returncode != 0:
        raise LabError(f"cryptsetup luksFormat {path} failed: {result.stderr.decode(errors='replace').strip()}")
    return path


def passphrase_opens(path: Path, passphrase: bytes) -> bool:
    """True if ``passphrase`` (exact bytes, a newline included if there is one) opens ``path``."""
    result = subprocess.run(
        [cryptsetup_path(), "open", "--test-passphrase", "--key-file", "-", str(path)],
        input=passphrase,
        capture_output=True,
        check=False,
    )
    return result.returncode == 0
