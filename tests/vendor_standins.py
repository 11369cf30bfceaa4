"""The Cloudflare, Stripe and Mailgun stand-ins as the vendor tests share them (the client tests and
the page tests): one set for the session, put back in order around every test."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from panel.lab.standins import StandinServers


@contextmanager
def clean_standins(lab: StandinServers) -> Iterator[StandinServers]:
    """The stand-ins with faults off for one test. Afterwards the faults go again, and the state is put
    back of every app the test sent a change to, of Cloudflare always, and of Mailgun if it has new events."""
    lab.reset_faults()
    lab.mailgun.strict_regions = False
    marks = {name: len(app.request_log) for name, app in lab.apps.items()}
    mail_events = len(lab.mailgun.events)
    yield lab
    lab.reset_faults()
    lab.mailgun.strict_regions = False
    lab.cloudflare.attack = False
    for name, app in lab.apps.items():
        changed = any(method != "GET" for _, method, _ in app.request_log[marks[name]:])
        if changed or name == "cloudflare" or (name == "mailgun" and len(lab.mailgun.events) != mail_events):
            with app.lock:
                app.reset_state()
        app.request_log.clear()
