"""The stand-ins in their own detached process, as the demo starts them."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import requests

from panel.lab import secrets
from panel.lab.standins import StandinServers, StandinsHandle, start_standins


def test_child_process_serves_reports_and_stops(tmp_path: Path) -> None:
    handle = start_standins(tmp_path)
    try:
        assert handle.pid != os.getpid() and handle.alive()
        assert os.getsid(handle.pid) == handle.pid  # its own session: it outlives the caller
        assert handle.cloudflare_url.endswith("/client/v4")
        assert StandinsHandle.from_port_file(tmp_path / "standins.json") == handle
        with requests.Session() as http:
            http.trust_env = False
            zones = http.get(handle.cloudflare_url + "/zones",
                             headers={"Authorization": f"Bearer {secrets.CLOUDFLARE_TOKEN}"})
            assert zones.json()["result"][0]["name"] == "example.com"
            assert http.get(handle.stripe_url + "/v1/account", auth=(secrets.STRIPE_KEY, "")).status_code == 200
            assert handle.faults("mailgun", fail_next=1, status=503)["fail_next"] == 1
            assert http.get(handle.mailgun_url + "/v4/domains", auth=("api", secrets.MAILGUN_KEY)).status_code == 503
            assert http.get(handle.mailgun_eu_url + "/v4/domains",
                            auth=("api", secrets.MAILGUN_KEY)).status_code == 200
    finally:
        handle.stop()
    assert not handle.alive()
    assert not (tmp_path / "standins.json").exists()
    handle.stop()  # twice is harmless


def test_in_process_servers_stop_cleanly() -> None:
    lab = StandinServers().start()
    url = lab.stripe_url
    with requests.Session() as http:
        http.trust_env = False
        assert http.get(url + "/v1/account", auth=(secrets.STRIPE_KEY, "")).status_code == 200
        lab.stop()  # with the session's keep-alive connection still open
        with pytest.raises(requests.ConnectionError):
            http.get(url + "/v1/account", auth=(secrets.STRIPE_KEY, ""), timeout=2)
