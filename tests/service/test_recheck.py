"""``ledger verify`` recomputes the service's own entries from the entries before them (issue 13): a
conflict two notices call for, an alert and who it goes to, an escalation that fell due. Each edit an
insider holding the service's key could make, and that signatures and the authority rules let through,
is named by entry; a record the service wrote itself rechecks clean."""

from __future__ import annotations

import copy
import json
import time
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from support import insider
from support.builders import T0, M, declared_service, vol
from support.day import build_day, record_of
from support.paths import ROOT
from typer.testing import CliRunner

from deconflict.cli import app
from deconflict.clock import FixedClock, iso, parse_utc
from deconflict.service import Service
from deconflict.service.recheck import GRACE_S, recheck
from deconflict.service.tactical_shape import SHORTENED_SINCE

Docs = list[dict[str, Any]]
runner = CliRunner()


@pytest.fixture(scope="module")
def day(tmp_path_factory: pytest.TempPathFactory) -> Docs:
    """The scripted hour (tests/support/day.py): notices, conflicts, acknowledgements, ticks, an amendment."""
    return record_of(build_day(str(tmp_path_factory.mktemp("recheck") / "day.db")))


def _golden() -> Docs:
    text = (ROOT / "tests" / "golden" / "demo_record.jsonl").read_text(encoding="utf-8")
    return [json.loads(line) for line in text.splitlines() if line.strip()]


def _check(docs: Docs) -> list[str]:
    return recheck(copy.deepcopy(docs), mechanism=docs[0]["mechanism"]).problems


def _index(docs: Docs, type: str, **payload: Any) -> int:
    return next(
        i for i, d in enumerate(docs) if d["type"] == type and all(d["payload"].get(k) == v for k, v in payload.items())
    )


def _edited(docs: Docs, edit: Callable[[Docs], None]) -> Docs:
    out = copy.deepcopy(docs)
    edit(out)
    for n, d in enumerate(out, start=1):
        d["seq"] = n
    return out


def test_the_scripted_demo_rechecks_clean() -> None:
    result = recheck(_golden(), mechanism="tr-il-syria")
    assert result.problems == [] and result.skipped is None
    assert result.derived >= 15  # its conflicts, their alerts, the amendment's closing
    assert result.not_recomputed == {"tactical conflicts (whether the tracks were in conflict)": 1}


def _deadline_of_c4(minutes_after: float) -> Callable[[Docs], None]:
    """An edit: the demo's tracks conflict C4 (and its alerts) due ``minutes_after`` its detection."""

    def edit(docs: Docs) -> None:
        i = _index(docs, "conflict.detected", id="C4")
        due = parse_utc(docs[i]["at"], field="at") + timedelta(minutes=minutes_after)
        for d in docs[i : i + 3]:  # the conflict and its two alerts
            d["payload"]["deadline"] = iso(due)

    return edit


def test_a_tracks_conflict_is_due_when_the_tracks_would_meet() -> None:
    """C4's tracks were predicted to lose separation 249.4 s after it was detected: it and its alerts are due
    then. A record written before that rule (due at the rules' 10 minutes) still checks; any other is named."""
    golden = _golden()
    c4 = golden[_index(golden, "conflict.detected", id="C4")]
    assert c4["payload"]["t_in_s"] == 249.4
    assert parse_utc(c4["payload"]["deadline"], field="deadline") - parse_utc(c4["at"], field="at") == timedelta(
        seconds=249.4
    )
    assert recheck(_edited(golden, _deadline_of_c4(10)), mechanism=M).problems == []
    conflict, *alerts = recheck(_edited(golden, _deadline_of_c4(2)), mechanism=M).problems
    assert conflict == (
        "entry 113: tactical conflict C4: deadline 2026-12-02T09:12:00Z where the rules give "
        "2026-12-02T09:14:09.400000Z or 2026-12-02T09:20:00Z"  # the second: C4 is dated before the rule
    )
    assert len(alerts) == 2 and all('deadline "2026-12-02T09:12:00Z" where the rules give' in a for a in alerts)


def test_after_the_rule_a_tracks_conflict_due_at_the_rules_deadline_is_named() -> None:
    """The rules' 10 minutes pass only for a tracks conflict detected before the service gave tracks about to meet
    their sooner deadline: the same C4 re-dated after it is named."""
    golden = _golden()
    shift = SHORTENED_SINCE - parse_utc(golden[0]["at"], field="at") + timedelta(days=1)
    later = [{**d, "at": iso(parse_utc(d["at"], field="at") + shift)} for d in golden]
    for d in later:  # the times the payloads carry move with their entries
        p = d["payload"]
        for key in ("deadline", "start", "end", "sent_at"):
            if isinstance(p, dict) and isinstance(p.get(key), str) and p[key].endswith("Z") and "T" in p[key]:
                p[key] = iso(parse_utc(p[key], field=key) + shift)
    c4 = later[_index(later, "conflict.detected", id="C4")]
    assert parse_utc(c4["at"], field="at") > SHORTENED_SINCE
    assert [p for p in recheck(copy.deepcopy(later), mechanism=M).problems if "C4" in p] == []
    old_form = _edited(later, _deadline_of_c4(10))
    assert [p for p in recheck(old_form, mechanism=M).problems if "tactical conflict C4: deadline" in p]


def test_a_tick_that_never_came_is_named(day: Docs) -> None:
    """The scripted hour stops ticking at +36 min: M9 (line down, answered by TR, not by AZ) was due to climb
    at +42, and TR's amendment at +50 shows the record went on past it by more than the grace."""
    assert GRACE_S < 8 * 60
    assert _check(day) == [
        "missing before entry 27: the escalation of M9 to rung 1 (operations chief) fell due at "
        "2025-04-09T06:42:00Z, unanswered, and the record has none of it by 2025-04-09T06:50:00Z"
    ]


def _problems_beyond_m9(docs: Docs) -> list[str]:
    return [p for p in _check(docs) if "escalation of M9" not in p]


def test_shifting_whom_a_conflict_awaits_is_named(day: Docs) -> None:
    def edit(docs: Docs) -> None:
        docs[_index(docs, "conflict.detected", id="C2")]["payload"]["awaiting"] = ["IL"]

    problems = _problems_beyond_m9(_edited(day, edit))
    assert len(problems) == 1
    assert problems[0].startswith("entry 14: conflict C2 (short_notice, IL-0002) is not what the entries before")
    assert 'awaiting ["IL"] where the rules give ["TR"]' in problems[0]


def test_a_longer_deadline_is_named(day: Docs) -> None:
    def edit(docs: Docs) -> None:
        docs[_index(docs, "conflict.detected", id="C1")]["payload"]["deadline"] = "2025-04-09T07:05:00Z"

    (problem,) = _problems_beyond_m9(_edited(day, edit))
    assert problem.startswith("entry 9: conflict C1") and "deadline" in problem


def test_a_conflict_left_out_is_named(day: Docs) -> None:
    """The operator drops C1 and its two messages (and the acknowledgement that names it)."""

    def edit(docs: Docs) -> None:
        i = _index(docs, "conflict.detected", id="C1")
        del docs[i : i + 3]
        del docs[_index(docs, "conflict.acknowledged", id="C1")]

    problems = _check(_edited(day, edit))
    assert problems[0] == (
        "missing before entry 9: entry 8 (activity.notified) at 2025-04-09T06:05:00Z calls for conflict C1 "
        "(separation, IL-0001 with TR-0001), which the record does not hold"
    )
    assert any("message M1 (separation_alert to TR)" in p for p in problems)


def test_a_conflict_nothing_calls_for_is_named(day: Docs) -> None:
    def edit(docs: Docs) -> None:
        forged = copy.deepcopy(docs[_index(docs, "conflict.detected", id="C2")])
        forged["payload"]["id"] = "C3"
        forged["at"] = "2025-04-09T06:26:00Z"
        docs.insert(_index(docs, "message.acknowledged", id="M7"), forged)

    problems = _problems_beyond_m9(_edited(day, edit))
    assert problems[0] == (
        "entry 22: the service wrote conflict C3 (short_notice, IL-0002) at 2025-04-09T06:26:00Z, but nothing in "
        "the record before it calls for it"
    )


def test_an_alert_sent_to_the_wrong_party_is_named(day: Docs) -> None:
    """The red-line case of the end-to-end check: the alert goes to the party that broke the rule."""

    def edit(docs: Docs) -> None:
        docs[_index(docs, "message.sent", id="M3")]["payload"]["to"] = ["IL"]

    problems = _problems_beyond_m9(_edited(day, edit))
    assert "entry 15: the service wrote message M3 (late_notice_alert to IL)" in problems[0]
    assert any("calls for message M3 (late_notice_alert to TR)" in p for p in problems)


def test_a_skipped_escalation_is_named(day: Docs) -> None:
    def edit(docs: Docs) -> None:
        i = _index(docs, "message.escalated", id="M3")
        del docs[i : i + 2]  # the step and the message telling TR of it

    problems = _problems_beyond_m9(_edited(day, edit))
    assert any(
        "the duty loop's run at 2025-04-09T06:21:00Z calls for the escalation of M3 to rung 1" in p for p in problems
    )


def test_an_escalation_not_yet_due_is_named(day: Docs) -> None:
    """An escalation moved before its time: at 06:15 nothing has run out (M3's deadline is 06:20)."""

    def edit(docs: Docs) -> None:
        i = _index(docs, "message.escalated", id="M3")
        step, told = docs.pop(i), docs.pop(i)
        step["at"] = told["at"] = "2025-04-09T06:15:00Z"
        after = _index(docs, "message.sent", id="M4")  # the end of IL-0002's conflict C2 at 06:10
        docs[after + 1 : after + 1] = [step, told]

    problems = _problems_beyond_m9(_edited(day, edit))
    assert any(p.startswith("entry 17: the service wrote the escalation of M3 to rung 1") for p in problems)


def test_a_withheld_payload_stops_the_recomputation_there(day: Docs) -> None:
    docs = copy.deepcopy(day)
    del docs[8]["payload"]
    result = recheck(docs, mechanism=docs[0]["mechanism"])
    assert result.ok and result.skipped == "entry 9's payload is withheld in this copy; entries from it on are not"
    assert result.derived == 0  # entries 1-8 hold nothing of the service's own


def test_an_entry_the_record_cannot_take_is_named_not_raised(day: Docs) -> None:
    def edit(docs: Docs) -> None:
        docs[_index(docs, "conflict.acknowledged", id="C1")]["payload"]["id"] = "C99"

    problems = _check(_edited(day, edit))
    assert problems[-1].startswith("entry 12 (conflict.acknowledged) does not follow from the record before it")


# --- through the command line, on a bundle re-signed by an insider holding every key --------------------


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, insider.Bundle, dict[str, Any]]:
    db = tmp_path_factory.mktemp("recheck-cli") / "demo.db"
    assert runner.invoke(app, ["demo", "--script", "--db", str(db)]).exit_code == 0
    out = db.with_name("record.jsonl")
    assert runner.invoke(app, ["ledger", "export", "--db", str(db), "--out", str(out)]).exit_code == 0
    keys = insider.demo_keys(db)
    return out, insider.reseal(insider.read(out), keys), keys


def test_verify_recomputes_and_exits_1_on_a_forged_conflict(tmp_path: Path, demo: Any) -> None:
    out, bundle, keys = demo
    clean = runner.invoke(app, ["ledger", "verify", str(out)])
    assert clean.exit_code == 3, clean.output  # the demo's service holds the parties' keys
    assert "the service's own entries: " in clean.output and "each as the rules give" in clean.output

    header, docs = copy.deepcopy(bundle)
    i = next(n for n, d in enumerate(docs) if d["type"] == "conflict.detected" and d["payload"]["kind"] == "zone")
    docs[i]["payload"]["awaiting"] = [docs[i]["payload"]["party"]]  # the breaker, not the zone's owner
    forged = insider.write(tmp_path / "forged.jsonl", insider.reseal((header, docs), keys))
    result = runner.invoke(app, ["ledger", "verify", str(forged)])
    assert result.exit_code == 1, result.output
    assert "entries verify" in result.output  # every hash and signature holds ...
    assert "DOES NOT HOLD" in result.output and f"entry {i + 1}: conflict" in result.output  # ... the content not

    skipped = runner.invoke(app, ["ledger", "verify", "--no-recompute", str(forged)])
    assert skipped.exit_code == 3 and "not recomputed (--no-recompute)" in skipped.output


@pytest.mark.parametrize("disclosure", ["full", "conflicts-only"])
def test_every_path_the_service_writes_by_itself_rechecks_clean(tmp_path: Path, disclosure: str) -> None:
    """A long morning driven through the service on a pinned clock, ticking each minute: conflicts raised,
    acknowledged, resolved by hand, superseded by an amendment before anyone answered (the deadline carried),
    closed by a cancellation and by a withdrawn zone; a zone declared over a live patrol; escalations up the
    whole ladder; line checks and lines down. The service's own entries all recheck clean."""
    from datetime import timedelta

    from support.builders import HAMA, PALMYRA, T0, T4, M, declared_service, syria, vol, zone

    from deconflict.clock import FixedClock
    from deconflict.model import Disclosure

    clock = FixedClock(T0)
    svc = declared_service(str(tmp_path / "morning.db"), clock, mechanism=syria(disclosure=Disclosure(disclosure)))
    minute = 0

    def until(m: int) -> None:
        nonlocal minute
        while minute < m:
            minute += 1
            clock.now = T0 + timedelta(minutes=minute)
            svc.tick()

    late = T0 + timedelta(hours=3)
    svc.notify(mechanism_id=M, actor="TR", kind="uav_patrol", volumes=[vol(T4, late, hours=2)])
    until(5)
    svc.notify(mechanism_id=M, actor="IL", kind="air_sortie", volumes=[vol(T4, late, hours=2)])  # C1 awaits TR
    until(12)
    svc.resolve_conflict(mechanism_id=M, actor="TR", conflict_id="C1", resolution="accepted", note="deconflicted")
    until(15)
    svc.notify(mechanism_id=M, actor="IL", kind="air_sortie", volumes=[vol(PALMYRA, late, hours=1)])
    svc.notify(mechanism_id=M, actor="TR", kind="uav_patrol", volumes=[vol(PALMYRA, late, hours=1)])
    until(18)  # amended before IL answered: the new conflict keeps the first deadline
    svc.amend(
        mechanism_id=M,
        actor="TR",
        activity_id="TR-0002",
        seen_version=1,
        volumes=[vol(PALMYRA, late + timedelta(minutes=30), hours=1)],
    )
    until(40)
    svc.cancel(mechanism_id=M, actor="TR", activity_id="TR-0002")
    hama = vol(HAMA, late, hours=2, radius_m=5000)
    svc.notify(mechanism_id=M, actor="TR", kind="uav_patrol", volumes=[hama])
    until(45)
    svc.declare_zone(mechanism_id=M, actor="IL", zone=zone("IL-R-HAMA", "restricted", ["uav_patrol"], HAMA, 8000))
    until(70)
    svc.withdraw_zone(mechanism_id=M, actor="IL", zone_id="IL-R-HAMA")
    until(130)  # the line checks at +1 went unanswered: lines down, escalations up the ladder
    svc.send_message(mechanism_id=M, actor="IL", text="IL duty officer on the line", to=["TR"])
    until(200)

    docs = svc.entries_after(M, 0, limit=1_000_000)
    kinds = {d["payload"].get("template") for d in docs if d["type"] == "message.sent"}
    assert {"escalated_to", "line_check", "line_down", "conflict_closed_note", "zone_breach_alert"} <= kinds
    resolutions = {d["payload"]["resolution"] for d in docs if d["type"] == "conflict.resolved"}
    assert {"accepted", "amended", "cancelled", "withdrawn"} <= resolutions
    assert any(d["payload"].get("supersedes") for d in docs if d["type"] == "conflict.detected")
    result = recheck(docs, mechanism=M)
    assert result.problems == []
    assert result.derived > 40 and result.skipped is None, result
    assert result.not_recomputed == {}
    overlaps = [d for d in docs if d["type"] == "conflict.detected" and "overlap_a" in d["payload"]]
    assert bool(overlaps) == (disclosure == "conflicts-only")  # the overlap parts are recomputed too


def test_a_line_check_never_sent_is_named_missing(day: Docs) -> None:
    """The scripted hour's line checks (M6 to IL, M7 to TR at 06:21, hourly): the duty loop's later runs at
    07:30 that leave them out are named, once the next checks were due more than the grace before."""

    def edit(docs: Docs) -> None:
        later = copy.deepcopy(docs[-1])  # an entry of a member long after: the record went on past 07:21
        later["at"] = "2025-04-09T07:30:00Z"
        docs.append(later)

    problems = _problems_beyond_m9(_edited(day, edit))
    assert "missing before entry 30: a line check of IL fell due at 2025-04-09T07:21:00Z" in " ".join(problems)
    assert "a line check of TR fell due at 2025-04-09T07:21:00Z" in " ".join(problems)


def test_each_entry_costs_the_same_to_recompute_however_long_the_record(tmp_path: Path) -> None:
    """The recomputation runs the service's code on each member's entry in a savepoint it rolls back. With the
    whole record in one transaction, SQLite's ROLLBACK TO walked every page changed since the first entry:
    each entry cost more than the last (a hotline's 26,906 entries took 8 min 43 s to verify, 2,408 took
    4.6 s). CPU an entry over the first quarter of 2,000 messages against all of them: about 1 now, over 2
    with that defect."""
    svc = declared_service(tmp_path / "long.db")
    for i in range(2000):
        svc.send_message(mechanism_id=M, actor=("TR", "IL")[i % 2], text=f"message {i}")
    docs = record_of(svc)
    svc.store.close()

    def cpu_an_entry(n: int) -> float:
        started = time.process_time()
        assert recheck(docs[:n], mechanism=M).problems == []
        return (time.process_time() - started) / n

    # the best of three, the two lengths taking turns: a busy moment of a shared machine slows both alike
    short, long = float("inf"), float("inf")
    for _ in range(3):
        short, long = min(short, cpu_an_entry(len(docs) // 4)), min(long, cpu_an_entry(len(docs)))
    assert long / short < 1.5, f"{long * 1e3:.3f} ms an entry over {len(docs)}, {short * 1e3:.3f} over a quarter"


def test_a_members_message_about_a_message_it_could_not_read_is_named(tmp_path: Path) -> None:
    """A member's message may be about a message it reads (a line check, its alert); one about a message it
    could not read, or none, is what the service refuses, and an insider's entry saying so is named."""
    clock = FixedClock(T0)
    svc = declared_service(tmp_path / "about.db", clock)
    svc.notify(mechanism_id=M, actor="TR", kind="uav_patrol", volumes=[vol(start_h=3)])
    svc.notify(mechanism_id=M, actor="IL", kind="air_sortie", volumes=[vol(start_h=3)])  # C1: alert M1 to TR
    svc.send_message(mechanism_id=M, actor="TR", text="Checking", about={"kind": "message", "id": "M1"})
    docs = record_of(svc)
    assert _check(docs) == []
    sent = _index(docs, "message.sent", text="Checking")
    hidden = next(d["payload"]["id"] for d in docs if d["type"] == "message.sent" and d["payload"]["to"] == ["IL"])
    for ref in (hidden, "M99"):
        edited = copy.deepcopy(docs)
        edited[sent]["payload"]["about"]["id"] = ref
        problems = _check(edited)
        assert any(f"about: message '{ref}' is not one TR could read" in p for p in problems), problems


def test_a_message_dropped_is_named_and_what_follows_is_still_recomputed(day: Docs) -> None:
    """The operator drops the notice of M3's escalation (its step kept) and renumbers nothing: the record's
    next messages keep their numbers. The drop is named; the recheck goes on numbering as the record does, so
    a later forgery (an alert sent to the wrong party) is named too. It stopped at the next message the
    service would write, with the store's raw error (``UNIQUE constraint failed`` and its SQL)."""

    def edit(docs: Docs) -> None:
        i = _index(docs, "message.escalated", id="M3")
        del docs[i + 1]  # the notice telling TR of the step
        later = [d for d in docs[i:] if d["type"] == "message.sent" and d["payload"].get("type") == "alert"]
        later[-1]["payload"]["to"] = ["AZ"]

    problems = _check(_edited(day, edit))
    assert problems and not any("SQL" in p or "UNIQUE" in p or "does not follow" in p for p in problems), problems
    assert any("calls for message" in p and "escalated_to" in p for p in problems), problems
    assert any("to AZ)" in p for p in problems), problems


def test_a_resolution_closing_a_message_the_record_does_not_hold_is_named_in_words(svc: Service) -> None:
    """The operator drops an alert that a cancellation's resolution later closes: the resolution is named as
    naming a message the record does not hold (it was a bare ``AssertionError`` from the projection, and
    ``replay --bundle`` printed a traceback)."""
    svc.notify(mechanism_id=M, actor="TR", kind="uav_patrol", volumes=[vol(start_h=3)])
    svc.notify(mechanism_id=M, actor="IL", kind="air_sortie", volumes=[vol(start_h=3)])  # C1, its alert awaited
    svc.cancel(mechanism_id=M, actor="IL", activity_id="IL-0001")
    docs = record_of(svc)
    resolved = next(d for d in docs if d["type"] == "conflict.resolved" and d["payload"].get("messages"))
    gone = resolved["payload"]["messages"][0]

    def edit(docs: Docs) -> None:
        del docs[_index(docs, "message.sent", id=gone)]

    problems = _check(_edited(docs, edit))
    assert not any("AssertionError" in p for p in problems), problems
    assert any(f"it names message {gone!r}, which the record before it does not hold" in p for p in problems), problems


# --- a member's phrase, held to what the service takes of one (from admission.PHRASES_HELD_SINCE) --------------


def _phrases_after_the_rule(tmp_path: Path, at: Any) -> Docs:
    """Türkiye and Israel notify; Israel asks Türkiye about its notice; Türkiye reports an incident and says
    it is holding: every phrase as the service takes it, at ``at``."""
    from support.builders import HAMA, T4

    clock = FixedClock(at)
    svc = declared_service(tmp_path / f"phrases-{at:%Y}.db", clock)
    tr = svc.notify(mechanism_id=M, actor="TR", kind="uav_patrol", volumes=[vol(T4, clock(), start_h=4)])
    svc.notify(mechanism_id=M, actor="IL", kind="air_sortie", volumes=[vol(HAMA, clock(), start_h=5)])
    ref = tr.activity.id if tr.activity is not None else ""
    query = {"ref": ref, "t1": "10:00", "t2": "11:00"}
    svc.send_message(mechanism_id=M, actor="IL", template="query_activity", params=query, to=["TR"])
    incident = {"place": "T4", "t1": "09:00", "party": "TR"}
    svc.send_message(mechanism_id=M, actor="TR", template="incident_at", params=incident, to=["IL"])
    svc.send_message(mechanism_id=M, actor="TR", template="holding", params={"ref": ref}, to=["IL"])
    docs = svc.entries_after(M, 0, limit=10_000)
    svc.store.close()
    return docs


def _phrase(docs: Docs, template: str) -> dict[str, Any]:
    return docs[_index(docs, "message.sent", template=template)]["payload"]


@pytest.mark.parametrize(
    ("edit", "named"),
    [
        (lambda d: _phrase(d, "query_activity").update(to=["AZ"]), "to: a query about activity TR-0001 is asked of TR"),
        (lambda d: _phrase(d, "query_activity")["params"].update(ref="IL-0001"), "IL-0001 is IL's own activity"),
        (lambda d: _phrase(d, "query_activity")["params"].update(ref="TR-0099"), "which is no activity in the record"),
        (
            lambda d: _phrase(d, "incident_at")["params"].update(party="IL"),
            "params.party: a member reports for its own",
        ),
        (lambda d: _phrase(d, "holding")["params"].update(ref="x" * 300), "params.ref: 300 characters"),
        (lambda d: _phrase(d, "holding")["params"].update(ref="see you at noon"), "params.ref: 'see you at noon' may"),
        (lambda d: _phrase(d, "incident_at")["params"].update(t1="tomorrow"), "params.t1: 'tomorrow' is not a time"),
    ],
    ids=["query-to", "query-own", "query-ghost", "incident-party", "long-ref", "ref-words", "time"],
)
def test_a_phrase_the_service_would_refuse_is_named_from_the_rule_date(
    tmp_path: Path, edit: Callable[[Docs], None], named: str
) -> None:
    from deconflict.service.admission import PHRASES_HELD_SINCE

    after = _phrases_after_the_rule(tmp_path, PHRASES_HELD_SINCE + timedelta(hours=2))
    assert _check(after) == []
    problems = _check(_edited(after, edit))
    assert len(problems) == 1 and "the service would have refused" in problems[0] and named in problems[0], problems
    # a record written before the rule date is read as it was written
    before = _phrases_after_the_rule(tmp_path, T0)
    assert _check(_edited(before, edit)) == []
