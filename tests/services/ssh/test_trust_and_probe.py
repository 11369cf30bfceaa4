"""Host key trust and probing against real sshd and dropbear on loopback."""

from __future__ import annotations

import os
import signal
from pathlib import Path

import pytest

from panel.lab.dropbear import DropbearServer
from panel.lab.sshd import SshdServer
from services.errors import HostKeyMismatch, UnknownHostKey
from services.hostkeys import PublicKey, add_known_host
from services.probe import ServerState, probe_server
from services.ssh import SshPool, initramfs_endpoint, system_endpoint
from tests.services.ssh.ssh_helpers import other_key_line, spec_for

pytestmark = pytest.mark.usefixtures("isolated_home")


def _endpoints(spec, tmp_path: Path):  # type: ignore[no-untyped-def]
    system = system_endpoint(spec, known_hosts=tmp_path / "known_hosts")
    initramfs = initramfs_endpoint(spec, known_hosts=tmp_path / "known_hosts.initramfs", system=system) \
        if spec.unlock_port else None
    return system, initramfs


def test_a_pinned_key_that_matches_runs_commands(sshd: SshdServer, client_key: Path, tmp_path: Path) -> None:
    system, _ = _endpoints(spec_for(sshd, client_key, pin=sshd.host_key_line), tmp_path)
    pool = SshPool()
    try:
        assert pool.run(system, "echo hello").text() == "hello\n"
        status = probe_server(pool, system)
    finally:
        pool.close_all()
    assert status.state is ServerState.UP
    assert status.facts is not None and status.facts.uptime_seconds and status.facts.uptime_seconds > 0
    assert status.facts.kernel


def test_a_pinned_key_that_differs_is_refused_before_anything_runs(
    sshd: SshdServer, client_key: Path, tmp_path: Path
) -> None:
    marker = tmp_path / "ran"
    system, _ = _endpoints(spec_for(sshd, client_key, pin=other_key_line()), tmp_path)
    pool = SshPool()
    with pytest.raises(HostKeyMismatch) as caught:
        pool.run(system, f"touch {marker}")
    assert not marker.exists()
    assert PublicKey.parse(sshd.host_key_line).fingerprint == caught.value.fingerprint
    assert "Accepted publickey" not in sshd.log_path.read_text()  # we never even logged in
    status = probe_server(pool, system)
    assert status.state is ServerState.HOST_KEY_MISMATCH
    assert status.fingerprint == PublicKey.parse(sshd.host_key_line).fingerprint
    assert status.expected and PublicKey.parse(other_key_line()).fingerprint in status.expected[0]


def test_an_unknown_key_carries_the_offered_fingerprint_until_trusted(
    sshd: SshdServer, client_key: Path, tmp_path: Path
) -> None:
    spec = spec_for(sshd, client_key)
    system, _ = _endpoints(spec, tmp_path)
    pool = SshPool()
    with pytest.raises(UnknownHostKey) as caught:
        pool.run(system, "true")
    offered = PublicKey.parse(sshd.host_key_line)
    assert caught.value.fingerprint == offered.fingerprint
    assert caught.value.fingerprint.startswith("SHA256:")
    add_known_host(tmp_path / "known_hosts", sshd.host, sshd.port, PublicKey.parse(caught.value.public_key))
    try:
        assert pool.run(system, "echo ok").text() == "ok\n"
    finally:
        pool.close_all()


def test_the_users_known_hosts_is_read_but_never_written(
    sshd: SshdServer, client_key: Path, tmp_path: Path, isolated_home: Path
) -> None:
    ssh_dir = isolated_home / ".ssh"
    ssh_dir.mkdir()
    (ssh_dir / "known_hosts").write_text(sshd.known_hosts_line() + "\n")
    before = (ssh_dir / "known_hosts").read_text()
    system, _ = _endpoints(spec_for(sshd, client_key), tmp_path)
    pool = SshPool()
    try:
        assert pool.run(system, "echo ok").ok
    finally:
        pool.close_all()
    assert (ssh_dir / "known_hosts").read_text() == before
    assert not (tmp_path / "known_hosts").exists()


def test_up_locked_and_down(
    sshd: SshdServer, dropbear: DropbearServer, client_key: Path, tmp_path: Path
) -> None:
    spec = spec_for(sshd, client_key, pin=sshd.host_key_line, unlock_port=dropbear.port,
                    unlock_pin=dropbear.host_key_line)
    system, initramfs = _endpoints(spec, tmp_path)
    pool = SshPool()
    assert probe_server(pool, system, initramfs).state is ServerState.UP
    pool.close_all()
    sshd.stop()
    locked = probe_server(pool, system, initramfs)
    assert locked.state is ServerState.LOCKED
    assert locked.endpoint == "initramfs"
    dropbear.stop()
    down = probe_server(pool, system, initramfs)
    assert down.state is ServerState.DOWN
    assert "refused" in down.detail


def test_initramfs_and_system_keys_coexist_for_one_host(
    sshd: SshdServer, dropbear: DropbearServer, client_key: Path, tmp_path: Path
) -> None:
    """Both keys trusted through the panel's files; neither overwrites the other."""
    spec = spec_for(sshd, client_key, unlock_port=dropbear.port)
    system, initramfs = _endpoints(spec, tmp_path)
    assert initramfs is not None
    add_known_host(tmp_path / "known_hosts", sshd.host, sshd.port, PublicKey.parse(sshd.host_key_line))
    add_known_host(tmp_path / "known_hosts.initramfs", dropbear.host, dropbear.port,
                   PublicKey.parse(dropbear.host_key_line))
    pool = SshPool()
    try:
        assert probe_server(pool, system, initramfs).state is ServerState.UP
        # The initramfs answers with its own key, which the system pins would call a mismatch.
        result = pool.run(initramfs, "cryptroot-unlock")
        assert "Please unlock disk" in result.text()
    finally:
        pool.close_all()
    assert "known_hosts" in str(system.trust.panel_known_hosts)
    assert PublicKey.parse(dropbear.host_key_line).line() in (tmp_path / "known_hosts.initramfs").read_text()
    assert PublicKey.parse(dropbear.host_key_line).line() not in (tmp_path / "known_hosts").read_text()


def test_a_dropped_connection_is_reopened(sshd: SshdServer, client_key: Path, tmp_path: Path) -> None:
    system, _ = _endpoints(spec_for(sshd, client_key, pin=sshd.host_key_line), tmp_path)
    pool = SshPool()
    try:
        first_pid = int(pool.run(system, "echo $PPID").text())
        # Kill the sshd process that serves our connection: the network "drops" it.
        os.kill(first_pid, signal.SIGKILL)
        assert pool.run(system, "echo again").text() == "again\n"
        assert int(pool.run(system, "echo $PPID").text()) != first_pid
    finally:
        pool.close_all()


def test_commands_reuse_one_pooled_connection(sshd: SshdServer, client_key: Path, tmp_path: Path) -> None:
    system, _ = _endpoints(spec_for(sshd, client_key, pin=sshd.host_key_line), tmp_path)
    pool = SshPool()
    try:
        pids = {pool.run(system, "echo $PPID").text() for _ in range(5)}
    finally:
        pool.close_all()
    assert len(pids) == 1
