"""Preview counts and their hourly limit held in the database (issue 15): two services (two server
processes) on one store share each member's allowance and counts, a restart forgets nothing, and two OS
processes racing for a member's last previews admit exactly as many as the rules allow, on SQLite and on
PostgreSQL alike (the PostgreSQL cases need ``DECONFLICT_TEST_PG``, see ``scripts/pg-test-cluster``)."""

from __future__ import annotations

import dataclasses
import json
import subprocess
import sys
from typing import Any

import pytest
from sqlalchemy import func, select
from support.builders import T0, T4, M, declared_service, syria, vol

from deconflict.clock import FixedClock
from deconflict.model import Member
from deconflict.service import Service, previews
from deconflict.service.previews import PreviewsExhausted
from deconflict.store import open_store
from deconflict.store.schema import PreviewAdmission

pytestmark = pytest.mark.timeout(600)

LIMIT = 5
BOTH = pytest.mark.parametrize("store_kind", ["sqlite", "postgresql"])


def _declared(store_url: str, clock: FixedClock, limit: int = LIMIT) -> Service:
    m = syria()
    return declared_service(
        store_url, clock, mechanism=dataclasses.replace(m, rules=dataclasses.replace(m.rules, previews_per_hour=limit))
    )


def _preview(svc: Service, actor: str = "IL") -> list[dict[str, Any]]:
    return svc.preview_notice(mechanism_id=M, actor=actor, kind="uav_patrol", volumes=[vol(T4)])


def _members(svc: Service) -> dict[str, Member]:
    return {m.id: m for m in svc.mechanism(M).members}


def _counts(svc: Service, reader: str) -> dict[str, dict[str, Any]]:
    return {row["member"]: row for row in previews.counts(svc.context, M, _members(svc)[reader])}


@BOTH
def test_two_services_on_one_store_share_one_allowance_and_one_count(store_url: str, store_kind: str) -> None:
    clock = FixedClock(T0)
    first = _declared(store_url, clock)
    first.notify(mechanism_id=M, actor="TR", kind="uav_patrol", volumes=[vol(T4)])
    second = Service(open_store(store_url, migrate=False), clock=clock)
    for n in range(LIMIT):  # alternately through each: one allowance, wherever the previews land
        reached = _preview(first if n % 2 else second)
        assert {c.get("other_party") for c in reached} == {"TR"}
    for svc in (first, second):
        with pytest.raises(PreviewsExhausted) as e:
            _preview(svc)
        assert (
            e.value.status == 429 and e.value.retry_after_s == 3601 and f"previews_per_hour {LIMIT}" in e.value.message
        )
    _preview(second, actor="TR")  # TR's own allowance is untouched
    for svc in (first, second):  # both read every preview, whichever process counted it
        il = _counts(svc, "TR")["IL"]
        assert il["reached"] == {"TR": LIMIT} and il["last_reached_at"] == {"TR": "2025-04-09T06:00:00Z"}
        assert "previews" not in il  # TR does not learn IL's total
        assert _counts(svc, "IL")["IL"]["previews"] == LIMIT
    clock.advance(seconds=3600)
    _preview(first)  # the hour has passed, for both processes
    assert _counts(second, "IL")["IL"]["previews"] == LIMIT + 1
    first.store.close()
    second.store.close()


@BOTH
def test_a_restart_keeps_the_count_and_prunes_what_is_older_than_an_hour(store_url: str, store_kind: str) -> None:
    clock = FixedClock(T0)
    svc = _declared(store_url, clock)
    for _ in range(LIMIT - 1):
        _preview(svc)
    svc.store.close()

    clock.advance(seconds=600)
    svc = Service(open_store(store_url), clock=clock)  # a restart: a new process's service
    _preview(svc)  # the last of the hour's allowance
    with pytest.raises(PreviewsExhausted) as e:
        _preview(svc)
    assert e.value.retry_after_s == 3600 - 600 + 1  # the first of the hour's previews runs out then
    assert _counts(svc, "IL")["IL"]["previews"] == LIMIT
    svc.store.close()

    clock.advance(seconds=3000)  # the first four previews are now more than an hour old
    svc = Service(open_store(store_url), clock=clock)
    _preview(svc)
    with svc.store.read() as s:
        kept = s.scalar(select(func.count()).select_from(PreviewAdmission).where(PreviewAdmission.member_id == "IL"))
    assert kept == 2  # the one from 600 s after the start and this one; the total stays
    assert _counts(svc, "IL")["IL"]["previews"] == LIMIT + 1
    svc.store.close()


RACER = r"""
import json, sys
from datetime import datetime
from deconflict.clock import FixedClock
from deconflict.service import Service
from deconflict.service.previews import PreviewsExhausted
from deconflict.store import open_store

url, mechanism, at, tries, volume = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4]), json.loads(sys.argv[5])
service = Service(open_store(url, migrate=False), clock=FixedClock(datetime.fromisoformat(at)))
service.mechanism(mechanism)  # the picture is built before the start, so both ask at once
print("ready", flush=True)
sys.stdin.readline()
admitted = refused = 0
for _ in range(tries):
    try:
        service.preview_notice(mechanism_id=mechanism, actor="IL", kind="uav_patrol", volumes=[volume])
        admitted += 1
    except PreviewsExhausted:
        refused += 1
print(json.dumps({"admitted": admitted, "refused": refused}), flush=True)
service.store.close()
"""


def _race(store_url: str, tries: int) -> list[dict[str, int]]:
    """Two OS processes, each asking for ``tries`` previews by IL as fast as they can, started together."""
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", RACER, store_url, M, T0.isoformat(), str(tries), json.dumps(vol(T4))],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        for _ in range(2)
    ]
    for p in procs:
        assert p.stdout is not None and p.stdout.readline().strip() == "ready"
    for p in procs:
        assert p.stdin is not None
        p.stdin.write("go\n")
        p.stdin.flush()
    results = []
    for p in procs:
        out, _ = p.communicate(timeout=300)
        assert p.returncode == 0
        results.append(json.loads(out.splitlines()[-1]))
    return results


@BOTH
def test_two_processes_racing_for_the_last_preview_admit_exactly_one(store_url: str, store_kind: str) -> None:
    clock = FixedClock(T0)
    svc = _declared(store_url, clock)
    for _ in range(LIMIT - 1):
        _preview(svc)
    results = _race(store_url, tries=1)
    assert sorted(r["admitted"] for r in results) == [0, 1] and sum(r["refused"] for r in results) == 1
    assert _counts(svc, "IL")["IL"]["previews"] == LIMIT
    svc.store.close()


@BOTH
def test_two_processes_asking_together_share_one_allowance(store_url: str, store_kind: str) -> None:
    """Many previews each, interleaved: together they are admitted exactly the hour's allowance."""
    limit = 20
    svc = _declared(store_url, FixedClock(T0), limit=limit)
    results = _race(store_url, tries=15)
    assert sum(r["admitted"] for r in results) == limit and sum(r["refused"] for r in results) == 2 * 15 - limit
    assert _counts(svc, "IL")["IL"]["previews"] == limit
    with svc.store.read() as s:
        assert s.scalar(select(func.count()).select_from(PreviewAdmission)) == limit
    svc.store.close()
