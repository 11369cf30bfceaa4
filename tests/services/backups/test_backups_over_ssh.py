"""The same scripts through a real sshd (loopback): quoting survives the remote shell, one round trip."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from services.backups import changes_between, cleanup_temp, read_repository, restore_to_temp
from services.inventory import BackupSpec

ssh_pool = pytest.importorskip("services.ssh.pool")
ssh_endpoint = pytest.importorskip("services.ssh.endpoint")
hostkeys = pytest.importorskip("services.hostkeys")


class CountingSshRunner(ssh_pool.SshRunner):  # type: ignore[name-defined]
    calls = 0

    def run_script(self, script: str, **kwargs: Any) -> Any:
        self.calls += 1
        return super().run_script(script, **kwargs)


def test_read_and_restore_over_ssh(repos: Any, sshd_server: Any, lab_client_key: Path, tmp_path: Path) -> None:
    endpoint = ssh_endpoint.SshEndpoint(
        name="app1",
        host=sshd_server.host,
        port=sshd_server.port,
        user="root",
        trust=hostkeys.TrustSources(sshd_server.host_key_line, None),
        identities=(str(lab_client_key),),
        use_agent=False,
    )
    pool = ssh_pool.SshPool()
    try:
        runner = CountingSshRunner(pool, endpoint)
        odd = tmp_path / "it's $(x) a repo"
        odd.symlink_to(repos.main)
        repo = read_repository(runner, BackupSpec("local", str(odd)), server="app1")
        assert runner.calls == 1
        assert repo.where == "app1" and repo.problem is None and len(repo.sessions) == 5
        changes = changes_between(runner, repo, repo.sessions[1].time, repo.sessions[2].time, prefix="var/www")
        assert {c.path for c in changes} == {"var/www", "var/www/old.txt", "var/www/index.html"}
        copy = restore_to_temp(runner, repo, "etc/passwd", repo.sessions[0].time)
        assert not copy.local and Path(copy.target).read_text().startswith("root:")  # same machine here
        cleanup_temp(runner, copy)
        assert not Path(copy.temp_dir).exists()
        missing = read_repository(runner, BackupSpec("local", "/nonexistent/repo"), server="app1")
        assert missing.problem == "The path /nonexistent/repo does not exist on app1."
    finally:
        pool.close_all()
