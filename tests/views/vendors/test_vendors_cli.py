"""``python -m panel vendors verify``, ``cloudflare under-attack``, ``cloudflare purge``, ``stripe group``
and ``mailgun unsuppress``, as a script runs them, against the stand-ins."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from panel.lab import secrets
from panel.lab.standins import StandinServers
from panel.store import Store
from tests.views.vendors.conftest import WRONG_KEYS, config_text

ROOT = Path(__file__).resolve().parents[3]


@pytest.fixture
def cli(tmp_path: Path, standins: StandinServers) -> Any:
    config = tmp_path / "panel.toml"
    config.write_text(config_text(standins))
    env = {k: v for k, v in os.environ.items()
           if k not in ("CLOUDFLARE_API_TOKEN", "STRIPE_API_KEY", "MAILGUN_API_KEY")}
    env.update(PANEL_DATA_DIR=str(tmp_path / "data"), PYTHON_KEYRING_BACKEND="panel.lab.secrets.DemoKeyring",
               PYTHONPATH=str(ROOT))

    def run(*argv: str, extra: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
        done = subprocess.run([sys.executable, "-m", "panel", "--config", str(config), *argv], capture_output=True,
                              text=True, env={**env, **(extra or {})}, cwd=ROOT, timeout=120,
                              stdin=subprocess.DEVNULL, check=False)
        for secret in [secrets.CLOUDFLARE_TOKEN, secrets.STRIPE_KEY, secrets.MAILGUN_KEY, *WRONG_KEYS.values()]:
            assert secret not in done.stdout and secret not in done.stderr
        return done

    run.store_path = tmp_path / "data" / "panel.sqlite3"  # type: ignore[attr-defined]
    return run


def test_vendors_verify(cli: Any) -> None:
    done = cli("vendors", "verify")
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert len(lines) == 3 and all(" ok " in line for line in lines)
    assert "Example SaaS" in done.stdout and "(key keyring)" in done.stdout
    done = cli("vendors", "verify", "--json", extra={"STRIPE_API_KEY": WRONG_KEYS["stripe"]})
    assert done.returncode == 1
    rows = {row["vendor"]: row for row in json.loads(done.stdout)}
    assert rows["stripe"]["ok"] is False and rows["stripe"]["key"] == "environment"
    assert "refused" in rows["stripe"]["message"] and rows["cloudflare"]["ok"] is True


def test_under_attack_on_and_off_from_a_script(cli: Any, standins: StandinServers) -> None:
    standins.cloudflare.security_level = "high"
    refused = cli("cloudflare", "under-attack", "on")
    assert refused.returncode == 1 and "Refusing" in refused.stderr
    assert standins.cloudflare.security_level == "high"
    done = cli("cloudflare", "under-attack", "on", "--yes")
    assert done.returncode == 0, done.stderr
    assert standins.cloudflare.security_level == "under_attack"
    done = cli("cloudflare", "under-attack", "off", "--yes")
    assert done.returncode == 0 and "under_attack -> high" in done.stdout
    assert standins.cloudflare.security_level == "high"
    store = Store(cli.store_path)
    try:
        details = [e.detail for e in store.audit_entries(action_prefix="cloudflare.under_attack")]
    finally:
        store.close()
    assert details == ["off: security level under_attack -> high", "on: security level high -> under_attack"]


def test_purge_stripe_group_and_unsuppress(cli: Any, standins: StandinServers) -> None:
    assert cli("cloudflare", "purge").returncode == 2
    done = cli("cloudflare", "purge", "https://example.com/a.css", "--yes")
    assert done.returncode == 0 and standins.cloudflare.purges[-1] == {"files": ["https://example.com/a.css"]}
    done = cli("stripe", "group", "1000001", "--json")
    assert done.returncode == 0, done.stderr
    billing = json.loads(done.stdout)
    assert billing["status"] == "past_due" and billing["delinquent"] and billing["open_invoices"]
    done = cli("mailgun", "unsuppress", "bounces", "nobody4@mail.example", "--yes")
    assert done.returncode == 0 and "nobody4@mail.example" not in standins.mailgun.suppressions["bounces"]
