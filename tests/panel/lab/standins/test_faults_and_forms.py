"""The stand-ins' building blocks: fault switches, Stripe bracket forms, multipart bodies."""

from __future__ import annotations

import pytest
import requests

from panel.lab.standins.faults import Faults
from panel.lab.standins.forms import parse_brackets, parse_multipart


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_refusals_come_before_mangled_answers() -> None:
    faults = Faults()
    faults.malformed_next(1)
    faults.fail_next(1, status=503)
    faults.throttle_next(1, retry_after=2)
    assert [faults.decide().action for _ in range(4)] == ["throttle", "fail", "malformed", "ok"]
    assert faults.requests_seen == 4


def test_drop_and_delay() -> None:
    faults = Faults()
    faults.drop_next(2, mode="close")
    faults.set_delay(250)
    first = faults.decide()
    assert (first.action, first.drop_mode, first.delay_s) == ("drop", "close", 0.25)
    assert faults.decide().action == "drop" and faults.decide().action == "ok"
    faults.reset()
    assert faults.decide().delay_s == 0


def test_rate_limit_window_tells_the_honest_wait() -> None:
    clock = FakeClock()
    faults = Faults(clock)
    faults.set_rate_limit(2, per_seconds=10)
    assert [faults.decide().action for _ in range(2)] == ["ok", "ok"]
    clock.now += 4
    refused = faults.decide()
    assert refused.action == "throttle" and refused.retry_after == pytest.approx(6)
    clock.now += 6
    assert faults.decide().action == "ok"


def test_configure_from_json() -> None:
    faults = Faults()
    faults.configure({"fail_next": 2, "status": 502, "retry_after": 0.5, "throttle_next": 1, "delay_ms": 10})
    snapshot = faults.snapshot()
    assert (snapshot["fail_next"], snapshot["status"], snapshot["retry_after"], snapshot["delay_ms"]) == \
        (2, 502, 0.5, 10)
    with pytest.raises(ValueError, match="unknown"):
        faults.configure({"explode": True})
    with pytest.raises(ValueError, match="drop_mode"):
        faults.configure({"drop_next": 1, "drop_mode": "maybe"})
    faults.configure({"reset": True})
    assert faults.snapshot()["fail_next"] == 0


def test_bracket_forms() -> None:
    parsed = parse_brackets([("metadata[group_id]", "1"), ("expand[]", "data.customer"), ("expand[]", "x"),
                             ("items[0][price]", "p1"), ("items[1][price]", "p2"), ("items[1][quantity]", "3"),
                             ("created[gte]", "5"), ("limit", "10")])
    assert parsed == {"metadata": {"group_id": "1"}, "expand": ["data.customer", "x"],
                      "items": [{"price": "p1"}, {"price": "p2", "quantity": "3"}], "created": {"gte": "5"},
                      "limit": "10"}


def test_multipart_bodies() -> None:
    prepared = requests.Request("POST", "http://x/", data={"from": "a@b", "to": ["c@d", "e@f"], "o:testmode": "yes"},
                                files={"attachment": ("a.txt", b"hello")}).prepare()
    assert isinstance(prepared.body, bytes)
    assert parse_multipart(prepared.headers["Content-Type"], prepared.body) == [
        ("from", "a@b"), ("to", "c@d"), ("to", "e@f"), ("o:testmode", "yes"), ("attachment", b"hello")]
