"""A party's position report answers with the conflicts that concern it only. A report's check covers
every pair in the picture, and batches that arrive together share one check: a conflict between two
other parties' tracks that the check finds is recorded and alerted to them, never listed to the reporter
(it would hand over both aircraft's reported states)."""

from __future__ import annotations

import dataclasses
from datetime import timedelta
from functools import partial
from pathlib import Path

from support.builders import T4, declared_service, offset, position, syria, vol

from deconflict.clock import FixedClock
from deconflict.model import Member, Role

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
    clock.advance(seconds=50)  # now within the look-ahead: the next check, whoever's, finds it
    il = svc.report_tracks(mechanism_id=m.id, actor="IL", reports=[position("F16-1", clock(), at(0, 60_000), 0)])
    assert all("IL" in c["parties"] for c in il["raised"]), il["raised"]
    found = [c for c in svc.conflicts(m.id, party="TR") if c["kind"] == "tracks"]
    assert len(found) == 1 and sorted(found[0]["parties"]) == ["RU", "TR"]  # recorded, for those it concerns
