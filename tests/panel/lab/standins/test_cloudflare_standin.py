"""The Cloudflare stand-in's contract, checked with plain HTTP: envelope, paging, error codes."""

from __future__ import annotations

from typing import Any

import requests

from panel.lab import secrets
from panel.lab.standins import StandinServers, post_faults

AUTH = {"Authorization": f"Bearer {secrets.CLOUDFLARE_TOKEN}"}


def _zone(lab: StandinServers) -> str:
    return lab.cloudflare.zone_id


def _codes(answer: requests.Response) -> list[int]:
    body = answer.json()
    assert body["success"] is False and body["result"] is None and body["messages"] == []
    return [e["code"] for e in body["errors"]]


def test_envelope_and_zone_lookup(standins: StandinServers, http: requests.Session) -> None:
    answer = http.get(standins.cloudflare_url + "/zones", params={"name": "example.com"}, headers=AUTH)
    body = answer.json()
    assert answer.status_code == 200 and body["success"] is True and body["errors"] == []
    assert body["result_info"] == {"page": 1, "per_page": 20, "count": 1, "total_count": 1, "total_pages": 1}
    (zone,) = body["result"]
    assert (zone["status"], zone["plan"]["name"]) == ("active", "Pro Website")
    verify = http.get(standins.cloudflare_url + "/user/tokens/verify", headers=AUTH).json()
    assert verify["result"]["status"] == "active" and verify["messages"][0]["code"] == 10000


def test_dns_paging(standins: StandinServers, http: requests.Session) -> None:
    url = f"{standins.cloudflare_url}/zones/{_zone(standins)}/dns_records"
    seen: list[dict[str, Any]] = []
    page = 1
    while True:
        body = http.get(url, params={"page": page, "per_page": 25}, headers=AUTH).json()
        seen += body["result"]
        info = body["result_info"]
        assert info["count"] == len(body["result"]) and info["per_page"] == 25
        if page >= info["total_pages"]:
            break
        page += 1
    assert len(seen) == info["total_count"] > 100 and len({r["id"] for r in seen}) == len(seen)
    assert {"127.0.0.1", "198.51.100.7"} <= {r["content"] for r in seen}
    beyond = http.get(url, params={"page": page + 1, "per_page": 25}, headers=AUTH).json()
    assert beyond["result"] == [] and beyond["result_info"]["count"] == 0


def test_auth_errors(standins: StandinServers, http: requests.Session) -> None:
    base = standins.cloudflare_url
    assert _codes(http.get(base + "/zones")) == [9106]
    malformed = http.get(base + "/zones", headers={"Authorization": "Token x"})
    assert malformed.status_code == 400 and _codes(malformed) == [6003]
    assert malformed.json()["errors"][0]["error_chain"][0]["code"] == 6111
    wrong = {"Authorization": "Bearer nope"}
    verify = http.get(base + "/user/tokens/verify", headers=wrong)
    assert verify.status_code == 401 and _codes(verify) == [1000]
    other = http.get(base + "/zones", headers=wrong)
    assert other.status_code == 401 and _codes(other) == [9109]


def test_dns_validation_codes(standins: StandinServers, http: requests.Session) -> None:
    url = f"{standins.cloudflare_url}/zones/{_zone(standins)}/dns_records"

    def create(**body: Any) -> requests.Response:
        return http.post(url, json=body, headers=AUTH)

    assert _codes(create(type="A", name="x", content="300.1.1.1")) == [9005]
    assert _codes(create(type="AAAA", name="x", content="1.2.3.4")) == [9006]
    assert _codes(create(type="A", name="x", content="192.0.2.1", ttl=5)) == [9021]
    assert _codes(create(type="TXT", name="x", content="hi", proxied=True)) == [9004]
    assert _codes(create(type="BOGUS", name="x", content="hi")) == [1004]
    assert _codes(create(type="A", name="app1", content="127.0.0.1")) == [81058]
    assert _codes(http.post(url, data=b"{not json", headers={**AUTH, "Content-Type": "application/json"})) == [9207]
    made = create(type="A", name="@", content="192.0.2.9").json()["result"]
    assert made["name"] == "example.com" and made["proxiable"] and made["ttl"] == 1
    missing = http.delete(url + "/0" * 1 + "f" * 31, headers=AUTH)
    assert missing.status_code == 404 and _codes(missing) == [81044]
    put = http.put(f"{url}/{made['id']}", json={"type": "A", "name": "@", "content": "192.0.2.10"}, headers=AUTH)
    assert put.json()["result"]["content"] == "192.0.2.10"
    assert http.delete(f"{url}/{made['id']}", headers=AUTH).json()["result"] == {"id": made["id"]}


def test_settings_and_purge(standins: StandinServers, http: requests.Session) -> None:
    url = f"{standins.cloudflare_url}/zones/{_zone(standins)}"
    level = http.patch(url + "/settings/security_level", json={"value": "under_attack"}, headers=AUTH).json()
    assert level["result"]["value"] == "under_attack" and level["result"]["editable"]
    assert _codes(http.patch(url + "/settings/security_level", json={"value": "max"}, headers=AUTH)) == [1007]
    dev = http.patch(url + "/settings/development_mode", json={"value": "on"}, headers=AUTH).json()["result"]
    assert dev["value"] == "on" and dev["time_remaining"] > 0
    assert http.post(url + "/purge_cache", json={"files": ["https://example.com/a.css"]},
                     headers=AUTH).json()["result"] == {"id": _zone(standins)}
    assert _codes(http.post(url + "/purge_cache", json={}, headers=AUTH)) == [1012]


def test_429_through_the_control_endpoint(standins: StandinServers, http: requests.Session) -> None:
    post_faults(standins.cloudflare_url, throttle_next=1, retry_after=7)
    answer = http.get(standins.cloudflare_url + "/zones", headers=AUTH)
    assert answer.status_code == 429 and answer.headers["retry-after"] == "7" and _codes(answer) == [971]
    assert http.get(standins.cloudflare_url + "/zones", headers=AUTH).status_code == 200


def test_graphql(standins: StandinServers, http: requests.Session) -> None:
    query = """query($tag: string, $since: Time, $until: Time) { viewer { zones(filter: {zoneTag: $tag}) {
        httpRequests1hGroups(limit: 10, filter: {datetime_geq: $since, datetime_lt: $until}) {
          dimensions { datetime } sum { requests cachedRequests threats bytes } } } } }"""
    variables = {"tag": _zone(standins), "since": "2024-03-01T00:00:00Z", "until": "2024-03-01T06:00:00Z"}
    body = http.post(standins.cloudflare_url + "/graphql", json={"query": query, "variables": variables},
                     headers=AUTH).json()
    rows = body["data"]["viewer"]["zones"][0]["httpRequests1hGroups"]
    assert body["errors"] is None and len(rows) == 6
    assert rows[0]["dimensions"]["datetime"] == "2024-03-01T00:00:00Z"
    assert set(rows[0]["sum"]) >= {"requests", "cachedRequests", "threats", "bytes"}
    again = http.post(standins.cloudflare_url + "/graphql", json={"query": query, "variables": variables},
                      headers=AUTH).json()
    assert again == body  # deterministic
    wrong = http.post(standins.cloudflare_url + "/graphql",
                      json={"query": query, "variables": {**variables, "tag": "0" * 32}}, headers=AUTH)
    assert wrong.status_code == 200 and wrong.json()["data"] is None and wrong.json()["errors"]
