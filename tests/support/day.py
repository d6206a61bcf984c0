"""The scripted hour of the Syria mechanism that the report and timeline tests read: a record built
minute by minute on a pinned clock, and the bundle file a record is exported as."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path
from typing import Any

from deconflict.clock import FixedClock
from deconflict.record.verify import KeyRing
from deconflict.service import Service

from .builders import HAMA, T0, T4, M, declared_service, vol

__all__ = ["WEST_OF_T4", "build_day", "record_of", "write_bundle"]

WEST_OF_T4 = (36.9, 34.52)


def build_day(db: str) -> Service:
    """An hour of the mechanism, minute by minute (Syria rules: notice 60 min, acknowledge within 10 min,
    ladder 10/15/30/60 min, line checks hourly).

    ======  ===========================================================================================
    +0      TR notifies patrol TR-0001 at T4, 09:00–11:00 (lead 3 h)
    +5      IL notifies sortie IL-0001 at T4, 09:00–11:00 (lead 2 h 55): C1 awaits TR, alert M1 to TR,
            information copy M2 to IL
    +8      TR acknowledges C1, which settles its alert M1 (3 min, in time)
    +10     IL notifies sortie IL-0002 at Hama from 06:30 (lead 20 min, short): C2 awaits TR, alert M3 to TR,
            information copy M4 to IL (the late notifier is told, not asked)
    +21     tick: M3 climbs to rung 1 (M5 tells TR); first line checks, M6 to IL and M7 to TR (deadline +31)
    +25     TR acknowledges C2 (15 min: late), which settles M3: it climbs no further
    +27     TR answers line check M7 (6 min)
    +32     tick: IL's line check M6 climbs to rung 1 (M8); IL silent since: line_down alert M9 to AZ and TR
    +36     tick: nothing climbs (M3 settled at +25)
    +40     TR acknowledges M9 (8 min)
    +50     TR amends TR-0001 west of T4 (lead 2 h 10): C1 closed as superseded
    ======  ===========================================================================================
    """
    clock = FixedClock(T0)
    svc = declared_service(db, clock)

    def at(minutes: float) -> None:
        clock.now = T0 + timedelta(minutes=minutes)

    three_h = T0 + timedelta(hours=3)
    at(0)
    patrol = svc.notify(mechanism_id=M, actor="TR", kind="uav_patrol", volumes=[vol(T4, three_h, hours=2)])
    at(5)
    svc.notify(mechanism_id=M, actor="IL", kind="air_sortie", volumes=[vol(T4, three_h, hours=2)])
    at(8)
    svc.acknowledge_conflict(mechanism_id=M, actor="TR", conflict_id="C1")
    at(10)
    hama = vol(HAMA, T0 + timedelta(minutes=30), hours=1, radius_m=15_000, floor_m=2000, ceiling_m=8000)
    svc.notify(mechanism_id=M, actor="IL", kind="air_sortie", volumes=[hama])
    at(21)
    svc.tick()
    at(25)
    svc.acknowledge_conflict(mechanism_id=M, actor="TR", conflict_id="C2")
    at(27)
    svc.acknowledge_message(mechanism_id=M, actor="TR", message_id="M7")
    at(32)
    svc.tick()
    at(36)
    svc.tick()
    at(40)
    svc.acknowledge_message(mechanism_id=M, actor="TR", message_id="M9")
    at(50)
    assert patrol.activity is not None
    svc.amend(
        mechanism_id=M,
        actor="TR",
        activity_id=patrol.activity.id,
        seen_version=1,
        volumes=[vol(WEST_OF_T4, three_h, hours=2)],
    )
    return svc


def record_of(svc: Service) -> list[dict[str, Any]]:
    """Every entry of the mechanism's record, in order."""
    return svc.entries_after(M, 0, limit=1_000_000)


def write_bundle(entries: list[dict[str, Any]], path: Path) -> Path:
    """Write ``entries`` to ``path`` as a record bundle (a version 2 header, then one entry a line) that verifies:
    its header lists the keys the entries register and their head, as ``ledger export`` writes it (with no
    checkpoint: the record's readers verify a bundle before they read it)."""
    ring = KeyRing()
    for entry in entries:
        ring.learn(entry)
    keys = [{k: key[k] for k in ("key_id", "owner", "public_key", "custody")} for key in ring.keys.values()]
    header = {
        "format": "deconflict-record",
        "version": 2,
        "mechanism": M,
        "entries": len(entries),
        "head_seq": entries[-1]["seq"],
        "head_hash": entries[-1]["hash"],
        "keys": keys,
        "checkpoints": [],
    }
    lines = [json.dumps(header), *(json.dumps(e, ensure_ascii=False) for e in entries)]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path
