"""~/.ssh/config is honoured: HostName, IdentityFile and ProxyJump, against real sshd servers."""

from __future__ import annotations

from pathlib import Path

from panel.lab.sshd import SshdServer, start_sshd
from services.inventory import ServerSpec
from services.ssh import SshPool, system_endpoint


def test_an_alias_with_hostname_identityfile_and_proxyjump(
    tmp_path: Path, isolated_home: Path, client_key: Path, sshd: SshdServer
) -> None:
    jump = start_sshd(tmp_path / "jump", client_key=client_key, name="jump")
    try:
        ssh_dir = isolated_home / ".ssh"
        ssh_dir.mkdir()
        (ssh_dir / "config").write_text(
            "Host app1-alias\n"
            "    HostName 127.0.0.1\n"
            f"    IdentityFile {client_key}\n"
            f"    ProxyJump root@127.0.0.1:{jump.port}\n"
        )
        (ssh_dir / "known_hosts").write_text(jump.known_hosts_line() + "\n")
        # The inventory names only the alias, the port and the pin: no identity, no address.
        spec = ServerSpec(name="app1", host="app1-alias", port=sshd.port, host_key=sshd.host_key_line)
        endpoint = system_endpoint(spec, known_hosts=tmp_path / "known_hosts")
        assert endpoint.host == "127.0.0.1"
        assert endpoint.identities == (str(client_key),)
        assert endpoint.jump is not None and endpoint.jump.port == jump.port
        pool = SshPool()
        try:
            assert pool.run(endpoint, "echo through the jump host").text() == "through the jump host\n"
        finally:
            pool.close_all()
        # The jump host logged our login, and the target saw a connection forwarded by it.
        assert "Accepted publickey" in jump.log_path.read_text()
        assert "Accepted publickey" in sshd.log_path.read_text()
    finally:
        jump.stop()
