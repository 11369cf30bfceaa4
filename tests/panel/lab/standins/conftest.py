"""The three stand-ins in this process, once per session; faults off and data restored per test."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import requests

from panel.lab.standins import StandinServers


@pytest.fixture(scope="session")
def standins_session() -> Iterator[StandinServers]:
    with StandinServers() as lab:
        yield lab


@pytest.fixture
def standins(standins_session: StandinServers) -> Iterator[StandinServers]:
    lab = standins_session
    lab.reset_faults()
    marks = {name: len(app.request_log) for name, app in lab.apps.items()}
    yield lab
    lab.reset_faults()
    lab.mailgun.strict_regions = False
    for name, app in lab.apps.items():
        # Only what a test may have changed is restored (from a snapshot: a few ms to ~0.2 s).
        if any(method != "GET" for _, method, _ in app.request_log[marks[name]:]) or name == "cloudflare":
            with app.lock:
                app.reset_state()
        app.request_log.clear()


@pytest.fixture
def http() -> Iterator[requests.Session]:
    with requests.Session() as session:
        session.trust_env = False
        yield session
