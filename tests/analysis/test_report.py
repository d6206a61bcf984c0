"""The compliance report on a real record: a scripted hour of the Syria mechanism on an SQLite file, exact figures."""

from __future__ import annotations

import csv
import json
import re
import struct
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from support.builders import T0, M
from support.day import write_bundle
from typer.testing import CliRunner

from deconflict.analysis import report, report_output
from deconflict.cli import app
from deconflict.clock import iso
from deconflict.errors import InvalidInput

# The scripted hour is support.day.build_day, read through the ``day`` fixture.


def test_the_scripted_hour_is_the_record_the_tests_expect(day: tuple[str, list[dict[str, Any]]]) -> None:
    _, entries = day
    sent = {e["payload"]["id"]: e["payload"] for e in entries if e["type"] == "message.sent"}
    assert (sent["M1"]["to"], sent["M1"]["template"]) == (["TR"], "separation_alert")
    assert (sent["M2"]["to"], sent["M2"]["template"], sent["M2"]["needs_ack"]) == (["IL"], "separation_info", False)
    assert (sent["M3"]["to"], sent["M3"]["template"]) == (["TR"], "late_notice_alert")
    assert (sent["M4"]["to"], sent["M4"]["template"], sent["M4"]["needs_ack"]) == (["IL"], "late_notice_info", False)
    assert (sent["M6"]["to"], sent["M6"]["type"]) == (["IL"], "line_check")
    assert (sent["M7"]["to"], sent["M7"]["type"]) == (["TR"], "line_check")
    assert (sent["M9"]["to"], sent["M9"]["template"]) == (["AZ", "TR"], "line_down")
    steps = [(e["payload"]["id"], e["payload"]["rung"]) for e in entries if e["type"] == "message.escalated"]
    assert steps == [("M3", 1), ("M6", 1)]
    acks = [(e["type"], e["payload"]) for e in entries if e["type"].endswith(".acknowledged")]
    assert acks[:2] == [
        ("conflict.acknowledged", {"id": "C1", "party": "TR", "messages": ["M1"]}),
        ("conflict.acknowledged", {"id": "C2", "party": "TR", "messages": ["M3"]}),
    ]


def test_whole_hour_exact_figures(day: tuple[str, list[dict[str, Any]]]) -> None:
    _, entries = day
    r = report.compliance_report(entries, end=T0 + timedelta(hours=1))
    assert r.mechanism == M and r.entries == len(entries) and r.withheld == 0
    il, tr = r.parties
    assert (il.party, il.name, tr.party, tr.name) == ("IL", "Israel", "TR", "Türkiye")

    # lead times: TR 3 h and 2 h 10 min; IL 2 h 55 min and 20 min (below the 60 min minimum)
    assert [n.lead_s for n in tr.lead_times.notices] == [10_800, 7_800]
    assert (tr.lead_times.count, tr.lead_times.min_s, tr.lead_times.median_s) == (2, 7_800, 9_300)
    assert (tr.lead_times.p10_s, tr.lead_times.p90_s) == pytest.approx((8_100, 10_500))
    assert (tr.lead_times.below_minimum, tr.lead_times.share_below_minimum) == (0, 0.0)
    assert (il.lead_times.count, il.lead_times.min_s, il.lead_times.median_s) == (2, 1_200, 5_850)
    assert (il.lead_times.p10_s, il.lead_times.p90_s) == pytest.approx((2_130, 9_570))
    assert (il.lead_times.below_minimum, il.lead_times.share_below_minimum) == (1, 0.5)

    # conflicts: both awaited TR; C1 after 3 min (in time), C2 after 15 min (late)
    assert (tr.conflicts.due, tr.conflicts.acknowledged, tr.conflicts.in_time, tr.conflicts.late) == (2, 2, 1, 1)
    assert (tr.conflicts.median_s, tr.conflicts.p90_s) == pytest.approx((540, 828))
    assert il.conflicts.due == 0 and il.conflicts.median_s is None
    # messages: the conflicts' alerts (M1, M3) are counted as their conflicts; TR answered the
    # line-down alert M9 in 8 min; IL was sent only information copies, which ask for nothing
    assert (tr.messages.due, tr.messages.acknowledged, tr.messages.median_s) == (1, 1, 480)
    assert (il.messages.due, il.messages.acknowledged, il.messages.missed) == (0, 0, 0)

    # the late notice was IL's, but the deadline it set was TR's: only TR can miss it
    assert [d.id for d in tr.missed_deadlines] == ["C2"]
    assert il.missed_deadlines == ()
    assert (tr.escalations.count, tr.escalations.highest_rung) == (1, 1)
    assert tr.escalations.highest_rung_name == "operations chief" and tr.escalations.messages == ("M3",)
    assert (il.escalations.count, il.escalations.highest_rung, il.escalations.messages) == (1, 1, ("M6",))
    assert (il.line_checks.due, [d.id for d in il.missed_line_checks]) == (1, ["M6"])
    assert (tr.line_checks.due, tr.line_checks.in_time, tr.missed_line_checks) == (1, 1, ())


def test_period_keeps_only_what_happened_in_it(day: tuple[str, list[dict[str, Any]]]) -> None:
    _, entries = day
    r = report.compliance_report(entries, start=T0 + timedelta(minutes=9), end=T0 + timedelta(minutes=35))
    il, tr = r.parties
    assert [n.activity for n in tr.lead_times.notices] == []  # TR's notices were at +0 and +50
    assert [(n.activity, n.lead_s) for n in il.lead_times.notices] == [("IL-0002", 1200)]
    assert [d.id for d in tr.conflicts.items] == ["C2"]  # C1 was raised at +5
    assert [d.id for d in tr.messages.items] == ["M9"]
    assert il.escalations.count == 1 and tr.escalations.count == 1  # M6 rung 1 at +32; M3 rung 1 at +21


def test_deadline_still_ahead_at_the_end_is_pending_not_missed(day: tuple[str, list[dict[str, Any]]]) -> None:
    _, entries = day
    r = report.compliance_report(entries, end=T0 + timedelta(minutes=15))
    il, tr = r.parties
    assert il.messages.items == ()  # IL was only informed
    assert [(d.id, d.outcome) for d in tr.messages.items] == []  # TR's alerts are judged as the conflicts
    assert [(d.id, d.outcome) for d in tr.conflicts.items] == [("C1", "in_time"), ("C2", "pending")]
    assert il.missed_deadlines == () and tr.missed_deadlines == ()


def test_acknowledgement_after_the_period_is_not_counted(day: tuple[str, list[dict[str, Any]]]) -> None:
    _, entries = day
    r = report.compliance_report(entries, end=T0 + timedelta(minutes=24))  # C2 acknowledged at +25
    tr = r.parties[1]
    assert [(d.id, d.outcome, d.acknowledged_at) for d in tr.conflicts.items][1] == ("C2", "missed", None)


def test_without_an_end_deadlines_are_judged_at_the_last_entry(day: tuple[str, list[dict[str, Any]]]) -> None:
    _, entries = day
    r = report.compliance_report(entries)
    assert r.judged_at == T0 + timedelta(minutes=50)
    assert (
        report_output.report_to_json(r)["parties"]
        == report_output.report_to_json(report.compliance_report(entries, end=T0 + timedelta(hours=1)))["parties"]
    )


def _doc(seq: int, minutes: float, actor: str, type: str, payload: dict[str, Any] | None) -> dict[str, Any]:
    doc: dict[str, Any] = {"mechanism": M, "seq": seq, "at": iso(T0 + timedelta(minutes=minutes)), "actor": actor}
    doc["type"] = type
    if payload is not None:
        doc["payload"] = payload
    return doc


@pytest.mark.parametrize(
    ("ack_minutes", "outcome"),
    [(9.99, "in_time"), (10, "late"), (25, "late"), (None, "missed")],
)
def test_an_acknowledgement_counts_only_strictly_before_the_deadline(
    day: tuple[str, list[dict[str, Any]]], ack_minutes: float | None, outcome: str
) -> None:
    _, entries = day
    head = [entries[0]]  # mechanism.declared: members and rules
    message = {
        "id": "M1",
        "type": "query",
        "to": ["IL"],
        "needs_ack": True,
        "deadline": iso(T0 + timedelta(minutes=10)),
    }
    docs = [*head, _doc(2, 0, "TR", "message.sent", message)]
    if ack_minutes is not None:
        docs.append(_doc(3, ack_minutes, "IL", "message.acknowledged", {"id": "M1", "party": "IL"}))
    docs.append(_doc(len(docs) + 1, 30, "TR", "zone.withdrawn", {"id": "nothing"}))
    il = report.compliance_report(docs, parties=["IL"]).parties[0]
    assert [d.outcome for d in il.messages.items] == [outcome]


def test_conflict_closed_before_its_deadline_is_not_a_missed_deadline(day: tuple[str, list[dict[str, Any]]]) -> None:
    _, entries = day
    conflict = {"id": "C9", "kind": "separation", "awaiting": ["IL"], "deadline": iso(T0 + timedelta(minutes=10))}
    docs = [
        entries[0],
        _doc(2, 0, "system", "conflict.detected", conflict),
        _doc(3, 4, "system", "conflict.resolved", {"id": "C9", "resolution": "amended", "note": ""}),
        _doc(4, 60, "system", "zone.withdrawn", {"id": "nothing"}),
    ]
    il = report.compliance_report(docs, parties=["IL"]).parties[0]
    assert [d.outcome for d in il.conflicts.items] == ["closed"] and il.missed_deadlines == ()


def test_withheld_entries_are_counted_and_skipped(day: tuple[str, list[dict[str, Any]]]) -> None:
    _, entries = day
    copy = [{k: v for k, v in e.items() if not (k == "payload" and e["type"] == "activity.notified")} for e in entries]
    r = report.compliance_report(copy, end=T0 + timedelta(hours=1))
    assert r.withheld == 3
    assert [n.activity for n in r.parties[1].lead_times.notices] == ["TR-0001"]  # only the amendment is readable


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda es: [], "no entries"),
        (lambda es: es[1:], "rules are unknown"),
        (lambda es: [*es, {**es[-1], "mechanism": "other", "seq": 99}], "one mechanism at a time"),
        (lambda es: [*es, {**es[-1], "at": "yesterday", "seq": 99}], "yesterday"),
        (lambda es: [*es, {**es[12], "payload": {"id": "IL-9"}, "seq": 99}], "entry 99 (activity.notified)"),
    ],
)
def test_bad_records_are_refused_with_a_plain_message(
    day: tuple[str, list[dict[str, Any]]], change: Any, message: str
) -> None:
    _, entries = day
    with pytest.raises(InvalidInput, match=re.escape(message)):
        report.compliance_report(change(entries))


def test_unknown_party_and_empty_period_are_refused(day: tuple[str, list[dict[str, Any]]]) -> None:
    _, entries = day
    with pytest.raises(InvalidInput, match="XX is not a party or the facilitator") as e:
        report.compliance_report(entries, parties=["XX"])
    assert "(parties: IL, TR; facilitator: AZ)" in str(e.value)
    assert report.compliance_report(entries, parties=["AZ"]).parties[0].party == "AZ"  # the facilitator, asked for
    with pytest.raises(InvalidInput, match="period is empty"):
        report.compliance_report(entries, start=T0, end=T0)


# --- outputs -----------------------------------------------------------------------------------


def png_size(path: Path) -> tuple[int, int]:
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and data[12:16] == b"IHDR", "not a PNG file"
    width, height = struct.unpack(">II", data[16:24])
    return width, height


def test_json_csv_and_chart(day: tuple[str, list[dict[str, Any]]], tmp_path: Path) -> None:
    _, entries = day
    r = report.compliance_report(entries, end=T0 + timedelta(hours=1))
    doc = report_output.report_to_json(r)
    json.dumps(doc, allow_nan=False)
    il = doc["parties"][0]
    assert il["lead_time"]["share_below_minimum"] == 0.5 and il["missed_line_checks"] == 1
    assert il["missed_deadlines"] == {"count": 0, "ids": []}
    assert doc["parties"][1]["missed_deadlines"] == {"count": 1, "ids": ["C2"]}
    assert il["escalations"]["highest_rung_name"] == "operations chief"
    assert doc["rules"]["min_notice_s"] == 3600 and doc["period"]["to"] == "2025-04-09T07:00:00Z"

    report_output.write_csv(r, tmp_path / "r.csv")
    with (tmp_path / "r.csv").open(encoding="utf-8-sig", newline="") as f:
        rows = list(csv.DictReader(f))
    assert tuple(rows[0]) == report_output.CSV_COLUMNS
    metrics = [row["metric"] for row in rows if row["party"] == "TR"]
    assert len(rows) == 2 * len(metrics) and len(set(metrics)) == len(metrics)
    by = {(row["party"], row["metric"]): row for row in rows}
    assert (by["TR", "lead_time_median"]["value"], by["TR", "lead_time_median"]["unit"]) == ("155.0", "minutes")
    assert by["IL", "share_below_minimum"]["value"] == "50.0" and by["IL", "share_below_minimum"]["unit"] == "percent"
    assert by["TR", "missed_deadline_ids"]["value"] == "C2" and by["IL", "missed_line_checks"]["value"] == "1"
    assert by["IL", "conflict_ack_median"]["value"] == ""  # nothing to measure
    assert by["TR", "notices"]["party_name"] == "Türkiye"

    report_output.write_chart(r, tmp_path / "r.png")
    assert png_size(tmp_path / "r.png") == report_output.CHART_SIZE_PX


# --- the command ---------------------------------------------------------------------------------


def test_report_command_writes_three_files_and_a_summary(day: tuple[str, list[dict[str, Any]]], tmp_path: Path) -> None:
    db, _ = day
    out = tmp_path / "out"
    result = CliRunner().invoke(app, ["report", "--db", db, "--to", "2025-04-09T07:00:00Z", "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert "IL (Israel): 2 notices, lead time median 97.5 min (shortest 20 min), 1 below the minimum" in result.stdout
    assert (
        "missed deadlines: 0; escalations: 1 (highest: operations chief); line checks missed: 1 of 1" in result.stdout
    )
    assert "missed deadlines: 1 (C2); escalations: 1 (highest: operations chief)" in result.stdout
    assert sorted(p.name for p in out.iterdir()) == ["report.csv", "report.json", "report.png"]
    assert png_size(out / "report.png") == (1200, 800)
    assert json.loads((out / "report.json").read_text(encoding="utf-8"))["parties"][1]["party"] == "TR"


def test_report_from_a_bundle_equals_the_database(day: tuple[str, list[dict[str, Any]]], tmp_path: Path) -> None:
    db, entries = day
    bundle = write_bundle(entries, tmp_path / "record.jsonl")
    args = ["--party", "TR", "--from", "2025-04-09T06:00:00Z", "--json"]
    from_db = CliRunner().invoke(app, ["report", "--db", db, *args])
    from_bundle = CliRunner().invoke(app, ["report", "--bundle", str(bundle), *args])
    assert from_db.exit_code == 0 and from_bundle.exit_code == 0, from_bundle.output
    doc = json.loads(from_db.stdout)
    assert doc == json.loads(from_bundle.stdout)
    assert [p["party"] for p in doc["parties"]] == ["TR"]
    assert not list(tmp_path.glob("report.*"))  # --json without --out writes nothing


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--from", "yesterday"], "--from: 'yesterday' is not a time"),
        (["--to", "2025-04-09T07:00:00"], "--to: time has no timezone"),
        (["--mechanism", "nowhere"], "mechanism 'nowhere' has no record"),
        (["--party", "XX"], "XX is not a party"),
        (["--from", "2025-04-09T07:00Z", "--to", "2025-04-09T06:00Z"], "period is empty"),
    ],
)
def test_report_command_refuses_bad_input_with_exit_2(
    day: tuple[str, list[dict[str, Any]]], args: list[str], message: str, tmp_path: Path
) -> None:
    db, _ = day
    result = CliRunner().invoke(app, ["report", "--db", db, "--out", str(tmp_path), *args])
    assert result.exit_code == 2, result.output
    assert message in result.stderr and "Traceback" not in result.output
    assert not list(tmp_path.iterdir())


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (None, "no such file, expected a record bundle"),
        ("not json\n", "line 1 is not a record bundle header"),
        ('{"format": "something else"}\n', "not a deconflict record bundle"),
        ('{"format": "deconflict-record", "mechanism": "tr-il-syria"}\n', "bundle version None is not supported"),
        (
            '{"format": "deconflict-record", "version": 2, "mechanism": "tr-il-syria", "checkpoints": []}\n'
            '{"seq": 1, broken\n',
            "does not verify, so it is not read: after 0 good entries, entry 1 (line 2): unreadable",
        ),
        (
            '{"format": "deconflict-record", "version": 2, "mechanism": "tr-il-syria", "checkpoints": []}\n',
            "no entries",
        ),
    ],
)
def test_report_command_refuses_unreadable_bundles(tmp_path: Path, content: str | None, message: str) -> None:
    path = tmp_path / "b.jsonl"
    if content is not None:
        path.write_text(content, encoding="utf-8")
    result = CliRunner().invoke(app, ["report", "--bundle", str(path), "--json"])
    assert result.exit_code == 2, result.output
    assert message in result.stderr and "Traceback" not in result.output


def test_report_command_help_has_an_example() -> None:
    result = CliRunner().invoke(app, ["report", "--help"])
    assert result.exit_code == 0 and "Example: deconflict report" in result.stdout
