"""The hotline core: agreed wording in five languages, the escalation ladder over a simulated day, line checks."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest

from deconflict.errors import InvalidInput
from deconflict.hotline import (
    LANGUAGES,
    NEEDS_ACK,
    EscalationStep,
    LineState,
    MessageType,
    due_steps,
    escalation_state,
    format_param,
    free_text,
    is_rtl,
    ladder_schedule,
    line_check_due,
    line_state,
    line_transition,
    load_templates,
    needs_ack,
    render,
    rung_name,
)
from deconflict.mechanisms import load_mechanism
from deconflict.model import Rung
from deconflict.scenarios import scenario_path

T0 = datetime(2025, 4, 9, 6, 0, tzinfo=UTC)
DAY_MIN = 24 * 60

# The Syria rules, written out by hand (the simulation must not derive its expectations
# from the code under test): acknowledge within 10 min; duty officer 10 → operations
# chief 15 → national security adviser 30 → facilitator 60 minutes.
ACK_S = 600.0
LADDER = (
    Rung("duty officer", 600.0),
    Rung("operations chief", 900.0),
    Rung("national security adviser", 1800.0),
    Rung("facilitator", 3600.0),
)
# (minute alerted, rung index, name, minute its deadline passes)
SCHEDULE = [
    (0, 0, "duty officer", 10),
    (10, 1, "operations chief", 25),
    (25, 2, "national security adviser", 55),
    (55, 3, "facilitator", 115),
]
EXHAUSTED_MIN = 115
STEPS = [(10, 1, "operations chief"), (25, 2, "national security adviser"), (55, 3, "facilitator")]


def at(minutes: float, base: datetime = T0) -> datetime:
    return base + timedelta(minutes=minutes)


def step_tuples(steps: list[EscalationStep] | tuple[EscalationStep, ...], base: datetime = T0) -> list[tuple]:
    return [(round((s.due_at - base).total_seconds() / 60, 6), s.rung, s.name) for s in steps]


# --- agreed wording -------------------------------------------------------------------

TEMPLATES = load_templates()
SAMPLE = {
    "ref": "IL-A7",
    "other_ref": "TR-N12",
    "t1": datetime(2025, 4, 9, 8, 0, tzinfo=UTC),
    "t2": datetime(2025, 4, 9, 9, 30, 15, tzinfo=UTC),
    "floor": 1500.0,
    "ceiling": 4572,
    "place": "Palmyra (Tadmur)",
    "party": "TR",
    "rung": "operations chief",
    "minutes": 60,
    "track": "TR/UAV-1",
    "other_track": "IL/F16-2",
    "distance": 3.4,
    "conflict": "C7",
    "owner": "IL",
    "alerted": "TR",
    "how": "accepted",
    "note": "Holding until 10:00Z",
}
SAMPLE_TEXT = {
    "ref": "IL-A7",
    "other_ref": "TR-N12",
    "t1": "2025-04-09T08:00",
    "t2": "2025-04-09T09:30:15",
    "floor": "1500",
    "ceiling": "4572",
    "place": "Palmyra (Tadmur)",
    "party": "TR",
    "rung": "operations chief",
    "minutes": "60",
    "track": "TR/UAV-1",
    "other_track": "IL/F16-2",
    "distance": "3.4",
    "conflict": "C7",
    "owner": "IL",
    "alerted": "TR",
    "how": "accepted",
    "note": "Holding until 10:00Z",
}
NON_WESTERN_DIGITS = re.compile(r"[\u0660-\u0669\u06f0-\u06f9\u0966-\u096f]")

REQUIRED = [
    ("conflict_alert", MessageType.ALERT, True),
    ("short_notice_alert", MessageType.ALERT, True),
    ("zone_alert", MessageType.ALERT, True),
    ("track_alert", MessageType.ALERT, True),
    ("conformance_alert", MessageType.ALERT, True),
    ("intrusion_alert", MessageType.ALERT, True),
    ("acknowledged_amending", MessageType.RESPONSE, False),
    ("holding", MessageType.RESPONSE, False),
    ("proceeding_as_notified", MessageType.RESPONSE, False),
    ("line_check", MessageType.LINE_CHECK, True),
    ("line_check_reply", MessageType.RESPONSE, False),
    ("line_down", MessageType.ALERT, True),
    ("line_restored", MessageType.NOTICE, False),
    ("incident_at", MessageType.INCIDENT, True),
    ("escalated_to", MessageType.NOTICE, False),
]


@pytest.mark.parametrize(("template_id", "mtype", "ack"), REQUIRED)
def test_required_templates_exist_with_their_type(template_id: str, mtype: MessageType, ack: bool) -> None:
    tpl = TEMPLATES[template_id]
    assert (tpl.type, tpl.needs_ack) == (mtype, ack)
    assert set(tpl.text) == set(LANGUAGES)


@pytest.mark.parametrize(
    ("mtype", "ack"),
    [
        ("notice", False),
        ("query", True),
        ("alert", True),
        ("response", False),
        ("incident", True),
        ("line_check", True),
        ("free_text", False),
    ],
)
def test_which_types_need_an_acknowledgement(mtype: str, ack: bool) -> None:
    assert needs_ack(mtype) is ack
    assert (MessageType(mtype) in NEEDS_ACK) is ack


@pytest.mark.parametrize(("template_id", "lang"), [(t, lang) for t in sorted(TEMPLATES) for lang in LANGUAGES])
def test_every_template_renders_in_every_language(template_id: str, lang: str) -> None:
    tpl = TEMPLATES[template_id]
    r = render(template_id, lang, {p: SAMPLE[p] for p in tpl.params})
    assert (r.lang, r.template, r.type, r.needs_ack, r.free_text) == (lang, template_id, tpl.type, tpl.needs_ack, False)
    assert r.rtl is (lang in ("he", "ar"))
    assert "{" not in r.text and "}" not in r.text
    for p in tpl.params:
        shown = rung_name(SAMPLE_TEXT[p], lang) if p == "rung" else SAMPLE_TEXT[p]
        assert shown in r.text or p == "how", p  # how: worded per language (see the test of conflict_closed)
        assert r.params[p] == SAMPLE_TEXT[p]  # stored as given, so that every reader can re-word it
    assert not NON_WESTERN_DIGITS.search(r.text)
    if any(p in tpl.params for p in ("t1", "t2")):
        assert "UTC" in r.text
    if lang in ("he", "ar"):
        assert not r.text.startswith(tuple(SAMPLE_TEXT[p] for p in tpl.params)), "RTL text must start right to left"


def test_conflict_alert_english_wording() -> None:
    r = render("conflict_alert", "en", {p: SAMPLE[p] for p in TEMPLATES["conflict_alert"].params})
    assert r.text == (
        "Your activity IL-A7 conflicts with our notice TR-N12 between 2025-04-09T08:00 and "
        "2025-04-09T09:30:15 UTC, 1500–4572 m. Request you hold or amend."
    )


@pytest.mark.parametrize(
    ("template_id", "lang", "params", "named"),
    [
        ("holding", "en", {}, "ref"),
        ("conflict_alert", "tr", {k: SAMPLE[k] for k in ("ref", "other_ref", "t1", "t2", "floor")}, "ceiling"),
        ("line_down", "ar", {"party": "TR"}, "t1"),
        ("holding", "en", {"ref": "C1", "place": "T4"}, "place"),
        ("line_check", "he", {"party": "IL", "t1": T0, "rung": "x"}, "rung"),
        ("escalated_to", "ru", {"ref": "C1", "t1": T0, "rung": "facilitator", "other_ref": "C2"}, "other_ref"),
        ("no_such_template", "en", {}, "no_such_template"),
        ("holding", "fr", {"ref": "C1"}, "'fr'"),
        ("holding", "EN", {"ref": "C1"}, "'EN'"),
    ],
)
def test_render_refuses_naming_the_problem(template_id: str, lang: str, params: dict, named: str) -> None:
    with pytest.raises(InvalidInput) as e:
        render(template_id, lang, params)
    assert named in str(e.value)


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (1500.0, "1500"),
        (1500.5, "1500.5"),
        (-30, "-30"),
        ("T4", "T4"),
        (datetime(2025, 4, 9, 8, 0, tzinfo=UTC), "2025-04-09T08:00"),
        (datetime(2025, 4, 9, 11, 0, 5, tzinfo=timezone(timedelta(hours=3))), "2025-04-09T08:00:05"),
    ],
)
def test_parameter_values_are_the_same_text_in_every_language(value: object, text: str) -> None:
    assert format_param("x", value) == text


def test_a_time_parameter_is_worded_as_strftime_words_it_in_any_year_and_zone() -> None:
    """Times (of the years 2000 to 2099 that the service takes) are worded from ``isoformat``, quicker: the very
    text of ``strftime``."""
    from random import Random

    rng = Random(7)
    zones = [UTC, timezone(timedelta(hours=3)), timezone(timedelta(hours=-9, minutes=-30))]
    for _ in range(5_000):
        when = datetime(
            rng.randint(2000, 2098), rng.randint(1, 12), rng.randint(1, 28), rng.randint(0, 23), rng.randint(0, 59),
            rng.choice([0, rng.randint(0, 59)]), rng.choice([0, 0, rng.randint(0, 999_999)]), tzinfo=rng.choice(zones),
        )  # fmt: skip
        t = when.astimezone(UTC)
        expected = t.strftime("%Y-%m-%dT%H:%M:%S" if t.second or t.microsecond else "%Y-%m-%dT%H:%M")
        assert format_param("t1", when) == expected, when
        assert format_param("t1", f"{when.isoformat()}") == expected, when


@pytest.mark.parametrize("value", [None, True, float("nan"), float("inf"), "  ", datetime(2025, 4, 9, 8, 0), [1]])  # noqa: DTZ001
def test_parameter_values_refused(value: object) -> None:
    with pytest.raises(InvalidInput):
        format_param("x", value)


GOOD_TEXT = {
    "en": "Holding {ref}.",
    "tr": "{ref} bekletiliyor.",
    "he": "משהים את {ref}.",
    "ar": "نعلّق {ref}.",
    "ru": "{ref}: приостановлено.",
}


def toml_template(template_id: str, *, mtype: str = "response", ack: str = "false", params: str = '["ref"]', **text):
    wording = GOOD_TEXT | text
    lines = [
        f"[{template_id}]",
        f'type = "{mtype}"',
        f"needs_ack = {ack}",
        f"params = {params}",
        f"[{template_id}.text]",
    ]
    lines += [f'{lang} = "{w}"' for lang, w in wording.items() if w is not None]
    return "\n".join(lines) + "\n"


@pytest.mark.parametrize(
    ("body", "named"),
    [
        (toml_template("hold_a", tr="{reff} bekletiliyor."), ["hold_a", "tr", "{ref}", "{reff}"]),
        (toml_template("hold_b", ar="نعلّق."), ["hold_b", "ar", "missing {ref}"]),
        (toml_template("hold_c", ru="{ref} {t1}: приостановлено."), ["hold_c", "ru", "undeclared {t1}"]),
        (toml_template("hold_d", he=None), ["hold_d", "he"]),
        (toml_template("hold_e", fr="Attente {ref}."), ["hold_e", "fr"]),
        (toml_template("hold_f", en="Holding {ref:>5}."), ["hold_f", "en"]),
        (toml_template("hold_g", params='["ref", "place"]'), ["hold_g", "en", "missing {place}"]),
        (toml_template("hold_h", ack="true"), ["hold_h", "needs_ack"]),
        (toml_template("hold_i", mtype="gossip"), ["hold_i", "gossip"]),
        (toml_template("hold_j", en="Holding {ref."), ["hold_j", "en"]),
        ("not = [valid", ["not valid TOML"]),
    ],
)
def test_bad_templates_file_is_refused_naming_template_and_language(
    tmp_path: Path, body: str, named: list[str]
) -> None:
    path = tmp_path / "templates.toml"
    path.write_text(toml_template("fine") + body, encoding="utf-8")
    with pytest.raises(InvalidInput) as e:
        load_templates(path)
    for word in named:
        assert word in str(e.value)


def test_good_templates_file_loads_and_renders(tmp_path: Path) -> None:
    path = tmp_path / "templates.toml"
    path.write_text(toml_template("fine"), encoding="utf-8")
    templates = load_templates(path)
    assert render("fine", "ru", {"ref": "C3"}, templates=templates).text == "C3: приостановлено."


@pytest.mark.parametrize(("lang", "rtl"), [("en", False), ("tr", False), ("he", True), ("ar", True), ("ru", False)])
def test_right_to_left_for_hebrew_and_arabic_only(lang: str, rtl: bool) -> None:
    assert is_rtl(lang) is rtl
    r = render("line_check", lang, {"party": "TR", "t1": SAMPLE["t1"]})
    assert r.rtl is rtl
    # on screen, parameters in right-to-left text are isolated so a date never reads backwards
    if rtl:
        assert "\u20682025-04-09T08:00\u2069" in r.display
        assert r.display.replace("\u2068", "").replace("\u2069", "") == r.text
    else:
        assert r.display == r.text


@pytest.mark.parametrize(
    ("text", "lang"),
    [("Request you call on the secure line.", "en"), ("נא להתקשר בקו המאובטח.", "he"), (" Tamam ", "tr")],
)
def test_free_text_keeps_the_original_words_and_language(text: str, lang: str) -> None:
    m = free_text(text, lang)
    assert (m.text, m.lang, m.free_text, m.template, m.type) == (text, lang, True, None, MessageType.FREE_TEXT)
    assert m.rtl is (lang == "he")
    assert not m.needs_ack


@pytest.mark.parametrize(("text", "lang"), [("", "en"), ("   ", "tr"), ("Bonjour", "fr")])
def test_free_text_refused(text: str, lang: str) -> None:
    with pytest.raises(InvalidInput):
        free_text(text, lang)


# --- escalation ladder ----------------------------------------------------------------


def test_bundled_syria_rules_are_the_ladder_simulated_here() -> None:
    rules = load_mechanism(scenario_path("syria")).rules
    assert (rules.ack_deadline_s, rules.ladder) == (ACK_S, LADDER)


def test_schedule_of_the_syria_ladder() -> None:
    windows = ladder_schedule(T0, ACK_S, LADDER)
    got = [(w.alerted_at, w.rung, w.name, w.deadline) for w in windows]
    assert got == [(at(a), k, n, at(d)) for a, k, n, d in SCHEDULE]


def expected_at(minute: float, ack_minute: float | None) -> dict:
    """What the ladder must show at ``minute`` (hand-written oracle from SCHEDULE)."""
    known = ack_minute is not None and ack_minute <= minute
    horizon = ack_minute if known else minute
    alerted, rung, name, deadline = max(row for row in SCHEDULE if row[0] <= horizon)
    return {
        "rung": rung,
        "name": name,
        "deadline": deadline,
        "acknowledged": known,
        "exhausted": not known and minute >= EXHAUSTED_MIN,
        "steps": [(float(d), k, n) for d, k, n in STEPS if d <= horizon],
    }


def observed_at(minute: float, ack_minute: float | None) -> dict:
    e = escalation_state(T0, ACK_S, LADDER, None if ack_minute is None else at(ack_minute), at(minute))
    return {
        "rung": e.rung,
        "name": e.rung_name,
        "deadline": round((e.deadline - T0).total_seconds() / 60, 6),
        "acknowledged": e.acknowledged,
        "exhausted": e.exhausted,
        "steps": step_tuples(e.steps),
    }


def test_unanswered_alert_climbs_the_whole_ladder_minute_by_minute_for_24_hours() -> None:
    for minute in range(DAY_MIN + 1):
        assert observed_at(minute, None) == expected_at(minute, None), minute
    final = escalation_state(T0, ACK_S, LADDER, None, at(DAY_MIN))
    assert final.exhausted and final.rung_name == "facilitator" and final.next_change_at is None
    assert step_tuples(final.steps) == [(float(d), k, n) for d, k, n in STEPS]


@pytest.mark.parametrize(
    ("minute", "rung", "next_change"),
    [
        (0, 0, 10),
        (9.99, 0, 10),
        (10, 1, 25),
        (24.5, 1, 25),
        (25, 2, 55),
        (54.99, 2, 55),
        (55, 3, 115),
        (114.99, 3, 115),
    ],
)
def test_rung_boundaries_and_next_wake_up(minute: float, rung: int, next_change: float) -> None:
    e = escalation_state(T0, ACK_S, LADDER, None, at(minute))
    assert e.rung == rung
    assert e.next_change_at == at(next_change)


@pytest.mark.parametrize("ack_minute", range(0, 130))
def test_acknowledgement_at_any_minute_of_the_climb_stops_it(ack_minute: int) -> None:
    # every minute of the first three hours, then every ten minutes to the end of the day
    for minute in [*range(180), *range(180, DAY_MIN + 1, 10)]:
        assert observed_at(minute, ack_minute) == expected_at(minute, ack_minute), (ack_minute, minute)
    e = escalation_state(T0, ACK_S, LADDER, at(ack_minute), at(DAY_MIN))
    assert e.acknowledged and not e.exhausted and e.next_change_at is None


def test_acknowledgement_at_any_later_minute_of_the_day_changes_nothing_more() -> None:
    for ack_minute in range(130, DAY_MIN + 1):
        for minute in (ack_minute - 1, ack_minute, ack_minute + 1, DAY_MIN):
            assert observed_at(minute, ack_minute) == expected_at(minute, ack_minute), (ack_minute, minute)


@pytest.mark.parametrize(
    ("ack_minute", "steps"),
    [(9.99, 0), (10, 1), (10.01, 1), (24.99, 1), (25, 2), (54.99, 2), (55, 3)],
)
def test_deadline_is_exclusive(ack_minute: float, steps: int) -> None:
    """An acknowledgement counts only strictly before the deadline; at the deadline the next rung is due."""
    got = due_steps(T0, ACK_S, LADDER, at(ack_minute), at(DAY_MIN), recorded=0)
    assert step_tuples(got) == [(float(d), k, n) for d, k, n in STEPS[:steps]]


def test_acknowledgement_not_yet_known_is_ignored_for_replay() -> None:
    e = escalation_state(T0, ACK_S, LADDER, at(30), at(20))
    assert (e.acknowledged, e.rung) == (False, 1)


# The day's traffic: alerts sent through the day (some at odd seconds), some never answered.
# (sent minute, acknowledged minute or None)
DAY_ALERTS = {
    "A1": (0, None),
    "A2": (37.5, 49),
    "A3": (125, 126),
    "A4": (300.25, None),
    "A5": (600, 640),
    "A6": (1200, None),
    "A7": (1300, None),
    "A8": (1430, None),
}


def expected_day_steps(sent: float, ack: float | None, end: float) -> list[tuple]:
    return [(sent + d, k, n) for d, k, n in STEPS if sent + d <= end and (ack is None or sent + d <= ack)]


def poll(records: dict[str, list[tuple]], minute: float) -> None:
    """One wake-up of a caller driven by stored times: record exactly the missing steps."""
    now = at(minute)
    for mid, (sent, ack) in DAY_ALERTS.items():
        if sent > minute:
            continue
        ack_at = None if ack is None else at(ack)
        new = due_steps(at(sent), ACK_S, LADDER, ack_at, now, recorded=len(records[mid]))
        records[mid].extend(step_tuples(new))


def test_a_day_of_alerts_polled_every_minute_records_each_step_once() -> None:
    records: dict[str, list[tuple]] = {mid: [] for mid in DAY_ALERTS}
    for minute in range(DAY_MIN + 1):
        poll(records, minute)
        poll(records, minute)  # a second wake-up at the same instant adds nothing
    for mid, (sent, ack) in DAY_ALERTS.items():
        assert records[mid] == expected_day_steps(sent, ack, DAY_MIN), mid
    assert len(records["A1"]) == 3 and len(records["A3"]) == 0 and len(records["A5"]) == 2
    assert (
        len(records["A8"]) == 1
    )  # sent 10 minutes before the day ends: only its operations chief is alerted, at the last minute


@pytest.mark.parametrize("down_for", [1, 7, 30, 120, 600])
@pytest.mark.parametrize("crash_minute", [0, 9, 10, 40, 300, 1205, 1310])
def test_after_a_restart_exactly_the_missing_steps_are_recorded(crash_minute: int, down_for: int) -> None:
    records: dict[str, list[tuple]] = {mid: [] for mid in DAY_ALERTS}
    for minute in range(crash_minute + 1):
        poll(records, minute)
    before = {mid: list(r) for mid, r in records.items()}
    restart = min(crash_minute + down_for, DAY_MIN)
    poll(records, restart)
    for mid, (sent, ack) in DAY_ALERTS.items():
        missing = [s for s in expected_day_steps(sent, ack, restart) if s not in before[mid]]
        assert records[mid][len(before[mid]) :] == missing, mid
    for minute in range(restart, DAY_MIN + 1):
        poll(records, minute)
    for mid, (sent, ack) in DAY_ALERTS.items():
        assert records[mid] == expected_day_steps(sent, ack, DAY_MIN), mid


@pytest.mark.parametrize(("recorded", "expected"), [(0, 3), (1, 2), (3, 0), (5, 0)])
def test_due_steps_skips_what_is_recorded(recorded: int, expected: int) -> None:
    assert len(due_steps(T0, ACK_S, LADDER, None, at(DAY_MIN), recorded=recorded)) == expected


@pytest.mark.parametrize(
    ("call", "named"),
    [
        (lambda: due_steps(T0, ACK_S, LADDER, None, at(5), recorded=-1), "recorded"),
        (lambda: escalation_state(T0, ACK_S, (), None, at(5)), "ladder"),
        (lambda: escalation_state(T0, 0, LADDER, None, at(5)), "deadline"),
        (lambda: escalation_state(T0, ACK_S, (Rung("a", 60), Rung("b", 0)), None, at(5)), "rung 1 (b)"),
        (lambda: escalation_state(T0, ACK_S, LADDER, None, at(-1)), "before the message was sent"),
        (lambda: escalation_state(T0, ACK_S, LADDER, at(-1), at(5)), "before the message was sent"),
        (lambda: escalation_state(datetime(2025, 4, 9, 6, 0), ACK_S, LADDER, None, at(5)), "timezone"),  # noqa: DTZ001
    ],
)
def test_escalation_refuses_bad_input(call, named: str) -> None:
    with pytest.raises(InvalidInput) as e:
        call()
    assert named in str(e.value)


# --- line checks ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("last", "now", "due"),
    [(None, 0, True), (0, 59, False), (0, 59.99, False), (0, 60, True), (0, 300, True)],
)
def test_line_check_due(last: float | None, now: float, due: bool) -> None:
    assert line_check_due(None if last is None else at(last), 3600, at(now)) is due


@pytest.mark.parametrize(
    ("answered", "now", "state"),
    [
        (None, 0, "pending"),
        (None, 9.99, "pending"),
        (None, 10, "down"),
        (None, 600, "down"),
        (2, 1, "pending"),  # the answer is not known yet
        (2, 2, "up"),
        (2, 30, "up"),
        (30, 20, "down"),
        (30, 30, "up"),  # a late answer restores the line
    ],
)
def test_line_state(answered: float | None, now: float, state: str) -> None:
    assert line_state(at(0), None if answered is None else at(answered), 600, at(now)) == LineState(state)


@pytest.mark.parametrize(
    ("heard", "now", "state"),
    [
        (3, 9, "pending"),  # heard from, but the deadline is still ahead
        (3, 10, "late"),  # unanswered past the deadline, but the party acted after the check was sent
        (12, 11, "down"),  # what it did at 12 is not known yet at 11
        (12, 12, "late"),
        (-1, 20, "down"),  # heard from before the check only: silence since
        (None, 20, "down"),
    ],
)
def test_an_unanswered_check_is_late_while_the_party_is_heard_from_and_down_in_silence(
    heard: float | None, now: float, state: str
) -> None:
    got = line_state(at(0), None, 600, at(now), heard_at=None if heard is None else at(heard))
    assert got == LineState(state)


@pytest.mark.parametrize(
    ("previous", "check", "status", "event"),
    [
        ("up", "up", "up", None),
        ("up", "pending", "pending", None),
        ("up", "down", "down", "line_down"),
        ("pending", "up", "up", None),
        ("pending", "pending", "pending", None),
        ("pending", "late", "late", None),
        ("late", "down", "down", "line_down"),
        ("pending", "down", "down", "line_down"),
        ("down", "up", "up", "line_restored"),
        ("down", "pending", "down", None),
        ("down", "late", "down", None),
        ("down", "down", "down", None),
    ],
)
def test_line_transition(previous: str, check: str, status: str, event: str | None) -> None:
    assert line_transition(LineState(previous), LineState(check)) == (LineState(status), event)


def test_a_day_of_line_checks_goes_down_and_comes_back() -> None:
    """Hourly checks, 10 minutes to answer; TR answers in 2 minutes except the 05:00 and 06:00 checks
    (never answered) and the 07:00 check (answered at 07:03)."""
    answer_after = {h: 2.0 for h in range(24)} | {5: None, 6: None, 7: 3.0}
    checks: list[tuple[float, float | None]] = []  # (sent minute, answered minute)
    status = LineState.UP
    events: list[tuple[str, float]] = []
    for minute in range(DAY_MIN):
        last = checks[-1][0] if checks else None
        if line_check_due(None if last is None else at(last), 3600, at(minute)):
            delay = answer_after[minute // 60]
            checks.append((minute, None if delay is None else minute + delay))
        sent, answered = checks[-1]
        check = line_state(at(sent), None if answered is None else at(answered), 600, at(minute))
        status, event = line_transition(status, check)
        if event:
            events.append((event, minute))
    assert [c[0] for c in checks] == [60.0 * h for h in range(24)]
    assert events == [("line_down", 5 * 60 + 10), ("line_restored", 7 * 60 + 3)]
    assert status is LineState.UP
