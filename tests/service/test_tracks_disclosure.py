"""A party's position report answers with the conflicts that concern it only. A report's check covers
every pair its tracks are in, and batches that arrive together share one check: a conflict between two
other parties' tracks that the shared check finds is recorded and alerted to them, never listed to the
reporter (it would hand over both aircraft's reported states)."""

from __future__ import annotations

import dataclasses
from datetime import timedelta
from functools import partial
from pathlib import Path

from support.builders import T4, declared_service, offset, position, syria, vol

from deconflict.clock import FixedClock
from deconflict.formats.docs import parse_track_reports
from deconflict.model import Member, Role
from deconflict.service import tracks as tracks_module

at = partial(offset, T4)


def test_a_report_lists_no_conflict_between_two_other_parties(tmp_path: Path, clock: FixedClock) -> None:
    m = syria()
    russia = Member(id="RU", name="Russia", role=Role.PARTY, party="RU")
    svc = declared_service(tmp_path / "three.db", clock, mechanism=dataclasses.replace(m, members=(*m.members, russia)))
    for party, kind in (("TR", "uav_patrol"), ("IL", "air_sortie"), ("RU", "air_sortie")):
        volume = vol(T4, clock() + timedelta(hours=2), hours=6, radius_m=80_000, floor_m=0, ceiling_m=12_000)
        svc.notify(mechanism_id=m.id, actor=party, kind=kind, volumes=[volume])
    clock.advance(seconds=3 * 3600)
    # TR and RU head for each other 80 km apart at 200 kt each: separation lost in about 340 s, beyond
    # the 300 s look-ahead; nothing yet
    tr = svc.report_tracks(mechanism_id=m.id, actor="TR", reports=[position("UAV-1", clock(), at(270, 40_000), 90)])
    ru = svc.report_tracks(mechanism_id=m.id, actor="RU", reports=[position("SU-1", clock(), at(90, 40_000), 270)])
    assert [c for c in tr["raised"] + ru["raised"] if c["kind"] == "tracks"] == []
    clock.advance(seconds=50)  # now within the look-ahead: the next check of either track finds it
    # TR's next report and one of IL's arrive together (queued behind the gate): one check answers both
    stale_s = m.rules.track_stale_s
    batches = [
        tracks_module._Batch(party, parse_track_reports([report], now=clock(), stale_s=stale_s))
        for party, report in (
            ("TR", position("UAV-1", clock(), at(270, 30_000), 90)),
            ("IL", position("F16-1", clock(), at(0, 60_000), 0)),
        )
    ]
    tracks_module._QUEUES.setdefault(svc._ctx.pictures, {}).setdefault(m.id, []).extend(batches)
    tracks_module._store_queued(svc._ctx, mechanism_id=m.id, taken=[])
    tr, il = (b.result or {} for b in batches)
    assert [sorted(c["parties"]) for c in tr["raised"] if c["kind"] == "tracks"] == [["RU", "TR"]]
    assert il["stored"] == 1 and all("IL" in c["parties"] for c in il["raised"]), il["raised"]
    found = [c for c in svc.conflicts(m.id, party="TR") if c["kind"] == "tracks"]
    assert len(found) == 1 and sorted(found[0]["parties"]) == ["RU", "TR"]  # recorded, for those it concerns
