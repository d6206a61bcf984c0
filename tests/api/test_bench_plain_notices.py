"""bench/api.py's plain notice server (bench/_floor.py, issue 17) is the yardstick the API's target is read
against: a server on the same stack doing a notice's work and nothing else. It measures what it says only if it
does that work: on the same notices it must raise the very conflicts the service raises, at the same distances,
write a chain whose entries link, and refuse what a notice may not be without writing anything."""

from __future__ import annotations

import json
import random
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import closing
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest
from support.paths import ROOT

from deconflict.api.schemas import NoticeIn
from deconflict.demo import MECHANISM, prepare_server

sys.path.insert(0, str(ROOT / "bench"))  # the benches import each other by name (they are scripts)
from _floor import PLAIN_NOTICE_SERVER  # noqa: E402
from _servers import _seed, free_port  # noqa: E402
from api import random_notice  # noqa: E402

NOW = datetime.now(UTC).replace(microsecond=0)
"""The bench's notices start 2 to 50 hours after this (both servers check them against their own clock, as the
bench runs them)."""
NOTICES = 240


def notices() -> list[tuple[str, dict[str, object]]]:
    """The bench's notices (within 50 km of T4, windows in the same 48 hours), Türkiye and Israel in turn."""
    rng = random.Random(3)
    return [("TR" if i % 2 == 0 else "IL", random_notice(rng, NOW)) for i in range(NOTICES)]


@pytest.fixture(scope="module")
def plain(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, dict[str, str], Path]]:
    """The plain notice server on a freshly seeded demo database, as bench/_floor.py starts it."""
    db = tmp_path_factory.mktemp("plain") / "plain.db"
    tokens = _seed(str(db))
    parties = {token: party for party, token in tokens.items() if party in ("TR", "IL")}
    port = free_port()
    log = db.with_suffix(".log")
    with open(log, "wb") as errors:
        proc = subprocess.Popen(
            [sys.executable, "-c", PLAIN_NOTICE_SERVER, str(db), str(port), json.dumps(parties), ""],
            stdout=errors,
            stderr=errors,
        )
    base = f"http://127.0.0.1:{port}"
    try:
        for _ in range(300):
            try:
                httpx.get(f"{base}/", timeout=1)
                break
            except httpx.TransportError:
                assert proc.poll() is None, log.read_text()
                time.sleep(0.05)
        yield base, tokens, db
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def _plain_pairs(db: Path) -> dict[frozenset[int], float]:
    with closing(sqlite3.connect(db)) as con:
        rows = con.execute("SELECT activity, other_activity, distance_m FROM conflicts WHERE id LIKE 'CP%'")
        # TR-P00001 is the first notice sent
        return {frozenset(int(a.split("-P")[1]) - 1 for a in (one, other)): d for one, other, d in rows}


def _service_pairs(db: Path) -> dict[frozenset[int], float]:
    def nth(activity: str) -> int:  # TR-0001 is notice 0, IL-0001 notice 1, TR-0002 notice 2...
        party, number = activity.split("-")
        return 2 * (int(number) - 1) + (0 if party == "TR" else 1)

    with closing(sqlite3.connect(db)) as con:
        rows = con.execute("SELECT activity, other_activity, distance_m FROM conflicts WHERE kind = 'separation'")
        return {frozenset((nth(one), nth(other))): d for one, other, d in rows}


def test_the_plain_server_raises_the_services_conflicts(
    plain: tuple[str, dict[str, str], Path], tmp_path: Path
) -> None:
    base, tokens, db = plain
    with httpx.Client(base_url=base, timeout=10) as client:
        for party, body in notices():
            answer = client.post("/activities", json=body, headers={"Authorization": f"Bearer {tokens[party]}"})
            assert answer.status_code == 201, answer.text
    service, _ = prepare_server(str(tmp_path / "service.db"))
    with closing(sqlite3.connect(tmp_path / "service.db")) as con:
        seeded = con.execute("SELECT max(seq) FROM ledger").fetchone()[0]
    for party, body in notices():
        notice = NoticeIn.model_validate(body)
        service.notify(
            mechanism_id=MECHANISM,
            actor=party,
            kind=notice.kind.value,
            volumes=[v.model_dump(mode="json") for v in notice.volumes],
            title=notice.title,
        )
    service.store.close()
    theirs, ours = _service_pairs(tmp_path / "service.db"), _plain_pairs(db)
    assert len(theirs) > 30, "the notices should raise conflicts, as the bench's busy area does"
    assert ours.keys() == theirs.keys()
    assert all(abs(ours[pair] - theirs[pair]) <= 0.05 for pair in theirs)
    count = "SELECT type, count(*) FROM ledger WHERE {} GROUP BY type"
    with closing(sqlite3.connect(db)) as con:
        chain = con.execute("SELECT seq, prev_hash, hash FROM ledger ORDER BY seq").fetchall()
        written = dict(con.execute(count.format("key_id = 'k'")).fetchall())
    with closing(sqlite3.connect(tmp_path / "service.db")) as con:
        recorded = dict(con.execute(count.format("seq > ?"), (seeded,)).fetchall())
    assert all(b[0] == a[0] + 1 and b[1] == a[2] for a, b in zip(chain, chain[1:], strict=False))
    assert written == recorded  # the same entries: a notice, and a finding and two messages a conflict
    assert written["message.sent"] == 2 * written["conflict.detected"] == 2 * len(ours)


VOLUME = random_notice(random.Random(1), NOW)["volumes"][0]


@pytest.mark.parametrize(
    "change",
    [
        {"kind": "strike"},
        {"volumes": []},
        {"volumes": [{"geometry": {"type": "Point", "coordinates": [37.6, 34.5]}, "radius_m": 1000}]},
        {"volumes": [{**VOLUME, "floor_m": 5000, "ceiling_m": 100}]},
        {"volumes": [{**VOLUME, "start": "2026-12-07T10:00:00+03:00"}]},
        {"volumes": [{**VOLUME, "geometry": {"type": "Point", "coordinates": [10.0, 50.0]}}]},
    ],
    ids=["kind", "no volume", "no band or window", "band upside down", "time not in UTC", "outside the area"],
)
def test_the_plain_server_refuses_what_a_notice_may_not_be(
    plain: tuple[str, dict[str, str], Path], change: dict[str, object]
) -> None:
    base, tokens, db = plain
    with closing(sqlite3.connect(db)) as con:
        before = con.execute("SELECT max(seq) FROM ledger").fetchone()[0]
    body = {**random_notice(random.Random(2), NOW), **change}
    answer = httpx.post(f"{base}/activities", json=body, headers={"Authorization": f"Bearer {tokens['TR']}"})
    assert answer.status_code == 422
    with closing(sqlite3.connect(db)) as con:
        assert con.execute("SELECT max(seq) FROM ledger").fetchone()[0] == before
