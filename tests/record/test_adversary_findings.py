"""Holes an independent adversary found in ``ledger verify`` (issue 13): an insider holding every key edits
the scripted demo's export, re-signs it (``support.insider``), and verify accepts a record that says
something false or unfair to a party. Each test is a minimal reproducer, marked xfail until it is fixed."""

from __future__ import annotations

import copy
import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from support import insider
from typer.testing import CliRunner

from deconflict.cli import app
from deconflict.clock import iso, parse_utc
from deconflict.record import authority, merkle, note, registration, signing
from deconflict.record.authority import AuthorityState

runner = CliRunner()
Docs = list[dict[str, Any]]
M = "tr-il-syria"


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> insider.Demo:
    """The scripted demo's record (checkpoints re-dated at its last entry) and every key the service holds."""
    return insider.demo_bundle(tmp_path_factory.mktemp("adversary"))


_verify, _first, _forge, _entry = insider.verify, insider.first, insider.forge, insider.entry


def _tactical(docs: Docs) -> int:
    return next(i for i, d in enumerate(docs) if d["type"] == "conflict.detected" and d["payload"]["kind"] == "tracks")


def test_the_re_signed_demo_verifies(demo: Any, tmp_path: Path) -> None:
    code, output = _verify(tmp_path, _forge(demo, lambda h, d, k: None))
    assert code == 3, output


def test_a_red_line_conflict_closed_as_cleared_is_named(demo: Any, tmp_path: Path) -> None:
    """The service closes IL's red-line conflict C2 as 'cleared' (the tactical resolution) right after raising it:
    recheck counts every 'cleared' as 'tactical conflicts cleared' without asking whether C2 is tactical."""

    def edit(header: dict[str, Any], docs: Docs, kid: Callable[[str], str]) -> None:
        i = max(j for j, d in enumerate(docs) if d["payload"].get("about", {}).get("id") == "C2")
        payload = {"id": "C2", "messages": [], "note": "tracks apart", "resolution": "cleared"}
        docs.insert(i + 1, _entry("system", "conflict.resolved", payload, docs[i]["at"], kid("service")))

    code, output = _verify(tmp_path, _forge(demo, edit))
    assert code == 1 and "C2" in output, output


def test_escalations_dropped_before_later_service_entries_are_named(demo: Any, tmp_path: Path) -> None:
    """The duty loop's run (escalations of M3, M6, line checks) is dropped; the record goes on hours later with
    the service's own tactical entries, and no escalation is named missing (docs/record.md: 'due more than 5
    minutes before a later entry'). The honest demo itself lacks rungs 2 and 3 by its tactical entries: append
    any operator entry at their time and verify names 10 missing steps."""

    def edit(header: dict[str, Any], docs: Docs, kid: Callable[[str], str]) -> None:
        start, end = _first(docs, "message.escalated"), _tactical(docs)
        del docs[start:end]

    code, output = _verify(tmp_path, _forge(demo, edit))
    assert code == 1 and "the escalation of M3 to rung 1" in output, output


def test_withholding_the_last_payload_does_not_hide_an_earlier_false_entry(demo: Any, tmp_path: Path) -> None:
    """C2 made to await TR instead of IL is named on the full copy; withhold the last entry's payload (a tactical
    alert) and recheck returns 'not recomputed', dropping what it had found in entries before it."""

    def edit(header: dict[str, Any], docs: Docs, kid: Callable[[str], str]) -> None:
        docs[_first(docs, "conflict.detected", id="C2")]["payload"]["awaiting"] = ["TR"]

    header, docs = _forge(demo, edit)
    assert _verify(tmp_path, copy.deepcopy((header, docs)))[0] == 1
    docs[-1].pop("payload")
    code, output = _verify(tmp_path, (header, docs))
    assert code == 1 and "C2" in output, output


def test_a_line_restored_notice_with_no_line_down_is_named(demo: Any, tmp_path: Path) -> None:
    """The exemption is for the notice after a party's first word following a line down; here no line was ever
    reported down and nobody spoke, yet the service tells AZ and TR that IL's line is restored."""

    def edit(header: dict[str, Any], docs: Docs, kid: Callable[[str], str]) -> None:
        n = sum(d["type"] == "message.sent" for d in docs) + 1
        at = docs[-1]["at"]
        payload = {"about": {"id": "IL", "kind": "party"}, "deadline": None, "id": f"M{n}", "lang": "en",
                   "needs_ack": False, "params": {"party": "IL", "t1": at}, "template": "line_restored",
                   "to": ["AZ", "TR"], "type": "notice"}  # fmt: skip
        docs.append(_entry("system", "message.sent", payload, at, kid("service")))

    code, output = _verify(tmp_path, _forge(demo, edit))
    assert code == 1, output


def test_a_planning_alert_about_a_tactical_conflict_is_named(demo: Any, tmp_path: Path) -> None:
    """A 'zone_breach_alert' naming a zone that does not exist, sent about tactical conflict C4, is counted as a
    'tactical alert' and passes."""

    def edit(header: dict[str, Any], docs: Docs, kid: Callable[[str], str]) -> None:
        p = docs[_tactical(docs) + 1]["payload"]
        p["template"] = "zone_breach_alert"
        p["params"] = {"owner": "IL", "place": "NO-SUCH-ZONE", "ref": "TR-0002", "party": "TR", "conflict": "C4",
                       "t1": "2026-01-01T00:00", "t2": "2026-01-01T01:00", "ceiling": "0", "floor": "0"}  # fmt: skip

    code, output = _verify(tmp_path, _forge(demo, edit))
    assert code == 1, output


def test_a_cosignature_by_a_revoked_key_is_no_witness(demo: Any, tmp_path: Path) -> None:
    """IL registers a key (custody party) and revokes it at once (compromised); whoever holds it cosigns the head
    as IL, and verify reports 'IL cosigned up to entry N'."""
    keys = dict(demo[2])
    stolen = signing.KeyPair.from_seed(bytes([7] * 32))
    keys[stolen.key_id] = stolen
    header, docs = copy.deepcopy(demo[1])
    il = insider.key_of(keys, header, "IL")
    message = registration.registration_message(mechanism=M, party="IL", public_key=stolen.public_key)
    reg = {"authorised_by": il.key_id, "authorisation": il.sign(message), "custody": "party", "key_id": stolen.key_id,
           "owner": "IL", "possession": stolen.sign(message), "public_key": stolen.public_key}  # fmt: skip
    i = _first(docs, "zone.declared") + 1
    at = docs[i - 1]["at"]
    docs[i:i] = [
        _entry("IL", "key.registered", reg, at, il.key_id),
        _entry("IL", "key.revoked", {"key_id": stolen.key_id, "reason": "compromised"}, at, il.key_id),
    ]
    header["keys"].append({"key_id": stolen.key_id, "owner": "IL", "public_key": stolen.public_key, "custody": "party"})
    header, docs = insider.reseal((header, docs), keys)
    body = note.Checkpoint(note.origin(M), len(docs), merkle.root(merkle.entry_leaf(d["hash"]) for d in docs)).body()
    service = insider.key_of(keys, header, "service")
    signed = note.Note(body).signed(note.NoteSigner(note.origin(M), service).sign(body))
    signed = signed.signed(note.Cosigner(note.cosigner_name(M, "IL"), stolen).cosign(body, int(time.time())))
    header["checkpoints"][0]["note"] = signed.format()
    code, output = _verify(tmp_path, (header, docs))
    assert code == 1 or "IL cosigned" not in output, output


def test_a_notice_backdated_in_its_payload_is_named(demo: Any, tmp_path: Path) -> None:
    """IL's short-notice sortie (notified 20 minutes before it starts) says notified_at the day before: the
    recomputation then calls for no short-notice conflict, so dropping C3, its alerts and escalation verifies.
    The service always writes notified_at = the entry's time (service/notices.py). The same field moves
    deadlines: TR's Palmyra notice made at 00:34 saying notified_at 00:20 gives IL's red-line conflict C2 a
    deadline of 00:30, before IL was alerted, and IL's escalation for 'missing' it verifies too."""

    def edit(header: dict[str, Any], docs: Docs, kid: Callable[[str], str]) -> None:
        i = _first(docs, "conflict.detected", kind="short_notice")
        cid, notice = docs[i]["payload"]["id"], docs[i - 1]["payload"]
        earlier = iso(parse_utc(notice["notified_at"], field="at").replace(hour=0, minute=0) - _DAY)
        notice["notified_at"] = notice["first_notified_at"] = earlier
        alerts = {d["payload"]["id"] for d in docs if d["payload"].get("about", {}).get("id") == cid}
        drop = {j for j, d in enumerate(docs) if j == i or d["payload"].get("id") in alerts}
        drop |= {j for j, d in enumerate(docs) if d["payload"].get("about", {}).get("id") in alerts}
        docs[:] = [d for j, d in enumerate(docs) if j not in drop]
        _renumber(docs)

    code, output = _verify(tmp_path, _forge(demo, edit))
    assert code == 1, output


def _renumber(docs: Docs) -> None:
    """Message and conflict ids numbered again in order, where entries refer to them."""
    ids: dict[str, str] = {}
    for d in docs:
        if d["type"] == "message.sent":
            ids[d["payload"]["id"]] = f"M{sum(v.startswith('M') for v in ids.values()) + 1}"
        elif d["type"] == "conflict.detected":
            ids[d["payload"]["id"]] = f"C{sum(v.startswith('C') for v in ids.values()) + 1}"

    def sub(x: Any) -> Any:
        return [sub(y) for y in x] if isinstance(x, list) else ids.get(x, x) if isinstance(x, str) else x

    for d in docs:
        p = d["payload"]
        for k in ("id", "messages"):
            if k in p:
                p[k] = sub(p[k])
        if isinstance(p.get("about"), dict):
            p["about"]["id"] = sub(p["about"]["id"])
        for k in ("ref", "conflict"):
            if k in p.get("params", {}):
                p["params"][k] = sub(p["params"][k])


_DAY = parse_utc("2026-01-02T00:00:00Z", field="at") - parse_utc("2026-01-01T00:00:00Z", field="at")


def test_deeply_nested_json_is_a_worded_error(demo: Any, tmp_path: Path) -> None:
    path = insider.write(tmp_path / "deep.jsonl", copy.deepcopy(demo[1]))
    lines = path.read_bytes().split(b"\n")
    lines[5] = lines[5].replace(b'"payload": {', b'"payload": {"x": ' + b"[" * 100_000 + b"]" * 100_000 + b", ", 1)
    path.write_bytes(b"\n".join(lines))
    result = runner.invoke(app, ["ledger", "verify", str(path)])
    assert result.exception is None or isinstance(result.exception, SystemExit), repr(result.exception)
    assert result.exit_code in (1, 2)


def test_a_notice_re_using_its_own_activity_id_is_refused() -> None:
    """The table says activity.notified takes 'a new activity id'; only another party's id is refused, so with
    --no-recompute TR's second activity.notified of TR-0001 verifies (with recompute it fails on a SQL
    UNIQUE constraint, whose text verify prints as is)."""
    state = AuthorityState(founding=False, mechanism=M)
    state.members = {"TR": ("TR", "party")}
    state.activities = {"TR-0001": "TR"}
    doc = {"seq": 9, "actor": "TR", "type": "activity.notified", "payload": {"id": "TR-0001", "party": "TR"}}
    assert authority.check(doc, state) is not None


def test_a_resolution_closing_another_conflicts_alert_is_named(demo: Any, tmp_path: Path) -> None:
    """IL accepts its red-line conflict C2 and lists among 'its' alerts M6, TR's short-notice alert about C3:
    the projection closes M6, so TR's missed deadline on C3 never escalates, and the record (with the closing
    note recomputed and the escalations of C2's and C3's alerts left out, as they closed) verifies."""

    def edit(header: dict[str, Any], docs: Docs, kid: Callable[[str], str]) -> None:
        i = _first(docs, "message.sent", template="conflict_closed")
        at = iso(parse_utc(docs[i]["at"], field="at") + _DAY / (24 * 60))
        alert = docs[_first(docs, "message.sent", template="late_notice_alert")]["payload"]["id"]
        resolution = {"id": "C2", "messages": ["M3", alert], "note": "accepted", "resolution": "accepted"}
        told = {"id": "MX", "type": "notice", "to": ["AZ", "TR"], "needs_ack": False, "deadline": None,
                "about": {"kind": "conflict", "id": "C2"}, "template": "conflict_closed_note",
                "params": {"conflict": "C2", "ref": "TR-0002", "how": "accepted", "party": "IL", "note": "accepted"},
                "lang": "en"}  # fmt: skip
        docs[i + 1 : i + 1] = [
            _entry("IL", "conflict.resolved", resolution, at, kid("IL")),
            _entry("system", "message.sent", told, at, kid("service")),
        ]
        docs[:] = [
            d
            for d in docs
            if not (d["type"] == "message.escalated" and d["payload"]["id"] in ("M3", alert))
            and d["payload"].get("about", {}).get("id") not in ("M3", alert)
        ]
        _renumber(docs)

    code, output = _verify(tmp_path, _forge(demo, edit))
    assert code == 1, output


def test_a_party_made_facilitator_after_founding_cannot_resolve_the_other_partys_conflict(
    demo: Any, tmp_path: Path
) -> None:
    """After founding, the operator adds member IL-F, role facilitator, of party IL; IL-F (signing with IL's key)
    accepts C3, IL's own short-notice conflict that awaits TR alone. Recomputed, the closing notice to TR is all
    the service owes, and the record verifies: IL and the operator closed TR's conflict without TR."""

    def edit(header: dict[str, Any], docs: Docs, kid: Callable[[str], str]) -> None:
        i = _first(docs, "message.sent", template="late_notice_info")
        at = docs[i]["at"]
        alert = docs[_first(docs, "message.sent", template="late_notice_alert")]["payload"]["id"]
        member = {"id": "IL-F", "party": "IL", "role": "facilitator", "name": "IL liaison", "language": "en"}
        resolution = {"id": "C3", "messages": [alert], "note": "accepted", "resolution": "accepted"}
        told = {"id": "MX", "type": "notice", "to": ["TR"], "needs_ack": False, "deadline": None,
                "about": {"kind": "conflict", "id": "C3"}, "template": "conflict_closed_note",
                "params": {"conflict": "C3", "ref": "IL-0002", "how": "accepted", "party": "IL", "note": "accepted"},
                "lang": "en"}  # fmt: skip
        docs[i + 1 : i + 1] = [
            _entry("operator", "member.added", member, at, kid("service")),
            _entry("IL-F", "conflict.resolved", resolution, at, kid("IL")),
            _entry("system", "message.sent", told, at, kid("service")),
        ]
        docs[:] = [
            d
            for d in docs
            if not (d["type"] == "message.escalated" and d["payload"]["id"] == alert)
            and d["payload"].get("about", {}).get("id") != alert
        ]
        _renumber(docs)

    code, output = _verify(tmp_path, _forge(demo, edit))
    assert code == 1, output


def test_the_small_things_the_review_found(demo: Any, tmp_path: Path) -> None:
    """Blank lines at the end of a bundle are not entries; a header's head_seq given as text is named as text;
    one kept checkpoint as a single JSON line is read; rules the service cannot run by are named at entry 1."""
    header, docs = copy.deepcopy(demo[1])
    path = insider.write(tmp_path / "blank.jsonl", (header, docs))
    path.write_text(path.read_text(encoding="utf-8") + "\n\n", encoding="utf-8")
    assert runner.invoke(app, ["ledger", "verify", str(path)]).exit_code == 3

    header["head_seq"] = str(header["head_seq"])
    code, output = _verify(tmp_path, (header, docs))
    assert code == 1 and f"ending at entry '{len(docs)}'" in output, output

    kept = tmp_path / "kept.jsonl"
    kept.write_text(json.dumps(demo[1][0]["checkpoints"][-1]) + "\n", encoding="utf-8")
    result = runner.invoke(
        app, ["ledger", "verify", str(insider.write(tmp_path / "ok.jsonl", demo[1])), "--checkpoints", str(kept)]
    )
    assert result.exit_code == 3, result.output

    def bad_rules(header: dict[str, Any], docs: Docs, kid: Callable[[str], str]) -> None:
        docs[0]["payload"]["rules"]["ladder"] = []

    code, output = _verify(tmp_path, _forge(demo, bad_rules))
    assert code == 1 and "entry 1 (mechanism.declared) does not follow" in output, output
