"""Pinning the initramfs key from the running system, and the setup check and fix, through a lab server's
verified session. The lab keeps each server's files under DIR/servers/NAME; these tests give the
functions a folder of their own as the filesystem root, holding a copy of the lab dropbear's real key."""

from __future__ import annotations

import shutil
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from panel.commands.unlock import pin_initramfs_key
from panel.config import load_config, set_server_key
from panel.context import PanelContext
from panel.lab.fleet import LabInfo
from panel.lab.secrets import LUKS_PASSPHRASE, DemoKeyring
from panel.secrets import SecretStore
from panel.store import Store
from services.errors import PanelError
from services.hostkeys import PublicKey
from services.unlock import (
    RECOMMENDED_OPTIONS,
    InitramfsPaths,
    Outcome,
    Verdict,
    apply_setup_fix,
    check_setup,
    panel_public_key,
    plan_setup_fix,
    preferred_key,
    read_initramfs_host_keys,
    read_output,
    unlock_server,
)
from services.unlock.setup import find_authorized, split_authorized_line
from tests.services.unlock.unlock_helpers import request_for

pytestmark = pytest.mark.usefixtures("isolated_home")


def lab_dropbear_key(lab: LabInfo, server: str) -> Path:
    return lab.directory / "run" / server / "dropbear" / "dropbear_ed25519_host_key"


def server_root(tmp_path: Path, lab: LabInfo, server: str, folder: str = "etc/dropbear/initramfs") -> Path:
    """A filesystem root whose initramfs config folder holds the lab dropbear's key (a copy)."""
    root = tmp_path / "root"
    (root / folder).mkdir(parents=True)
    shutil.copy2(lab_dropbear_key(lab, server), root / folder / "dropbear_ed25519_host_key")
    (root / folder / "dropbear.conf").write_text('DROPBEAR_OPTIONS="-I 600 -j -k -s -c cryptroot-unlock"\n')
    return root


@pytest.fixture
def unpinned_context(lab: LabInfo, tmp_path: Path) -> Iterator[PanelContext]:
    """A context on a copy of the lab's config in which app1's initramfs key is NOT pinned."""
    config = tmp_path / "panel.toml"
    shutil.copy2(lab.config_path, config)
    set_server_key(config, "app1", "unlock_host_key", None)
    data = tmp_path / "data"
    context = PanelContext(config, load_config(config), Store(data / "panel.sqlite3"), SecretStore(DemoKeyring()),
                           known_hosts=data / "known_hosts", initramfs_known_hosts=data / "known_hosts.initramfs")
    yield context
    context.close()


@pytest.mark.lab
@pytest.mark.parametrize("folder", ["etc/dropbear/initramfs", "etc/dropbear-initramfs"])
def test_the_initramfs_key_is_pinned_from_the_running_system(
    folder: str, lab: LabInfo, unpinned_context: PanelContext, tmp_path: Path, rebooted: Callable[[str], None]
) -> None:
    context = unpinned_context
    root = server_root(tmp_path, lab, "app1", folder)
    keys = read_initramfs_host_keys(context.runner("app1"), InitramfsPaths(root=str(root)))
    key = preferred_key(keys)
    assert key is not None and key.path.endswith(f"{folder}/dropbear_ed25519_host_key")
    assert key.key == PublicKey.parse(lab.server("app1").unlock_host_key or "")

    assert pin_initramfs_key(context, "app1", key) is True
    assert load_config(context.config_path).server("app1").unlock_host_key == key.line()
    entry = context.store.audit_entries(action_prefix="unlock.pin")[0]
    assert (entry.target, entry.outcome) == ("app1", "ok") and key.key.fingerprint in entry.detail
    assert pin_initramfs_key(context, "app1", key) is False  # pinned already: nothing changes

    # At boot the pin is there: no first-use trust is needed to unlock.
    rebooted("app1")
    result = unlock_server(context.pool, request_for(context.spec("app1"), tmp_path, LUKS_PASSPHRASE))
    assert result.outcome is Outcome.UNLOCKED


@pytest.mark.lab
def test_a_different_key_on_disk_never_replaces_the_pin(lab: LabInfo, tmp_path: Path) -> None:
    """The key on disk is app2's, the config pins app1's real key: refused, config untouched, audited."""
    data = tmp_path / "data"
    context = PanelContext(lab.config_path, load_config(lab.config_path), Store(data / "panel.sqlite3"),
                           SecretStore(DemoKeyring()), known_hosts=data / "kh", initramfs_known_hosts=data / "khi")
    try:
        before = lab.config_path.read_text()
        root = server_root(tmp_path, lab, "app2")
        key = preferred_key(read_initramfs_host_keys(context.runner("app1"), InitramfsPaths(root=str(root))))
        assert key is not None
        with pytest.raises(PanelError, match="differs"):
            pin_initramfs_key(context, "app1", key)
        assert lab.config_path.read_text() == before
        assert context.store.audit_entries(action_prefix="unlock.pin")[0].outcome == "refused"
    finally:
        context.close()


@pytest.mark.lab
def test_the_setup_check_finds_what_is_missing_and_the_fix_repairs_it(
    lab: LabInfo, unpinned_context: PanelContext, tmp_path: Path
) -> None:
    context = unpinned_context
    root = server_root(tmp_path, lab, "app1")
    keys_file = root / "etc/dropbear/initramfs/authorized_keys"
    panel_key = panel_public_key(context.system_endpoint("app1"))
    assert panel_key is not None
    # Someone else's key stays; the panel's key is there but unrestricted.
    keys_file.write_text(f"ssh-ed25519 {'A' * 68} someone-else\n{panel_key.line()} panel-unrestricted\n")
    paths = InitramfsPaths(root=str(root))
    initramfs = context.initramfs_endpoint("app1")
    assert initramfs is not None

    report = check_setup(context.runner("app1"), initramfs, panel_key=panel_key, paths=paths)
    items = {item.name: item for item in report.items()}
    assert not report.ok
    assert not items["authorized_keys holds the panel's key"].ok
    assert "no-port-forwarding" in items["authorized_keys holds the panel's key"].detail
    assert not items["initramfs key pinned"].ok and report.host_keys

    # The fix's commands are parameters: here, stand-ins that leave a trace instead of touching this host.
    traces = tmp_path / "traces"
    traces.mkdir()
    fix = plan_setup_fix(report, install_command=f"touch {traces}/installed",
                         update_command=f"touch {traces}/update-initramfs-u")
    assert fix is not None and fix.pin
    preview = fix.preview()
    assert "update-initramfs" in preview and ",".join(RECOMMENDED_OPTIONS) in preview
    assert not keys_file.read_text().count("no-port-forwarding")  # a preview changes nothing

    apply_setup_fix(context.runner("app1"), fix)
    text = keys_file.read_text()
    assert "someone-else" in text
    entry = find_authorized(text, panel_key)
    assert entry is not None and entry.missing_options == ()
    assert text.count(panel_key.line().split()[1]) == 1
    assert (traces / "update-initramfs-u").exists()
    assert (keys_file.stat().st_mode & 0o777) == 0o600

    after = check_setup(context.runner("app1"), initramfs, panel_key=panel_key, paths=paths)
    assert after.authorized_ok


def test_authorized_keys_lines_are_read_with_their_options() -> None:
    line = 'no-port-forwarding,command="/usr/bin/cryptroot-unlock x,y" ssh-ed25519 AAAAC3Nz comment'
    assert split_authorized_line(line) == (
        ("no-port-forwarding", 'command="/usr/bin/cryptroot-unlock x,y"'), "ssh-ed25519 AAAAC3Nz")
    assert split_authorized_line("ssh-ed25519 AAAAC3Nz") == ((), "ssh-ed25519 AAAAC3Nz")
    assert split_authorized_line("# a comment") is None


@pytest.mark.parametrize(("text", "status", "verdict", "volume"), [
    ("Please unlock disk root\ncryptsetup: root set up successfully\n", 0, Verdict.UNLOCKED, "root"),
    ("Please unlock disk sda3_crypt: cryptsetup: sda3_crypt set up successfully\n", 0, Verdict.UNLOCKED, "sda3_crypt"),
    ("Please unlock disk root\ncryptsetup: cryptsetup failed, bad password or options?\n", 1, Verdict.WRONG, "root"),
    ("Please unlock disk root\ncryptsetup: cryptsetup failed, bad password or options?\n"
     "cryptsetup: maximum number of tries exceeded for root\n", 1, Verdict.TOO_MANY, "root"),
    ("cryptsetup: maximum number of tries exceeded for data\n", 1, Verdict.TOO_MANY, "data"),
    ("Try again later\n", 1, Verdict.LATER, None),
    ("cryptroot-unlock: every volume is already set up; the system is booting.\n", 0, Verdict.NOTHING, None),
    ("Error: Timeout reached while waiting for askpass.\n", 1, Verdict.NOTHING, None),
    ("Please unlock disk root\n", None, Verdict.DROPPED, "root"),
    ("sh: cryptroot-unlock: not found\n", 127, Verdict.UNKNOWN, None),
])
def test_cryptroot_unlock_messages_are_read(text: str, status: int | None, verdict: Verdict,
                                            volume: str | None) -> None:
    reading = read_output(text, status)
    assert (reading.verdict, reading.volume) == (verdict, volume)
