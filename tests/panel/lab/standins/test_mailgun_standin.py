"""The Mailgun stand-in's contract, checked with plain HTTP: auth, cursor paging that ends on an
empty page, stats, suppressions, sending, and the two region listeners."""

from __future__ import annotations

import requests

from panel.lab import secrets
from panel.lab.standins import StandinServers

AUTH = ("api", secrets.MAILGUN_KEY)


def test_401_is_plain_text(standins: StandinServers, http: requests.Session) -> None:
    answer = http.get(standins.mailgun_url + "/v4/domains", auth=("api", "nope"))
    assert answer.status_code == 401 and answer.text == "Forbidden"
    assert answer.headers["Content-Type"].startswith("text/plain")


def test_domains(standins: StandinServers, http: requests.Session) -> None:
    body = http.get(standins.mailgun_url + "/v4/domains", auth=AUTH).json()
    assert body["total_count"] == 4 and {d["state"] for d in body["items"]} == {"active", "unverified", "disabled"}
    detail = http.get(standins.mailgun_url + "/v4/domains/mg.example.com", auth=AUTH).json()
    assert detail["domain"]["name"] == "mg.example.com"
    assert {r["valid"] for r in detail["sending_dns_records"]} == {"valid"}
    missing = http.get(standins.mailgun_url + "/v4/domains/nope.example", auth=AUTH)
    assert missing.status_code == 404 and missing.json() == {"message": "Domain not found"}


def test_events_cursor_paging(standins: StandinServers, http: requests.Session) -> None:
    url = standins.mailgun_url + "/v3/mg.example.com/events"
    params = {"event": "failed", "severity": "permanent", "limit": "50", "ascending": "yes",
              "begin": "Mon, 01 Jan 2024 00:00:00 +0000"}
    body = http.get(url, params=params, auth=AUTH).json()
    items, pages = list(body["items"]), 1
    while body["items"]:
        assert body["paging"]["next"].startswith(standins.mailgun_url + "/v3/mg.example.com/events/")
        body = http.get(body["paging"]["next"], auth=AUTH).json()
        items += body["items"]
        pages += 1
    assert body["paging"]["next"]  # present even on the empty page
    assert len(items) > 50 and pages == len(items) // 50 + (1 if len(items) % 50 else 0) + 1
    assert {(i["event"], i["severity"]) for i in items} == {("failed", "permanent")}
    times = [i["timestamp"] for i in items]
    assert times == sorted(times) and len({i["id"] for i in items}) == len(items)
    too_many = http.get(url, params={"limit": 301}, auth=AUTH)
    assert too_many.status_code == 400 and "limit" in too_many.json()["message"]


def test_stats(standins: StandinServers, http: requests.Session) -> None:
    url = standins.mailgun_url + "/v3/mg.example.com/stats/total"
    body = http.get(url, params=[("event", "accepted"), ("event", "failed"), ("duration", "24h"),
                                 ("resolution", "hour")], auth=AUTH).json()
    assert body["resolution"] == "hour" and len(body["stats"]) in (24, 25)
    row = body["stats"][0]
    assert set(row) == {"time", "accepted", "failed"} and row["time"].endswith("UTC")
    assert set(row["failed"]["permanent"]) >= {"bounce", "suppress-bounce", "total"}
    assert http.get(url, auth=AUTH).status_code == 400  # event is required


def test_suppressions_paging_and_delete(standins: StandinServers, http: requests.Session) -> None:
    url = standins.mailgun_url + "/v3/mg.example.com/bounces"
    body = http.get(url, params={"limit": 100}, auth=AUTH).json()
    seen = list(body["items"])
    while body["items"]:
        body = http.get(body["paging"]["next"], auth=AUTH).json()
        seen += body["items"]
    assert len(seen) == len(standins.mailgun.suppressions["bounces"]) > 200
    address = seen[0]["address"]
    removed = http.delete(f"{url}/{address}", auth=AUTH).json()
    assert removed == {"message": "Bounced address has been removed", "address": address}
    again = http.delete(f"{url}/{address}", auth=AUTH)
    assert again.status_code == 404 and again.json()["message"] == "Address not found in bounces table"


def test_send_form_and_multipart(standins: StandinServers, http: requests.Session) -> None:
    url = standins.mailgun_url + "/v3/mg.example.com/messages"
    fields = {"from": "a@mg.example.com", "to": "b@example.org", "subject": "s", "text": "t", "o:testmode": "yes"}
    form = http.post(url, data=fields, auth=AUTH).json()
    assert form["message"] == "Queued. Thank you." and form["id"].startswith("<")
    multi = http.post(url, data=fields, files={"attachment": ("a.txt", b"x")}, auth=AUTH)
    assert multi.status_code == 200 and standins.mailgun.sent[-1]["test_mode"]
    missing = http.post(url, data={"to": "b@example.org", "text": "t"}, auth=AUTH)
    assert missing.status_code == 400 and missing.json() == {"message": "from parameter is missing"}


def test_two_region_listeners_share_one_state(standins: StandinServers, http: requests.Session) -> None:
    us = http.get(standins.mailgun_url + "/v4/domains/mg.example.com", auth=AUTH).json()
    eu = http.get(standins.mailgun_eu_url + "/v4/domains/mg.example.com", auth=AUTH).json()
    assert us == eu
    standins.mailgun.strict_regions = True
    assert http.get(standins.mailgun_url + "/v4/domains/mg.example.com", auth=AUTH).status_code == 404
    assert http.get(standins.mailgun_eu_url + "/v4/domains/mg.example.com", auth=AUTH).status_code == 200
