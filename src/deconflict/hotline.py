"""The hotline's pure core: message types, agreed wording, the escalation ladder and line checks.

No storage and no clock: every function that depends on time takes ``now`` (an aware
UTC datetime), and everything it answers comes from stored instants (when a message
was sent, when it was acknowledged), so a service restarted at any moment computes
the same deadlines and the same missing escalation steps as one that never stopped.

Escalation schedule (seconds from ``sent_at``), for a message that needs an
acknowledgement, with rules ``ack_deadline_s`` and ``ladder = (r0, r1, ..., rn)``:

- rung 0 (``r0``, the counterpart's duty officer) is alerted at ``sent_at`` with the
  message itself; it has ``ack_deadline_s`` to acknowledge (the message's deadline;
  ``r0.after_s`` is not used, the rules' acknowledgement deadline governs);
- rung k >= 1 is alerted when rung k-1's time runs out:
  ``alerted_at(k) = sent_at + ack_deadline_s + r1.after_s + ... + r(k-1).after_s``,
  and has ``rk.after_s`` to acknowledge: ``deadline(k) = alerted_at(k) + rk.after_s``;
- after the last rung's deadline the ladder is *exhausted*: nobody is left to alert.

Deadlines are exclusive: an acknowledgement counts for a rung only if it arrives
strictly before that rung's deadline; at the deadline instant the next rung is due.
An acknowledgement stops the climb. An acknowledgement later than ``now`` is ignored
(not yet known), so a replay at any instant sees what was known then.

With the Syria rules (acknowledge within 10 min; duty officer 10, operations chief 15,
national security adviser 30, facilitator 60 min) the operations chief is alerted at
+10 min, the national security adviser at +25, the facilitator at +55, and the ladder
is exhausted at +115 min.
"""

from __future__ import annotations

import math
import re
import string
import tomllib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta  # noqa: F401 (UTC: used by the doctests)
from enum import StrEnum
from functools import cache
from pathlib import Path
from types import MappingProxyType

from deconflict.clock import ensure_utc, parse_utc
from deconflict.errors import InvalidInput
from deconflict.model import Rung


class MessageType(StrEnum):
    NOTICE = "notice"
    QUERY = "query"
    ALERT = "alert"
    RESPONSE = "response"
    INCIDENT = "incident"
    LINE_CHECK = "line_check"
    FREE_TEXT = "free_text"


NEEDS_ACK: frozenset[MessageType] = frozenset(
    {MessageType.ALERT, MessageType.QUERY, MessageType.INCIDENT, MessageType.LINE_CHECK}
)
"""Message types the reader must acknowledge before the deadline; the others need no answer."""

LANGUAGES: tuple[str, ...] = ("en", "tr", "he", "ar", "ru")
"""Languages every standard message has agreed wording in."""

RTL_LANGUAGES: frozenset[str] = frozenset({"he", "ar"})
"""Languages written right to left."""

TEMPLATES_PATH = Path(__file__).parent / "data" / "hotline_templates.toml"
"""The bundled agreed wording."""

_FSI = "\u2068"  # FIRST STRONG ISOLATE
_PDI = "\u2069"  # POP DIRECTIONAL ISOLATE


def needs_ack(message_type: MessageType | str) -> bool:
    """Whether a message of this type must be acknowledged.

    >>> needs_ack("alert"), needs_ack("response")
    (True, False)
    """
    return MessageType(message_type) in NEEDS_ACK


def is_rtl(lang: str) -> bool:
    """Whether a language is written right to left (Hebrew and Arabic).

    >>> is_rtl("he"), is_rtl("ar"), is_rtl("tr")
    (True, True, False)
    """
    return lang in RTL_LANGUAGES


# ---------------------------------------------------------------------------
# Agreed wording


@dataclass(frozen=True)
class Template:
    """A standard message: its type, whether it needs an acknowledgement, its parameters and wording."""

    id: str
    type: MessageType
    needs_ack: bool
    params: tuple[str, ...]
    text: Mapping[str, str] = field(hash=False)
    """Wording by language code, with ``{param}`` placeholders."""


@dataclass(frozen=True)
class Rendered:
    """A message as one reader sees it.

    ``text`` is in logical order; ``display`` is the same text with every parameter
    value wrapped in Unicode directional isolates (U+2068 … U+2069) when the language
    is right to left, so that dates, refs and numbers inside Hebrew or Arabic keep
    their left-to-right order on screen (``2025-04-09`` never shows as ``09-04-2025``).
    Free text is the sender's own words, kept as written with its language and never
    machine-translated; readers are shown that it is free text.
    """

    text: str
    lang: str
    rtl: bool
    template: str | None
    params: Mapping[str, str] = field(hash=False)
    """Parameter values as formatted into the text (the same strings in every language)."""
    type: MessageType
    needs_ack: bool
    free_text: bool = False
    display: str = ""


def _placeholders(where: str, wording: str) -> set[str]:
    """The simple ``{name}`` placeholders of a wording; anything fancier is refused."""
    names: set[str] = set()
    try:
        parsed = list(string.Formatter().parse(wording))
    except ValueError as e:
        raise InvalidInput(f"{where}: malformed braces ({e})", field="templates") from None
    for _, name, spec, conversion in parsed:
        if name is None:
            continue
        if not name.isidentifier() or spec or conversion:
            raise InvalidInput(
                f"{where}: placeholder {{{name}{'!' + conversion if conversion else ''}"
                f"{':' + spec if spec else ''}}} is not a plain {{name}}",
                field="templates",
            )
        names.add(name)
    return names


def _template(template_id: str, raw: object) -> Template:
    where = f"template {template_id}"
    if not isinstance(raw, dict):
        raise InvalidInput(f"{where}: expected a table with type, needs_ack, params and text", field="templates")
    unknown = set(raw) - {"type", "needs_ack", "params", "text"}
    if unknown:
        raise InvalidInput(f"{where}: unknown keys {', '.join(sorted(unknown))}", field="templates")
    try:
        mtype = MessageType(raw.get("type"))
    except ValueError:
        raise InvalidInput(
            f"{where}: type {raw.get('type')!r} is not one of {', '.join(t.value for t in MessageType)}",
            field="templates",
        ) from None
    if mtype is MessageType.FREE_TEXT:
        raise InvalidInput(f"{where}: free text has no template", field="templates")
    ack = raw.get("needs_ack")
    if not isinstance(ack, bool):
        raise InvalidInput(f"{where}: needs_ack must be true or false", field="templates")
    if ack != (mtype in NEEDS_ACK):
        raise InvalidInput(
            f"{where}: needs_ack = {str(ack).lower()} disagrees with type {mtype.value} "
            f"(acknowledged types: {', '.join(sorted(NEEDS_ACK))})",
            field="templates",
        )
    params = raw.get("params")
    if not isinstance(params, list) or not all(isinstance(p, str) and p.isidentifier() for p in params):
        raise InvalidInput(f"{where}: params must be a list of names", field="templates")
    if len(set(params)) != len(params):
        raise InvalidInput(f"{where}: params lists a name twice", field="templates")
    text = raw.get("text")
    if not isinstance(text, dict):
        raise InvalidInput(f"{where}: text must be a table of wording by language", field="templates")
    extra_langs = set(text) - set(LANGUAGES)
    if extra_langs:
        raise InvalidInput(
            f"{where}: language {', '.join(sorted(extra_langs))} is not supported ({', '.join(LANGUAGES)})",
            field="templates",
        )
    declared = set(params)
    for lang in LANGUAGES:
        wording = text.get(lang)
        if not isinstance(wording, str) or not wording.strip():
            raise InvalidInput(f"{where}: no wording in language {lang}", field="templates")
        found = _placeholders(f"{where}, language {lang}", wording)
        if found != declared:
            problems = []
            if declared - found:
                problems.append(f"missing {', '.join('{' + p + '}' for p in sorted(declared - found))}")
            if found - declared:
                problems.append(f"undeclared {', '.join('{' + p + '}' for p in sorted(found - declared))}")
            raise InvalidInput(f"{where}, language {lang}: placeholders {'; '.join(problems)}", field="templates")
    return Template(
        id=template_id,
        type=mtype,
        needs_ack=ack,
        params=tuple(params),
        text=MappingProxyType({lang: text[lang] for lang in LANGUAGES}),
    )


def load_templates(path: Path | str | None = None) -> Mapping[str, Template]:
    """Read and check a templates file (the bundled one by default); raise InvalidInput naming what is wrong.

    Every template must have wording in all of ``LANGUAGES``, each with exactly the
    ``{placeholders}`` its ``params`` declare.

    >>> load_templates()["holding"].type
    <MessageType.RESPONSE: 'response'>
    """
    source = Path(path) if path is not None else TEMPLATES_PATH
    try:
        doc = tomllib.loads(source.read_text(encoding="utf-8"))
    except OSError as e:
        raise InvalidInput(f"templates {source}: cannot read ({e.strerror})", field="templates") from None
    except tomllib.TOMLDecodeError as e:
        raise InvalidInput(f"templates {source}: not valid TOML ({e})", field="templates") from None
    if not doc:
        raise InvalidInput(f"templates {source}: no templates", field="templates")
    return MappingProxyType({tid: _template(tid, raw) for tid, raw in doc.items()})


@cache
def bundled_templates() -> Mapping[str, Template]:
    """The bundled templates, read and checked once on first use."""
    return load_templates()


ParamValue = str | int | float | datetime


def format_time(value: datetime) -> str:
    """An instant as UTC ISO 8601 without the zone letter (the wording says "UTC"); seconds only when not zero.

    >>> format_time(datetime(2025, 4, 9, 8, 30, tzinfo=UTC))
    '2025-04-09T08:30'
    """
    t = ensure_utc(value, field="time")
    return t.strftime("%Y-%m-%dT%H:%M:%S" if t.second or t.microsecond else "%Y-%m-%dT%H:%M")


TIME_PARAMS = frozenset({"t1", "t2"})
_ZONED_TIME = re.compile(r"\d{4}-\d\d-\d\d[T ]\d\d:\d\d(:\d\d(\.\d+)?)?([zZ]|[+-]\d\d:?\d\d)")
"""Template parameters that are instants: given as text with a zone, they are worded like a time."""


def format_param(name: str, value: object) -> str:
    """A parameter value as text, identical in every language: Western digits, UTC ISO times.

    >>> format_param("floor", 1500.0), format_param("ceiling", 3000.25), format_param("minutes", 60)
    ('1500', '3000.25', '60')
    >>> format_param("t1", "2025-04-09T20:33:00Z"), format_param("t1", "2025-04-09T23:33:00+03:00")
    ('2025-04-09T20:33', '2025-04-09T20:33')
    >>> format_param("t1", "2025-04-09T20:33"), format_param("place", "T4 +5 km")  # stored form, not a time
    ('2025-04-09T20:33', 'T4 +5 km')
    """
    if isinstance(value, bool) or value is None:
        raise InvalidInput(f"parameter {name}: expected text, a number or a time, got {value!r}", field=name)
    if isinstance(value, datetime):
        return format_time(value)
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if not math.isfinite(value):
            raise InvalidInput(f"parameter {name}: {value} is not a number", field=name)
        return str(int(value)) if value.is_integer() else f"{value:.2f}".rstrip("0").rstrip(".")
    if isinstance(value, str):
        if not value.strip():
            raise InvalidInput(f"parameter {name}: empty", field=name)
        if name in TIME_PARAMS and _ZONED_TIME.fullmatch(value.strip()):
            # a time given as text with its zone (JSON has no time type): worded once, as UTC, like a time
            return format_time(parse_utc(value.strip(), field=name))
        return value
    raise InvalidInput(f"parameter {name}: expected text, a number or a time, got {type(value).__name__}", field=name)


RUNG_NAMES_PATH = Path(__file__).parent / "data" / "rung_names.toml"
"""The usual rung names of an escalation ladder in each member language."""


@cache
def _rung_names() -> Mapping[str, Mapping[str, str]]:
    return MappingProxyType(tomllib.loads(RUNG_NAMES_PATH.read_text(encoding="utf-8")))


@cache
def _resolution_names() -> Mapping[str, Mapping[str, str]]:
    """How a conflict was resolved (a resolution value) in each member language."""
    path = Path(__file__).parent / "data" / "resolution_names.toml"
    return MappingProxyType(tomllib.loads(path.read_text(encoding="utf-8")))


def rung_name(name: str, lang: str) -> str:
    """A rung's name in the reader's language when the bundled list knows it, else as the rules give it.

    >>> rung_name("operations chief", "tr"), rung_name("chief of staff", "tr")
    ('harekât başkanı', 'chief of staff')
    """
    return _rung_names().get(name, {}).get(lang, name)


def _check_lang(lang: str) -> None:
    if lang not in LANGUAGES:
        raise InvalidInput(f"language {lang!r} is not supported; use one of {', '.join(LANGUAGES)}", field="lang")


def render(
    template_id: str,
    lang: str,
    params: Mapping[str, object],
    *,
    templates: Mapping[str, Template] | None = None,
) -> Rendered:
    """A standard message in one language; raise InvalidInput naming a missing or extra parameter.

    >>> r = render("holding", "tr", {"ref": "C7"})
    >>> r.text, r.rtl, r.needs_ack
    ('C7 anlaşıldı. Faaliyetimizi yeni bir bildirime kadar bekletiyoruz.', False, False)
    """
    table = bundled_templates() if templates is None else templates
    tpl = table.get(template_id)
    if tpl is None:
        raise InvalidInput(
            f"unknown message template {template_id!r}; known: {', '.join(sorted(table))}", field="template"
        )
    _check_lang(lang)
    missing = [p for p in tpl.params if p not in params]
    if missing:
        raise InvalidInput(
            f"template {template_id} needs parameter {', '.join(missing)} (it takes {', '.join(tpl.params)})",
            field=missing[0],
        )
    extra = sorted(set(params) - set(tpl.params))
    if extra:
        raise InvalidInput(
            f"template {template_id} takes no parameter {', '.join(extra)} (it takes {', '.join(tpl.params)})",
            field=extra[0],
        )
    values = {p: format_param(p, params[p]) for p in tpl.params}
    shown = dict(values)  # what the reader sees; ``values`` are stored as given, so any reader can re-word them
    if "rung" in shown:
        shown["rung"] = rung_name(shown["rung"], lang)
    if "how" in shown:
        shown["how"] = _resolution_names().get(shown["how"], {}).get(lang, shown["how"])
    wording = tpl.text[lang]
    rtl = is_rtl(lang)
    text = wording.format_map(shown)
    display = wording.format_map({k: f"{_FSI}{v}{_PDI}" for k, v in shown.items()}) if rtl else text
    return Rendered(
        text=text,
        lang=lang,
        rtl=rtl,
        template=template_id,
        params=MappingProxyType(values),
        type=tpl.type,
        needs_ack=tpl.needs_ack,
        display=display,
    )


def free_text(text: str, lang: str) -> Rendered:
    """A free-text message: kept exactly as written, in its own language, marked as free text.

    >>> m = free_text("שלום", "he")
    >>> m.free_text, m.rtl, m.template
    (True, True, None)
    """
    _check_lang(lang)
    if not isinstance(text, str) or not text.strip():
        raise InvalidInput("free text is empty", field="text")
    rtl = is_rtl(lang)
    return Rendered(
        text=text,
        lang=lang,
        rtl=rtl,
        template=None,
        params=MappingProxyType({}),
        type=MessageType.FREE_TEXT,
        needs_ack=False,
        free_text=True,
        display=f"{_FSI}{text}{_PDI}" if rtl else text,
    )


# ---------------------------------------------------------------------------
# Escalation ladder


@dataclass(frozen=True)
class RungWindow:
    """When one rung is alerted and until when (exclusive) it has to acknowledge."""

    rung: int
    name: str
    alerted_at: datetime
    deadline: datetime


@dataclass(frozen=True)
class EscalationStep:
    """A missed deadline: rung ``rung`` (1 or more) is to be alerted at ``due_at``."""

    rung: int
    name: str
    due_at: datetime


@dataclass(frozen=True)
class Escalation:
    """Where a message that needs an acknowledgement stands on the ladder at one instant."""

    rung: int
    """Index of the highest rung alerted so far (0: the message's own addressee)."""
    rung_name: str
    alerted_at: datetime
    """When the current rung was alerted."""
    deadline: datetime
    """When the current rung's time to acknowledge runs out (exclusive)."""
    acknowledged: bool
    exhausted: bool
    """True once the last rung's deadline passed unacknowledged: nobody is left to alert."""
    steps: tuple[EscalationStep, ...]
    """Every escalation step due by now, in order (rungs 1 to ``rung``)."""
    next_change_at: datetime | None
    """The next instant this state changes without an acknowledgement (a time to wake up), or None."""
    exhausted_at: datetime
    """When the ladder is exhausted if nobody acknowledges."""


def ladder_schedule(sent_at: datetime, ack_deadline_s: float, ladder: Sequence[Rung]) -> tuple[RungWindow, ...]:
    """Every rung's alert time and deadline for a message sent at ``sent_at`` (see the module docstring).

    >>> from deconflict.model import Rung
    >>> t0 = datetime(2025, 4, 9, 8, 0, tzinfo=UTC)
    >>> s = ladder_schedule(t0, 600, (Rung("duty officer", 600), Rung("operations chief", 900)))
    >>> [(w.name, w.alerted_at.strftime("%H:%M"), w.deadline.strftime("%H:%M")) for w in s]
    [('duty officer', '08:00', '08:10'), ('operations chief', '08:10', '08:25')]
    """
    start = ensure_utc(sent_at, field="sent_at")
    if not ladder:
        raise InvalidInput("escalation ladder is empty: list at least one rung", field="ladder")
    if not (math.isfinite(ack_deadline_s) and ack_deadline_s > 0):
        raise InvalidInput(f"acknowledgement deadline must be positive seconds, got {ack_deadline_s}", field="ladder")
    windows = []
    alerted = start
    for k, rung in enumerate(ladder):
        window_s = ack_deadline_s if k == 0 else rung.after_s
        if not (math.isfinite(window_s) and window_s > 0):
            raise InvalidInput(
                f"ladder rung {k} ({rung.name}): time to answer must be positive seconds", field="ladder"
            )
        deadline = alerted + timedelta(seconds=window_s)
        windows.append(RungWindow(rung=k, name=rung.name, alerted_at=alerted, deadline=deadline))
        alerted = deadline
    return tuple(windows)


def escalation_state(
    sent_at: datetime,
    ack_deadline_s: float,
    ladder: Sequence[Rung],
    acknowledged_at: datetime | None,
    now: datetime,
) -> Escalation:
    """Where a message stands on the ladder at ``now``; an acknowledgement (known by ``now``) stops the climb.

    >>> from deconflict.model import Rung
    >>> t0 = datetime(2025, 4, 9, 8, 0, tzinfo=UTC)
    >>> ladder = (Rung("duty officer", 600), Rung("operations chief", 900))
    >>> e = escalation_state(t0, 600, ladder, None, t0 + timedelta(minutes=12))
    >>> e.rung_name, e.deadline.strftime("%H:%M"), e.exhausted
    ('operations chief', '08:25', False)
    """
    windows = ladder_schedule(sent_at, ack_deadline_s, ladder)
    start = windows[0].alerted_at
    at = ensure_utc(now, field="now")
    if at < start:
        raise InvalidInput("now is before the message was sent", field="now")
    ack = None if acknowledged_at is None else ensure_utc(acknowledged_at, field="acknowledged_at")
    if ack is not None and ack < start:
        raise InvalidInput("acknowledgement is before the message was sent", field="acknowledged_at")
    if ack is not None and ack > at:
        ack = None  # not known yet at this instant
    horizon = at if ack is None else ack
    current = max(w.rung for w in windows if w.alerted_at <= horizon)
    win = windows[current]
    exhausted = ack is None and at >= windows[-1].deadline
    return Escalation(
        rung=current,
        rung_name=win.name,
        alerted_at=win.alerted_at,
        deadline=win.deadline,
        acknowledged=ack is not None,
        exhausted=exhausted,
        steps=tuple(EscalationStep(rung=w.rung, name=w.name, due_at=w.alerted_at) for w in windows[1 : current + 1]),
        next_change_at=None if ack is not None or exhausted else win.deadline,
        exhausted_at=windows[-1].deadline,
    )


def due_steps(
    sent_at: datetime,
    ack_deadline_s: float,
    ladder: Sequence[Rung],
    acknowledged_at: datetime | None,
    now: datetime,
    recorded: int,
) -> list[EscalationStep]:
    """The escalation steps due by ``now`` that are not yet recorded, oldest first.

    ``recorded`` is how many steps of this message are already stored (steps are always
    recorded in order, rung 1 first). Calling again with the new count returns nothing,
    so a caller woken late, twice, or after a restart records each step exactly once.

    >>> from deconflict.model import Rung
    >>> t0 = datetime(2025, 4, 9, 8, 0, tzinfo=UTC)
    >>> ladder = (Rung("duty officer", 600), Rung("operations chief", 900), Rung("facilitator", 3600))
    >>> [s.name for s in due_steps(t0, 600, ladder, None, t0 + timedelta(hours=1), recorded=1)]
    ['facilitator']
    """
    if isinstance(recorded, bool) or not isinstance(recorded, int) or recorded < 0:
        raise InvalidInput(f"recorded steps must be a count of 0 or more, got {recorded!r}", field="recorded")
    return list(escalation_state(sent_at, ack_deadline_s, ladder, acknowledged_at, now).steps[recorded:])


# ---------------------------------------------------------------------------
# Line checks


class LineState(StrEnum):
    UP = "up"
    """The last line check was answered (or none was sent yet)."""
    PENDING = "pending"
    """A line check is out and its deadline has not passed."""
    LATE = "late"
    """A line check went unanswered past its deadline, but the party has acted on the record since it was
    sent: its people are there, the check is late, and it climbs the ladder like any late answer."""
    DOWN = "down"
    """A line check went unanswered past its deadline and nothing was heard from the party since it was sent."""


def next_line_check_at(last_check_at: datetime | None, interval_s: float, now: datetime) -> datetime:
    """When the next line check is due: ``interval_s`` after the last one, or ``now`` if there was none."""
    if not (math.isfinite(interval_s) and interval_s > 0):
        raise InvalidInput(f"line check interval must be positive seconds, got {interval_s}", field="interval_s")
    at = ensure_utc(now, field="now")
    if last_check_at is None:
        return at
    return ensure_utc(last_check_at, field="last_check_at") + timedelta(seconds=interval_s)


def line_check_due(last_check_at: datetime | None, interval_s: float, now: datetime) -> bool:
    """Whether a party is due a line check at ``now`` (one check, however many intervals were missed).

    >>> t0 = datetime(2025, 4, 9, 8, 0, tzinfo=UTC)
    >>> line_check_due(t0, 3600, t0 + timedelta(minutes=59)), line_check_due(t0, 3600, t0 + timedelta(hours=1))
    (False, True)
    """
    return ensure_utc(now, field="now") >= next_line_check_at(last_check_at, interval_s, now)


def line_state(
    sent_at: datetime,
    answered_at: datetime | None,
    deadline_s: float,
    now: datetime,
    *,
    heard_at: datetime | None = None,
) -> LineState:
    """The state of one line check at ``now``: up once answered; pending until its deadline; then
    late if the party was heard from since the check was sent (``heard_at``: its latest entry on the
    record), down if not.

    An answer (or a sign of life) later than ``now`` is not yet known. A late answer brings the line up.

    >>> t0 = datetime(2025, 4, 9, 8, 0, tzinfo=UTC)
    >>> [line_state(t0, None, 600, t0 + timedelta(minutes=m)).value for m in (9, 10)]
    ['pending', 'down']
    >>> line_state(t0, None, 600, t0 + timedelta(minutes=12), heard_at=t0 + timedelta(minutes=3)).value
    'late'
    """
    sent = ensure_utc(sent_at, field="sent_at")
    at = ensure_utc(now, field="now")
    if not (math.isfinite(deadline_s) and deadline_s > 0):
        raise InvalidInput(f"line check deadline must be positive seconds, got {deadline_s}", field="deadline_s")
    if at < sent:
        raise InvalidInput("now is before the line check was sent", field="now")
    if answered_at is not None:
        answered = ensure_utc(answered_at, field="answered_at")
        if answered < sent:
            raise InvalidInput("line check answered before it was sent", field="answered_at")
        if answered <= at:
            return LineState.UP
    if at < sent + timedelta(seconds=deadline_s):
        return LineState.PENDING
    heard = ensure_utc(heard_at, field="heard_at") if heard_at is not None else None
    return LineState.LATE if heard is not None and sent <= heard <= at else LineState.DOWN


def line_transition(previous: LineState, check: LineState) -> tuple[LineState, str | None]:
    """A party's line status after its latest check, and the template to post when it changed.

    A line that is down stays down while a new check awaits an answer; it comes back
    ("line_restored") only with an answer. Going down posts "line_down".

    >>> line_transition(LineState.PENDING, LineState.DOWN)
    (<LineState.DOWN: 'down'>, 'line_down')
    >>> line_transition(LineState.DOWN, LineState.PENDING)
    (<LineState.DOWN: 'down'>, None)
    """
    if check is LineState.DOWN:
        return LineState.DOWN, None if previous is LineState.DOWN else "line_down"
    if check is LineState.UP:
        return LineState.UP, "line_restored" if previous is LineState.DOWN else None
    return (LineState.DOWN, None) if previous is LineState.DOWN else (check, None)
