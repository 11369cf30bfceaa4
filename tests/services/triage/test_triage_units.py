"""systemd units over a real sshd, with stand-in systemctl of two systemd versions first on the remote PATH
(this machine does not run systemd)."""

from __future__ import annotations

import datetime as dt

import pytest

from services.errors import PanelError, RemoteCommandError
from services.ssh import SshRunner
from services.triage.units import control_unit, list_units, parse_units_plain, unit_status
from tests.services.triage.triage_fakes import FakeBin, sample_journal

OLD_TABLE = """\
  UNIT                         LOAD   ACTIVE   SUB     DESCRIPTION
  cron.service                 loaded active   running Regular background program processing daemon
● saas-worker.service          loaded failed   failed  SaaS background worker
  nginx.service                loaded active   running A high performance web server and a reverse proxy server
  ghost.service                not-found inactive dead ghost.service

LOAD   = Reflects whether the unit definition was properly loaded.
ACTIVE = The high-level unit activation state, i.e. generalization of SUB.
SUB    = The low-level unit activation state, values depend on unit type.

4 loaded units listed. Pass --all to see loaded but inactive units, too.
"""


def test_the_plain_table_of_older_systemd_is_parsed() -> None:
    units = {u.name: u for u in parse_units_plain(OLD_TABLE)}
    assert set(units) == {"cron.service", "saas-worker.service", "nginx.service", "ghost.service"}
    assert units["saas-worker.service"].failed and units["saas-worker.service"].description == "SaaS background worker"
    assert units["ghost.service"].load == "not-found"
    assert units["nginx.service"].short_name == "nginx" and units["nginx.service"].running


@pytest.mark.parametrize("mode", ["new", "old"])
def test_units_are_listed_with_json_or_from_the_plain_table(runner: SshRunner, fake_bin: FakeBin, mode: str) -> None:
    fake_bin.set_mode(mode)
    listed = list_units(runner, "app1", path_prefix=fake_bin.prefix)
    assert listed.format == ("json" if mode == "new" else "plain")
    names = {u.name for u in listed.units}
    assert {"nginx.service", "mariadb.service", "saas-worker.service", "ssh.socket", "apt-daily.timer"} <= names
    worker = listed.find("saas-worker")
    assert worker is not None and worker.failed and worker.description == "SaaS background worker"
    nginx = listed.find("nginx.service")
    assert nginx is not None and (nginx.active, nginx.sub) == ("active", "running")


def test_without_systemd_the_operator_is_told_so(runner: SshRunner) -> None:
    with pytest.raises(RemoteCommandError) as raised:
        list_units(runner, "app1")  # the real systemctl of this container
    assert "systemd" in str(raised.value)


def test_a_units_status_comes_with_its_last_log_lines(runner: SshRunner, fake_bin: FakeBin) -> None:
    fake_bin.append_journal(sample_journal(dt.datetime(2024, 1, 2, 3, 0, tzinfo=dt.UTC), 40))
    status = unit_status(runner, "app1", "saas-worker.service", lines=3, path_prefix=fake_bin.prefix)
    assert status.status_text.startswith("× saas-worker.service - SaaS background worker")
    assert "Active: failed (failed)" in status.status_text and status.exit_status == 3
    assert len(status.log) == 3 and all("Traceback" in e.message for e in status.log)
    fake_bin.remove_journal()
    quiet = unit_status(runner, "app1", "nginx", path_prefix=fake_bin.prefix)
    assert quiet.exit_status == 0 and quiet.log == () and "No journal" in quiet.log_note


def test_restart_and_stop_run_systemctl_with_the_unit(runner: SshRunner, fake_bin: FakeBin) -> None:
    assert control_unit(runner, "app1", "nginx.service", "restart", path_prefix=fake_bin.prefix) == "active"
    assert control_unit(runner, "app1", "nginx.service", "stop", path_prefix=fake_bin.prefix) == "inactive"
    assert fake_bin.calls() == [["systemctl", "restart", "--", "nginx.service"],
                                ["systemctl", "stop", "--", "nginx.service"]]
    assert fake_bin.unit("nginx.service")["active"] == "inactive"


def test_a_failing_restart_says_what_systemd_said(runner: SshRunner, fake_bin: FakeBin) -> None:
    with pytest.raises(RemoteCommandError) as raised:
        control_unit(runner, "app1", "broken.service", "restart", path_prefix=fake_bin.prefix)
    assert "control process exited with error code" in str(raised.value) and raised.value.exit_status == 1


@pytest.mark.parametrize("name", ["--now", "nginx; reboot", "$(id)", "", "a b"])
def test_a_unit_name_never_reaches_the_shell_or_becomes_an_option(runner: SshRunner, fake_bin: FakeBin,
                                                                  name: str) -> None:
    with pytest.raises(PanelError):
        control_unit(runner, "app1", name, "restart", path_prefix=fake_bin.prefix)
    with pytest.raises(PanelError):
        control_unit(runner, "app1", "nginx.service", "mask", path_prefix=fake_bin.prefix)
    assert fake_bin.calls() == []
