"""What the service may write in the record, whatever its clock or its callers do: times never go
backwards (entries and checkpoints; a clock stepping back is clamped and logged), members and keys
are bound once (a key is registered with proof of possession and the party's authorisation), and a
tactical conflict's entry carries the track states that raised it. Real SQLite, pinned clocks."""

from __future__ import annotations

import io
import logging
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from support.builders import T0, T4, M, declared_db, declared_service, offset, position, syria, vol

from deconflict.clock import FixedClock
from deconflict.errors import Forbidden, InvalidInput, InvalidState
from deconflict.record import authority, signing
from deconflict.record.chain import EntryType
from deconflict.service import Prepared, Service, SignatureMode, Signed
from deconflict.service.keys import registration_message
from deconflict.store import open_store


def _at(entry: dict[str, object]) -> datetime:
    return datetime.fromisoformat(str(entry["at"]))


def _times(svc: Service) -> list[datetime]:
    return [_at(e) for e in svc.entries_after(M, 0, limit=100_000)]


def _never_back(times: list[datetime]) -> None:
    assert all(b >= a for a, b in zip(times, times[1:], strict=False)), times


# --- time never goes backwards ---------------------------------------------------------------


def test_a_clock_stepping_back_is_clamped_to_the_last_entry_and_logged(
    svc: Service, clock: FixedClock, caplog: pytest.LogCaptureFixture
) -> None:
    clock.advance(seconds=600)
    svc.notify(mechanism_id=M, actor="TR", kind="uav_patrol", volumes=[vol()])
    last = _times(svc)[-1]
    assert last == T0 + timedelta(seconds=600)
    clock.advance(seconds=-300)  # an NTP step, or a restart with a skewed clock
    with caplog.at_level(logging.WARNING, logger="deconflict.service.writer"):
        svc.notify(mechanism_id=M, actor="IL", kind="air_sortie", volumes=[vol(start_h=5)])
    times = _times(svc)
    _never_back(times)
    assert times[-1] == last  # clamped, not the clock's 06:05
    said = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert said and "clock stepped back 300.000 s" in said[0] and "06:10:00Z" in said[0] and "06:05:00Z" in said[0]
    assert svc.verify(M).ok
    # once the clock is past the last entry again, entries take its time and nothing is logged
    caplog.clear()
    clock.advance(seconds=400)
    with caplog.at_level(logging.WARNING, logger="deconflict.service.writer"):
        svc.notify(mechanism_id=M, actor="IL", kind="air_sortie", volumes=[vol(start_h=6)])
    assert _times(svc)[-1] == T0 + timedelta(seconds=700) and not caplog.records


def test_a_checkpoint_is_dated_at_or_after_the_entries_it_covers_and_the_checkpoint_before(
    db: str, svc: Service, clock: FixedClock, caplog: pytest.LogCaptureFixture
) -> None:
    clock.advance(seconds=3 * 3600)
    svc.notify(mechanism_id=M, actor="TR", kind="uav_patrol", volumes=[vol(start_h=5)])
    first = svc.checkpoint(M)
    assert first is not None and first["at"] == "2025-04-09T09:00:00Z"
    # another process on the same record with a clock 3 h behind (the scripted demo's record, exported
    # by `ledger export` on the system clock): its entries and checkpoints keep the record's order
    behind = FixedClock(T0)
    other = Service(open_store(db), clock=behind)
    with caplog.at_level(logging.WARNING, logger="deconflict.service.writer"):
        other.notify(mechanism_id=M, actor="IL", kind="air_sortie", volumes=[vol(start_h=6)])
        second = other.checkpoint(M)
    assert second is not None and second["seq"] > first["seq"]
    assert second["at"] == "2025-04-09T09:00:00Z"
    times = _times(other)
    _never_back(times)
    assert datetime.fromisoformat(second["at"]) >= times[-1]
    said = " ".join(r.getMessage() for r in caplog.records)
    assert "clock stepped back 10800.000 s" in said and f"{M} checkpoint of entry {second['seq']}" in said
    assert other.verify(M).ok
    other.store.close()


def test_checkpoints_fall_due_on_the_services_clock(svc: Service, clock: FixedClock) -> None:
    """The tick signs a checkpoint when the service's own clock says the interval has passed (no second clock)."""
    svc.tick()
    first = svc.checkpoints(M, latest=True)
    assert first and first[0]["at"] == "2025-04-09T06:00:00Z"
    clock.advance(seconds=30)
    svc.notify(mechanism_id=M, actor="TR", kind="uav_patrol", volumes=[vol()])
    svc.tick()
    assert svc.checkpoints(M, latest=True) == first  # 30 s on the service's clock: not yet
    clock.advance(seconds=30)
    svc.tick()
    (now,) = svc.checkpoints(M, latest=True)
    assert now["seq"] > first[0]["seq"] and now["at"] == "2025-04-09T06:01:00Z"


# --- track evidence --------------------------------------------------------------------------


def test_a_tactical_conflicts_entry_carries_the_track_states_that_raised_it(svc: Service, clock: FixedClock) -> None:
    wide = {"radius_m": 80_000, "floor_m": 0, "ceiling_m": 12_000}
    svc.notify(
        mechanism_id=M, actor="TR", kind="uav_patrol", volumes=[vol(T4, T0 + timedelta(hours=2), hours=6, **wide)]
    )
    svc.notify(
        mechanism_id=M, actor="IL", kind="air_sortie", volumes=[vol(T4, T0 + timedelta(hours=2), hours=6, **wide)]
    )
    clock.advance(seconds=3 * 3600)
    svc.report_tracks(
        mechanism_id=M, actor="TR", reports=[position("UAV-1", clock(), offset(T4, 270, 30_000), 90, alt_ft=8000)]
    )
    # IL's report is 5 s old when it arrives: the evidence is the state as reported, not flown on
    out = svc.report_tracks(
        mechanism_id=M,
        actor="IL",
        reports=[position("F16-2", clock() - timedelta(seconds=5), offset(T4, 90, 30_000), 270, alt_ft=8000)],
    )
    (raised,) = [c for c in out["raised"] if c["kind"] == "tracks"]
    entries = {
        e["payload"]["id"]: e for e in svc.entries_after(M, 0, limit=100_000) if e["type"] == "conflict.detected"
    }
    states = entries[raised["id"]]["payload"]["track_states"]
    assert [s["track"] for s in states] == ["IL/F16-2", "TR/UAV-1"]
    il, tr = states
    assert il["at"] == "2025-04-09T08:59:55Z" and tr["at"] == "2025-04-09T09:00:00Z"
    assert (il["lon"], il["lat"]) == pytest.approx(offset(T4, 90, 30_000))
    assert il["alt_m"] == pytest.approx(8000 * 0.3048) and il["trk_deg"] == 270 and il["vs_mps"] == 0
    assert il["gs_mps"] == pytest.approx(200 * 1852 / 3600)
    assert set(il) == {"track", "party", "id", "at", "lat", "lon", "alt_m", "gs_mps", "trk_deg", "vs_mps"}
    # a conformance or intrusion conflict carries the one track it is about
    for c in out["raised"]:
        if c["kind"] in ("conformance", "intrusion"):
            assert [s["track"] for s in entries[c["id"]]["payload"]["track_states"]] == [c["activity"]]
    # a track outside every notice of its party: conformance, with that track's state
    out = svc.report_tracks(
        mechanism_id=M, actor="TR", reports=[position("UAV-9", clock(), offset(T4, 0, 200_000), 0, alt_ft=8000)]
    )
    (conf,) = [c for c in out["raised"] if c["kind"] == "conformance"]
    entries = {
        e["payload"]["id"]: e for e in svc.entries_after(M, 0, limit=100_000) if e["type"] == "conflict.detected"
    }
    (state,) = entries[conf["id"]]["payload"]["track_states"]
    assert state["track"] == "TR/UAV-9" and state["at"] == "2025-04-09T09:00:00Z"
    assert svc.verify(M).ok


# --- bindings fixed ---------------------------------------------------------------------------


def _head(svc: Service) -> int:
    return svc.head(M).seq


def test_a_member_id_is_bound_once_and_never_rebound(svc: Service) -> None:
    before = _head(svc)
    with pytest.raises(InvalidState, match=r"id: member 'IL' already exists .*party of IL.*never change"):
        svc.add_member(mechanism_id=M, member={"id": "IL", "party": "TR", "role": "party", "name": "rebound"})
    with pytest.raises(InvalidState, match="member 'AZ' already exists"):
        svc.add_member(mechanism_id=M, member={"id": "AZ", "party": "AZ", "role": "observer", "name": "demoted"})
    with pytest.raises(InvalidInput, match="party: a facilitator acts for its own code, not for 'IL'"):
        svc.add_member(mechanism_id=M, member={"id": "IL-FAC", "party": "IL", "role": "facilitator", "name": "x"})
    with pytest.raises(InvalidInput, match="record's own names"):
        svc.add_member(mechanism_id=M, member={"id": "system", "party": "TR", "role": "party", "name": "x"})
    assert _head(svc) == before and svc.member(M, "IL").party == "IL"
    added = svc.add_member(mechanism_id=M, member={"id": "TR-2", "party": "TR", "role": "party", "name": "Ops"})
    assert added.party == "TR" and _head(svc) == before + 1


def test_a_mechanism_is_declared_once(svc: Service) -> None:
    before = _head(svc)
    with pytest.raises(InvalidState, match="mechanism 'tr-il-syria' already exists"):
        svc.declare_mechanism(mechanism=syria(), demo_custody=True)
    assert _head(svc) == before


def _registered(svc: Service) -> list[dict[str, Any]]:
    return [e for e in svc.entries_after(M, 0, limit=100_000) if e["type"] == "key.registered"]


def _message(party: str, public_key: str) -> bytes:
    return registration_message(mechanism=M, party=party, public_key=public_key)


def test_founding_keys_are_authorised_by_the_declaration_with_proof_of_possession(svc: Service) -> None:
    founding = _registered(svc)
    assert {e["payload"]["owner"] for e in founding} == {"TR", "IL", "AZ", "US"}
    for e in founding:
        p = e["payload"]
        assert e["actor"] == "operator" and p["authorised_by"] == "founding" and "authorisation" not in p
        assert signing.verify(p["public_key"], _message(p["owner"], p["public_key"]), p["possession"])


def test_a_key_is_registered_only_with_proof_of_possession(svc: Service) -> None:
    new = signing.KeyPair.generate()
    before = _head(svc)
    with pytest.raises(InvalidInput, match="possession: missing") as got:
        svc.register_key(mechanism_id=M, party="IL", public_key=new.public_key)  # the old request's shape
    assert got.value.field == "possession"
    other = signing.KeyPair.generate()
    with pytest.raises(InvalidInput, match="possession: does not verify with the new key"):
        svc.register_key(
            mechanism_id=M, party="IL", public_key=new.public_key, possession=other.sign(_message("IL", new.public_key))
        )
    with pytest.raises(InvalidInput, match="possession: does not verify"):  # signed for another party
        svc.register_key(
            mechanism_id=M, party="IL", public_key=new.public_key, possession=new.sign(_message("TR", new.public_key))
        )
    assert _head(svc) == before


def test_a_new_key_is_authorised_by_the_key_the_service_holds_for_the_party_in_the_demo(svc: Service) -> None:
    held = {k["owner"]: k["key_id"] for k in svc.keys(M)}["IL"]
    new = signing.KeyPair.generate()
    key = svc.register_key(
        mechanism_id=M, party="IL", public_key=new.public_key, possession=new.sign(_message("IL", new.public_key))
    )
    assert key["owner"] == "IL" and key["key_id"] == new.key_id
    entry = _registered(svc)[-1]
    p = entry["payload"]
    assert entry["actor"] == "IL" and entry["key_id"] == held  # a member of the party, signed with its key in force
    assert p["authorised_by"] == held
    public = {k["key_id"]: k["public_key"] for k in svc.keys(M)}
    assert signing.verify(public[held], _message("IL", new.public_key), p["authorisation"])
    assert signing.verify(new.public_key, _message("IL", new.public_key), p["possession"])
    assert svc.verify(M).ok


def test_a_party_holding_its_key_authorises_its_next_one(tmp_path: Path, clock: FixedClock) -> None:
    tr = signing.KeyPair.generate()
    svc = declared_service(tmp_path / "own.db", clock, keys={"TR": tr})
    new = signing.KeyPair.generate()
    request: dict[str, Any] = {
        "mechanism_id": M,
        "party": "TR",
        "public_key": new.public_key,
        "possession": new.sign(_message("TR", new.public_key)),
    }
    before = _head(svc)
    with pytest.raises(InvalidInput, match=r"authorised_by: missing: TR has a key in force \(ed25519:") as got:
        svc.register_key(**request)
    assert got.value.field == "authorised_by"
    # the operator's key, or another party's, cannot authorise TR's
    il = {k["owner"]: k["key_id"] for k in svc.keys(M)}["IL"]
    with pytest.raises(Forbidden, match=f"authorised_by: {il} is no key of TR in force"):
        svc.register_key(**request, authorised_by=il, authorisation=new.sign(b"x"))
    with pytest.raises(Forbidden, match="authorisation: does not verify with key"):
        svc.register_key(**request, authorised_by=tr.key_id, authorisation=new.sign(_message("TR", new.public_key)))
    assert _head(svc) == before
    request |= {"authorised_by": tr.key_id, "authorisation": tr.sign(_message("TR", new.public_key))}
    with pytest.raises(Prepared) as prepared:
        svc.register_key(**request, mode=SignatureMode(prepare=True))
    entry = prepared.value.entry
    signed = Signed(datetime.fromisoformat(entry["at"]), entry["hash"], tr.key_id, tr.sign_entry(entry["hash"]))
    svc.register_key(**request, mode=SignatureMode(signed=signed))
    stored = _registered(svc)[-1]
    assert stored["actor"] == "TR" and stored["key_id"] == tr.key_id and stored["payload"]["authorised_by"] == tr.key_id
    assert svc.verify(M).ok
    svc.store.close()


def test_the_operator_registers_a_key_only_for_a_party_with_none_in_force(svc: Service) -> None:
    for k in svc.keys(M):
        if k["owner"] == "IL":
            svc.revoke_key(mechanism_id=M, key_id=k["key_id"], reason="lost")
    new = signing.KeyPair.generate()
    proof = new.sign(_message("IL", new.public_key))
    with pytest.raises(InvalidInput, match="authorised_by: IL has no key in force"):
        svc.register_key(mechanism_id=M, party="IL", public_key=new.public_key, possession=proof, authorised_by="x")
    svc.register_key(mechanism_id=M, party="IL", public_key=new.public_key, possession=proof)
    entry = _registered(svc)[-1]
    assert entry["actor"] == "operator" and entry["payload"]["authorised_by"] == "operator"
    assert "authorisation" not in entry["payload"]
    assert svc.verify(M).ok


def test_keys_register_on_the_command_line_signs_with_the_new_key_and_the_current_one(
    tmp_path: Path, clock: FixedClock
) -> None:
    from typer.testing import CliRunner

    from deconflict.cli import app

    tr = signing.KeyPair.generate()
    db = declared_db(tmp_path / "cli.db", clock, keys={"TR": tr})
    signing.write_key_file(tmp_path / "tr.key", tr, party="TR")
    new = signing.KeyPair.generate()
    signing.write_key_file(tmp_path / "tr-2.key", new, party="TR")
    run = CliRunner().invoke
    base = ["keys", "register", "--db", db, "--party", "TR", "--public-key", str(tmp_path / "tr-2.key")]
    refused = run(app, base)
    assert refused.exit_code != 0 and "authorised_by: missing" in refused.output
    done = run(app, [*base, "--with-key", str(tmp_path / "tr.key")])
    assert done.exit_code == 0, done.output
    assert f"registered {new.key_id} for TR" in done.output
    svc = Service(open_store(db), clock=clock)
    stored = _registered(svc)[-1]
    assert stored["actor"] == "TR" and stored["key_id"] == tr.key_id and svc.verify(M).ok
    svc.store.close()


# --- authority held when writing ---------------------------------------------------------------


def _rules_pass(entries: list[dict[str, Any]]) -> None:
    state = authority.AuthorityState()
    for e in entries:
        problem = authority.check(e, state)
        assert problem is None, f"entry {e['seq']} ({e['type']} by {e['actor']}): {problem}"
        authority.apply(e, state)


def test_every_entry_of_the_scripted_demo_passes_the_authority_rules(tmp_path: Path) -> None:
    from rich.console import Console

    from deconflict.demo import MECHANISM, run_script

    service = run_script(Console(file=io.StringIO()), db=str(tmp_path / "demo.db"), start=T0)
    entries = service.entries_after(MECHANISM, 0, limit=100_000)
    assert len(entries) > 30
    _rules_pass(entries)
    kinds = {e["type"] for e in entries}
    assert {"key.registered", "conflict.detected", "conflict.acknowledged", "message.escalated"} <= kinds
    _never_back([_at(e) for e in entries])
    service.store.close()


def test_the_writer_refuses_what_the_rules_refuse_and_writes_nothing(svc: Service) -> None:
    """A use case that would speak for another party is a bug: the writer stops it before the record."""
    from deconflict.service.rules import RecordRefused
    from deconflict.service.writer import RecordWriter

    ctx = svc._ctx  # noqa: SLF001 - reaching under the facade to play a buggy use case
    before = _head(svc)
    with pytest.raises(RecordRefused, match=r"internal error: .*acts for TR but its conflict.acknowledged speaks for"):
        with RecordWriter(ctx, M) as w:
            w.append("TR", EntryType.CONFLICT_ACKNOWLEDGED, {"id": "C1", "party": "IL"}, ctx.clock())
    with pytest.raises(RecordRefused, match="may be written only by the service"):
        with RecordWriter(ctx, M) as w:
            w.append("operator", EntryType.CONFLICT_DETECTED, {"id": "C9", "awaiting": []}, ctx.clock())
    assert _head(svc) == before and svc.verify(M).ok
    # the rules' state is still right for the next honest entry
    svc.notify(mechanism_id=M, actor="TR", kind="uav_patrol", volumes=[vol()])
    _rules_pass(svc.entries_after(M, 0, limit=100_000))


def test_once_a_party_holds_its_own_key_the_service_can_no_longer_sign_for_it(svc: Service) -> None:
    """Found by the end-to-end check: after IL registered its own key, an unsigned notice was still signed
    with the service's demo copy of IL's key. That copy is retired in the same transaction now."""
    held = {k["owner"]: k["key_id"] for k in svc.keys(M)}["IL"]
    new = signing.KeyPair.generate()
    svc.register_key(
        mechanism_id=M, party="IL", public_key=new.public_key, possession=new.sign(_message("IL", new.public_key))
    )
    keys = {k["key_id"]: k for k in svc.keys(M)}
    assert keys[held]["revoked_seq"] is not None and keys[new.key_id]["revoked_seq"] is None
    before = _head(svc)
    with pytest.raises(Forbidden, match="party IL signs its own entries"):
        svc.notify(mechanism_id=M, actor="IL", kind="air_sortie", volumes=[vol()])
    assert _head(svc) == before
    assert svc.verify(M).ok


def test_a_deadline_runs_from_the_entrys_own_time_when_the_clock_stepped_back(svc: Service, clock: FixedClock) -> None:
    """The clock steps back 5 minutes below the last entry: the conflict is stamped with the last entry's time,
    and its deadline (and its alert's) run from that time, never from the clock's earlier one; the record
    still rechecks clean."""
    from deconflict.service.recheck import recheck

    clock.advance(seconds=600)
    svc.notify(mechanism_id=M, actor="TR", kind="uav_patrol", volumes=[vol()])
    clock.advance(seconds=-300)
    svc.notify(mechanism_id=M, actor="IL", kind="air_sortie", volumes=[vol()])
    docs = svc.entries_after(M, 0, limit=1000)
    conflict = next(d for d in docs if d["type"] == "conflict.detected")
    alert = next(d for d in docs if d["type"] == "message.sent" and d["payload"]["needs_ack"])
    assert conflict["at"] == "2025-04-09T06:10:00Z"
    assert conflict["payload"]["deadline"] == alert["payload"]["deadline"] == "2025-04-09T06:20:00Z"
    assert recheck(docs, mechanism=M).problems == []


def test_a_key_the_operator_binds_after_founding_is_shown_as_such_by_verify(svc: Service, tmp_path: Path) -> None:
    """A party that lost its key is re-keyed by the operator (revoke, then register, authorised by the operator):
    allowed, so that a party is never locked out, but verify's key list says who bound it and when."""
    from typer.testing import CliRunner

    from deconflict.cli import app

    held = {k["owner"]: k["key_id"] for k in svc.keys(M)}["IL"]
    svc.revoke_key(mechanism_id=M, key_id=held, reason="lost")
    new = signing.KeyPair.generate()
    svc.register_key(
        mechanism_id=M, party="IL", public_key=new.public_key, possession=new.sign(_message("IL", new.public_key))
    )
    assert _registered(svc)[-1]["payload"]["authorised_by"] == "operator"
    seq = _registered(svc)[-1]["seq"]
    out = tmp_path / "record.jsonl"
    db = str(svc.store.engine.url.database)
    run = CliRunner().invoke
    assert run(app, ["ledger", "export", "--db", db, "--out", str(out)]).exit_code == 0
    result = run(app, ["ledger", "verify", str(out)])
    assert f"key {new.key_id} of IL (party, registered by the operator at entry {seq})" in result.output, result.output


def test_a_second_process_never_signs_with_a_custody_key_another_retired(db: str, clock: FixedClock) -> None:
    """Two service processes on one database: B signed for IL with the demo copy of IL's key (and keeps its
    key pair in memory); A then registers IL's own key, which retires that copy. B's next unsigned notice
    for IL is refused, not signed with the retired key (which verify would refuse as revoked)."""
    a, b = Service(open_store(db), clock=clock), Service(open_store(db), clock=clock)
    b.notify(mechanism_id=M, actor="IL", kind="air_sortie", volumes=[vol()])
    new = signing.KeyPair.generate()
    a.register_key(
        mechanism_id=M, party="IL", public_key=new.public_key, possession=new.sign(_message("IL", new.public_key))
    )
    before = _head(a)
    with pytest.raises(Forbidden, match="party IL signs its own entries"):
        b.notify(mechanism_id=M, actor="IL", kind="air_sortie", volumes=[vol(start_h=5)])
    assert _head(a) == before and a.verify(M).ok
