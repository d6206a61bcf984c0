"""A curious party cannot get more previews by asking two servers (issue 15): two servers on one database
(each with its own service, as two processes have) answer one allowance between them over real HTTP,
429 with ``Retry-After`` from either once it is spent, and the same counts from either; a server started
afterwards (a restart) still refuses. On SQLite and on PostgreSQL (``DECONFLICT_TEST_PG``)."""

from __future__ import annotations

import dataclasses

import httpx
import pytest
from support.builders import T0, T4, A, declared_db, syria, vol
from support.live import auth, start_server

from deconflict.clock import FixedClock

LIMIT = 6


@pytest.mark.parametrize("store_kind", ["sqlite", "postgresql"])
def test_two_servers_answer_one_allowance_and_the_same_counts(store_url: str, store_kind: str) -> None:
    clock = FixedClock(T0)
    m = syria()
    db = declared_db(
        store_url, clock, mechanism=dataclasses.replace(m, rules=dataclasses.replace(m.rules, previews_per_hour=LIMIT))
    )
    servers = [start_server(db, clock), start_server(db, clock)]
    tok = servers[0].tokens()
    preview = {"kind": "uav_patrol", "volumes": [vol(T4)]}
    try:
        tr_notice = {"kind": "uav_patrol", "volumes": [vol(T4)]}
        assert httpx.post(f"{servers[1].url}{A}/activities", json=tr_notice, headers=auth(tok["TR"])).status_code == 201
        for n in range(LIMIT):
            r = httpx.post(f"{servers[n % 2].url}{A}/activities/preview", json=preview, headers=auth(tok["IL"]))
            assert r.status_code == 200, r.text
        for server in servers:
            r = httpx.post(f"{server.url}{A}/activities/preview", json=preview, headers=auth(tok["IL"]))
            assert r.status_code == 429 and r.json()["field"] == "previews_per_hour"
            assert r.headers["Retry-After"] == "3601" and f"previews_per_hour {LIMIT}" in r.json()["detail"]
        seen = [httpx.get(f"{s.url}{A}/previews", headers=auth(tok["TR"])).json() for s in servers]
        assert (
            seen[0]
            == seen[1]
            == {
                "previews": [
                    {
                        "member": "IL",
                        "party": "IL",
                        "reached": {"TR": LIMIT},
                        "last_reached_at": {"TR": "2025-04-09T06:00:00Z"},
                    }
                ]
            }
        )
    finally:
        for server in servers:
            server.stop()
            server.service.store.close()
    restarted = start_server(db, clock)
    try:
        r = httpx.post(f"{restarted.url}{A}/activities/preview", json=preview, headers=auth(tok["IL"]))
        assert r.status_code == 429
        counts = httpx.get(f"{restarted.url}{A}/previews", headers=auth(tok["IL"])).json()["previews"]
        assert counts[0]["previews"] == LIMIT
    finally:
        restarted.stop()
        restarted.service.store.close()
