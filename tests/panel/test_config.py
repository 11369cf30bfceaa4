"""Every config problem gets one message naming the file, the line and the key."""

from __future__ import annotations

from pathlib import Path

import pytest

from panel.config import load_config, remove_server, save_server, set_server_key
from services.errors import ConfigError
from services.inventory import ServerSpec

GOOD = '''# The fleet. Comments must survive edits made by the window.
[servers.app1]
host = "203.0.113.10"
port = 22                    # sshd of the booted system
user = "root"
unlock_port = 2222           # dropbear in the initramfs

[servers.app1.mysql]
database = "saas"
user = "panel"
port = 3306

[[servers.app1.backups]]
name = "local"
path = "/var/backups/rdiff/app1"
max_age_hours = 26

[[servers.app1.backups]]
name = "offsite"
via = "backup1"
path = "/srv/rdiff/app1"

[servers.app1.checks]
expected_ports = [22, 80, 443]
watch_paths = ["/etc", "/usr/bin"]

[servers.backup1]
host = "203.0.113.20"

[groups]
table = "groups"
key = "id"
name = "name"
suspended = "suspended_at"
fk = "group_id"

[cloudflare]
zone = "example.com"

[stripe]
base_url = "https://api.stripe.com"

[mailgun]
domain = "mg.example.com"
base_url = "https://api.eu.mailgun.net"
'''


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "panel.toml"
    path.write_text(text)
    return path


def test_the_design_example_loads(tmp_path: Path) -> None:
    inventory = load_config(write(tmp_path, GOOD))
    app1 = inventory.servers["app1"]
    assert app1.unlock_port == 2222 and app1.encrypted
    assert app1.mysql is not None and app1.mysql.database == "saas"
    assert [b.name for b in app1.backups] == ["local", "offsite"]
    assert app1.backups[1].via == "backup1"
    assert app1.checks.expected_ports == (22, 80, 443)
    assert inventory.mailgun is not None and inventory.mailgun.base_url.endswith("eu.mailgun.net")
    assert not inventory.servers["backup1"].encrypted


@pytest.mark.parametrize(
    ("change", "key", "words"),
    [
        (("port = 22  ", 'port = "22"'), "servers.app1.port", "must be a whole number"),
        (("user = \"root\"", "usr = \"root\""), "servers.app1.usr", "unknown key"),
        (("via = \"backup1\"", "via = \"backup9\""), "servers.app1.backups.via", "backup9"),
        (("port = 3306", "port = 99999"), "servers.app1.mysql.port", "from 1 to 65535"),
        (("[groups]", "[grups]"), "grups", "unknown section"),
        (("expected_ports = [22, 80, 443]", "expected_ports = [22, \"http\"]"),
         "servers.app1.checks.expected_ports", "list of port numbers"),
        (('host = "203.0.113.20"', 'hostname = "203.0.113.20"'), "servers.backup1.hostname", "unknown key"),
    ],
)
def test_each_mistake_names_file_line_and_key(tmp_path: Path, change: tuple[str, str], key: str, words: str) -> None:
    old, new = change
    assert old in GOOD
    text = GOOD.replace(old, new, 1)
    line = next(n for n, content in enumerate(text.splitlines(), start=1) if new.strip() in content)
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    error = caught.value
    assert error.path == str(path)
    assert error.key == key
    assert error.line == line
    assert words in str(error)
    assert str(error).startswith(f"{path}:{line}: {key}:")


def test_a_missing_required_key_is_named(tmp_path: Path) -> None:
    path = write(tmp_path, '[servers.app1]\nport = 22\n')
    with pytest.raises(ConfigError, match=r"panel.toml:1: servers.app1.host: is required"):
        load_config(path)


def test_malformed_toml_names_the_line(tmp_path: Path) -> None:
    path = write(tmp_path, '[servers.app1]\nhost = "x"\nport = = 22\n')
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    assert caught.value.line == 3
    assert "not valid TOML" in str(caught.value)


def test_a_missing_file_says_so(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="does not exist"):
        load_config(tmp_path / "nope.toml")


def test_edits_keep_the_users_comments(tmp_path: Path) -> None:
    path = write(tmp_path, GOOD)
    save_server(path, ServerSpec(name="app2", host="203.0.113.11", port=2200, user="admin"))
    set_server_key(path, "app1", "host_key", "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIO")
    text = path.read_text()
    assert "# The fleet. Comments must survive edits made by the window." in text
    assert "# sshd of the booted system" in text
    inventory = load_config(path)
    assert inventory.servers["app2"].port == 2200
    assert inventory.servers["app1"].host_key == "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIO"
    remove_server(path, "app2")
    assert "app2" not in load_config(path).servers
    assert "# dropbear in the initramfs" in path.read_text()


def test_an_edit_that_would_break_the_file_is_not_written(tmp_path: Path) -> None:
    path = write(tmp_path, GOOD)
    with pytest.raises(ConfigError):
        remove_server(path, "backup1")  # app1's offsite backup names it with via
    assert path.read_text() == GOOD
