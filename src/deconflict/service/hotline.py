"""The hotline: members send standard phrases (agreed wording, worded in each reader's language) or free
text, acknowledge what is addressed to them, and read the channel as their role allows. A response phrase
naming a conflict or an alert that awaits the sender's party settles it as an acknowledgement would.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select

from deconflict import hotline as phrases
from deconflict.clock import iso, parse_utc
from deconflict.disclosure import message_view, sees_conflict, sees_message
from deconflict.errors import DeconflictError, Forbidden, InvalidInput, InvalidState, NotFound
from deconflict.formats.docs import identifier
from deconflict.hotline.messages import ACK_PHRASES
from deconflict.model import Member, Role
from deconflict.record.chain import EntryType
from deconflict.service import conflicts, queries, zones
from deconflict.service.context import IMMEDIATE, Context, SignatureMode, each_alone, retrying
from deconflict.service.picture import Picture, answering, any_member
from deconflict.service.posting import post, post_standard
from deconflict.service.rules import RecordRefused
from deconflict.service.writer import RecordWriter
from deconflict.store.schema import ConflictRow, MessageRow

__all__ = [
    "ACK_PHRASES",
    "MEMBER_PHRASES",
    "Answers",
    "Outgoing",
    "acknowledge_message",
    "check_phrase_params",
    "message",
    "messages",
    "send_message",
    "send_messages",
]

QUERY_ACTIVITY = "query_activity"
"""The phrase that asks a party about its activity ("Request details of your activity {ref} …")."""

MEMBER_PHRASES: dict[Role, frozenset[str]] = {
    Role.PARTY: frozenset(
        {
            "acknowledged",
            "holding",
            "acknowledged_amending",
            "proceeding_as_notified",
            QUERY_ACTIVITY,
            "incident_at",
            "activity_notified",
            "line_check_reply",
        }
    ),
    Role.FACILITATOR: frozenset({"acknowledged", QUERY_ACTIVITY, "incident_at", "line_check_reply"}),
    Role.OBSERVER: frozenset(),
}
"""The standard phrases each role may send: a facilitator has no activity to hold, amend or proceed with."""


@dataclass(frozen=True)
class Outgoing:
    """One member's message as :func:`send_message` takes it (its keyword arguments but the mechanism and mode)."""

    actor: str
    template: str | None = None
    params: dict[str, Any] | None = None
    text: str | None = None
    lang: str | None = None
    to: list[str] | None = None
    about: dict[str, str] | None = None


@dataclass(frozen=True)
class _Draft:
    """A message checked against the picture, ready to record."""

    member: Member
    rendered: phrases.Rendered
    doc: dict[str, Any]
    recipients: list[str]
    about: dict[str, str] | None


@retrying
def send_message(
    ctx: Context,
    *,
    mechanism_id: str,
    actor: str,
    template: str | None = None,
    params: dict[str, Any] | None = None,
    text: str | None = None,
    lang: str | None = None,
    to: list[str] | None = None,
    about: dict[str, str] | None = None,
    mode: SignatureMode = IMMEDIATE,
) -> dict[str, Any]:
    """Send a standard message (template + params, agreed wording) or free text on the channel; returns
    the message as the sender reads it.

    Raises:
        Forbidden: an observer, or a phrase the sender's role does not send.
        InvalidInput: no recipient, both or neither of template and text, text too long, a bad ``about``,
            a phrase asking for an acknowledgement sent to an observer.
        NotFound: ``about`` names nothing.
    """
    with ctx.exclusive(mechanism_id) as picture:
        draft = _draft(ctx, picture, Outgoing(actor, template, params, text, lang, to, about))
        restored = _lines_restored_by(ctx, mechanism_id, draft.doc.get("settles"))
        now = mode.now(ctx.clock)
        with RecordWriter(ctx, mechanism_id, picture=picture, mode=mode) as w:
            payload = _post(w, picture, draft, now)
            seq = w.last_seq
            for check in restored:  # a phrase answering a line check that was reported down: as an ack does
                others = sorted(answering(picture) - {draft.member.party})
                restored_params = {"party": draft.member.party, "t1": now}
                post_standard(w, picture, "line_restored", restored_params, others, (queries.ABOUT_MESSAGE, check), now)
        return message_view(payload, seq=seq, sender=actor, sent_at=now, reader=draft.member)


Answers = list[tuple[int, dict[str, Any] | Exception]]
"""Answers to some of :func:`send_messages`' messages: (the message's place in the batch, its answer)."""


def send_messages(ctx: Context, *, mechanism_id: str, messages: Sequence[Outgoing]) -> Iterator[Answers]:
    """Several members' messages, each signed at once by a key the service holds, with the answer
    :func:`send_message` gives for each: the message as its sender reads it, or the error it raises. The
    answers come as they are on the disk: first those of the messages recorded together, then the others.

    The messages that settle nothing are checked and recorded together, in order, in one transaction (one
    pass through the record's gate, one commit, one wait for the disk): a busy hotline's messages are
    independent of each other (a message changes nothing another is checked against). A phrase that
    settles something, or whose ``ref`` may name a message sent in the same batch, is sent on its own
    afterwards, as :func:`send_message` would, so that it is checked against what the batch recorded (those
    share one wait for the disk). A message the service may not sign (its sender's party signs its own
    entries) is answered with that refusal before anything is written; one whose entry the record's rules
    refuse otherwise is left out with its sender's party's other messages, the batch is written again without
    them, and they are sent on their own. An error of the store (the database gone) is raised for the
    messages not yet answered."""
    results = _send_together(ctx, mechanism_id=mechanism_id, messages=messages)
    done: Answers = [(i, found) for i, found in enumerate(results) if found is not None]
    if done:
        yield done
    alone = [i for i, found in enumerate(results) if found is None]
    if alone:
        yield each_alone(ctx, alone, lambda i: send_message(ctx, mechanism_id=mechanism_id, **vars(messages[i])))


@retrying
def _send_together(
    ctx: Context, *, mechanism_id: str, messages: Sequence[Outgoing]
) -> list[dict[str, Any] | Exception | None]:
    """:func:`send_messages`' one transaction: the answer for each message, None for one to send on its own."""
    results: list[dict[str, Any] | Exception | None] = [None] * len(messages)
    with ctx.exclusive(mechanism_id) as picture:
        drafts: list[tuple[int, _Draft]] = []
        for i, out in enumerate(messages):
            try:
                draft = _draft(ctx, picture, out)
            except Exception as e:  # noqa: BLE001 - this message's own answer, as it would be alone
                results[i] = e
                continue
            if not draft.doc.get("settles") and not _may_name_unseen(out, picture, len(messages)):
                drafts.append((i, draft))
        while drafts:
            sent: list[tuple[int, _Draft, dict[str, Any], int, datetime]] = []
            posting: int | None = None
            try:
                with RecordWriter(ctx, mechanism_id, picture=picture, gather=True) as w:
                    why = {a: w.refusal(a) for a in {d.member.id for _, d in drafts}}
                    refused = {a: no for a, no in why.items() if no is not None}
                    if refused:  # the service may not sign for these senders: answered as alone, none written
                        for i, draft in drafts:
                            if draft.member.id in refused:
                                results[i] = refused[draft.member.id]
                        drafts = [(i, d) for i, d in drafts if d.member.id not in refused]
                    for at, (i, draft) in enumerate(drafts):
                        posting, now = at, ctx.clock()
                        sent.append((i, draft, _post(w, picture, draft, now), w.last_seq, now))
                        posting = None
            except (DeconflictError, RecordRefused):  # an entry refused: nothing was kept
                if posting is None:
                    return results  # not one message's entry: each is sent on its own
                # that party's messages go on their own (a party that signs its own entries has each refused:
                # one attempt a batch, not one a message); the batch again without them
                party = drafts[posting][1].member.party
                drafts = [(i, d) for i, d in drafts if d.member.party != party]
                continue
            for i, draft, payload, seq, now in sent:
                sender = messages[i].actor
                results[i] = message_view(payload, seq=seq, sender=sender, sent_at=now, reader=draft.member)
            break
    return results


def _may_name_unseen(out: Outgoing, picture: Picture, batch: int) -> bool:
    """Whether a response phrase's ``ref`` may name a message sent earlier in the same batch of ``batch``
    messages (which it might settle once that is recorded): one beyond those the picture counts."""
    ref = (out.params or {}).get("ref")
    if out.template not in ACK_PHRASES or not isinstance(ref, str) or not ref.startswith("M"):
        return False
    number = ref[1:]
    return _is_number(number) and picture.message_count < int(number) <= picture.message_count + batch


MOST_DIGITS = 18
"""The longest number a conflict's or message's id carries (a longer ``ref`` names nothing: ``int`` refuses
numbers of over 4,300 digits, and no record holds 10^18 messages)."""


def _is_number(text: str) -> bool:
    """Digits 0-9 only, at most :data:`MOST_DIGITS` (``str.isdigit`` also takes ``²`` and other digits
    ``int`` refuses)."""
    return text.isascii() and text.isdigit() and len(text) <= MOST_DIGITS


def _draft(ctx: Context, picture: Picture, out: Outgoing) -> _Draft:
    """A member's message checked against the picture and worded (see :func:`send_message` for what it raises)."""
    actor, template, params, text, lang, to, about = (
        out.actor,
        out.template,
        out.params,
        out.text,
        out.lang,
        out.to,
        out.about,
    )
    member = any_member(picture, actor)
    if member.role is Role.OBSERVER:
        raise Forbidden(f"member {actor!r} is an observer and reads the hotline without writing to it")
    everyone = {m.party for m in picture.mechanism.members}
    if to is not None and not to:
        raise InvalidInput(
            "to: an empty list addresses nobody; name the parties, or leave to out for every party", field="to"
        )
    recipients = sorted(set(to) if to is not None else answering(picture) - {member.party})
    unknown = [p for p in recipients if p not in everyone]
    if unknown or not recipients:
        named = ", ".join(repr(p) if p.strip() else "an empty name" for p in unknown) or "nobody"
        raise InvalidInput(
            f"to: {named} is not a member of this mechanism ({', '.join(sorted(everyone))} are)", field="to"
        )
    if template is not None:
        if text is not None:
            raise InvalidInput("text: give either a template with params or free text, not both", field="text")
        allowed = MEMBER_PHRASES[member.role]
        if template not in allowed and template in phrases.bundled_templates():
            role = member.role.value
            raise Forbidden(
                f"template: {template!r} is not a phrase a {role} sends (alerts, line checks and "
                f"escalations come from the service); a {role} may send {', '.join(sorted(allowed))}"
            )
        _check_member_params(ctx, picture, template, params or {}, member)
        rendered = phrases.render(template, member.language, params or {})
        observers = sorted(p for p in recipients if p in _observers(picture))
        if rendered.needs_ack and observers:  # an observer never answers: the request would climb for ever
            raise InvalidInput(
                f"to: {', '.join(observers)} observes and never answers; a {template} asks for an "
                "acknowledgement, so send it to parties or the facilitator",
                field="to",
            )
        doc: dict[str, Any] = {
            "template": template,
            "params": dict(rendered.params),
            "lang": member.language,
            "from_party": member.party,
        }
        settles = _settled_by_phrase(ctx, picture, template, doc["params"], member.party)
        if settles:
            doc["settles"] = settles
        refers = settles or _named(picture, doc["params"].get("ref"))
        if refers and to is None:  # by default only to those who may see the conflict or message it is about
            recipients = _who_may_see(ctx, picture, refers, recipients)
            if not recipients:
                raise InvalidInput(
                    f"to: nobody else may see {doc['params'].get('ref')}; acknowledge it (deconflict ack) or "
                    "name whom to tell",
                    field="to",
                )
        if template == QUERY_ACTIVITY:
            if to is None:  # asked of the party whose activity it is (the facilitator reads it, not held to answer)
                ref = str((params or {})["ref"])
                recipients = [queries.visible_activity(ctx, picture.mechanism.id, ref, member).party]
            _check_asked_of_the_owner(ctx, picture, params or {}, recipients, member)
    else:
        if not isinstance(text, str) or not text.strip():
            raise InvalidInput("text: give a template, or free text to send", field="text")
        if len(text) > 4000:
            raise InvalidInput("text: longer than 4000 characters", field="text")
        rendered = phrases.free_text(text.strip(), lang or member.language)
        doc = {
            "template": None,
            "params": {},
            "lang": rendered.lang,
            "text": rendered.text,
            "from_party": member.party,
        }
    if about is not None:
        _check_about(ctx, picture, about, member)
    return _Draft(member, rendered, doc, recipients, about)


def _post(w: RecordWriter, picture: Picture, draft: _Draft, now: datetime) -> dict[str, Any]:
    """Record a drafted message; returns its payload."""
    return post(
        w,
        picture,
        sender=draft.member.id,
        rendered=draft.rendered,
        doc=draft.doc,
        to=draft.recipients,
        about=draft.about,
        now=now,
    )


def _lines_restored_by(ctx: Context, mechanism_id: str, settles: dict[str, list[str]] | None) -> list[str]:
    """The line checks, among the messages a phrase settles, whose line was reported down."""
    if not settles:
        return []
    with ctx.store.read() as s:
        return [
            mid
            for mid in settles.get("messages", ())
            if (row := s.get(MessageRow, (mechanism_id, mid))) is not None
            and row.type == phrases.MessageType.LINE_CHECK
            and queries.line_down_posted(s, mechanism_id, mid)
        ]


@retrying
def acknowledge_message(
    ctx: Context, *, mechanism_id: str, actor: str, message_id: str, mode: SignatureMode = IMMEDIATE
) -> dict[str, Any]:
    """A recipient acknowledges a message; a late answer to a line check restores the line. An alert is
    settled with its conflict, in one entry. Returns the message as the actor reads it.

    Raises:
        NotFound: no such message.
        Forbidden: an observer (it never writes), or not addressed to the actor's party.
        InvalidState: needs no acknowledgement, already acknowledged by the party, or closed.
    """
    with ctx.exclusive(mechanism_id) as picture:
        member = any_member(picture, actor)
        if member.role is Role.OBSERVER:
            raise Forbidden(f"member {actor!r} is an observer and reads the hotline without writing to it")
        with ctx.store.read() as s:
            row = queries.readable_message(s, mechanism_id, message_id, member)
            if row is None:  # hidden: answered as absent
                raise _message_not_found(message_id)
            if member.party not in row.recipients:
                raise Forbidden(f"message {message_id!r} is not addressed to {member.party}")
            if not row.needs_ack:
                raise InvalidState(f"message {message_id!r} does not ask for an acknowledgement")
            if member.party in row.acknowledged:
                raise InvalidState(f"message {message_id!r} was already acknowledged by {member.party}")
            if row.closed_at is not None:
                raise InvalidState(
                    f"message {message_id!r} was closed at {iso(row.closed_at)} ({row.closed_note}); "
                    "nothing is left to acknowledge"
                )
            was_down = row.type == phrases.MessageType.LINE_CHECK and queries.line_down_posted(
                s, mechanism_id, message_id
            )
            conflict = queries.alerted_conflict(s, mechanism_id, row, member.party)
        now = mode.now(ctx.clock)
        with RecordWriter(ctx, mechanism_id, picture=picture, mode=mode) as w:
            if conflict is not None:  # the alert and its conflict are settled together, in one entry
                conflicts.record_acknowledgement(w, actor, conflict, member.party, now)
            else:
                payload = {"id": message_id, "party": member.party}
                w.append(actor, EntryType.MESSAGE_ACKNOWLEDGED, payload, now)
            if was_down:
                others = sorted(answering(picture) - {member.party})
                params = {"party": member.party, "t1": now}
                post_standard(w, picture, "line_restored", params, others, (queries.ABOUT_MESSAGE, message_id), now)
        return message(ctx, mechanism_id, message_id, reader=member)


def _observers(picture: Picture) -> set[str]:
    """The codes of the mechanism's observers (they read the hotline and never write to it)."""
    return {m.party for m in picture.mechanism.members if m.role is Role.OBSERVER}


def _settled_by_phrase(
    ctx: Context, picture: Picture, template: str, params: dict[str, Any], party: str
) -> dict[str, list[str]] | None:
    """What a response phrase ("Received and acknowledged: C7") acknowledges for the sender's party.

    Its ``ref`` may name a conflict that awaits the party, or a message addressed to the party that
    still needs its acknowledgement (an alert: then its conflict too). Anything else settles nothing.
    """
    ref = params.get("ref")
    if template not in ACK_PHRASES or not isinstance(ref, str) or not _names_one_of(ref, picture):
        return None
    mechanism_id = picture.mechanism.id
    with ctx.store.read() as s:
        conflict = s.get(ConflictRow, (mechanism_id, ref))
        msg = s.get(MessageRow, (mechanism_id, ref))
        if conflict is None and msg is not None:
            if (
                party not in msg.recipients
                or not msg.needs_ack
                or party in msg.acknowledged
                or msg.closed_at is not None
            ):
                return None
            cid = queries.alerted_conflict(s, mechanism_id, msg, party)
            if cid is None:
                return {"conflicts": [], "messages": [msg.id]}
            conflict = s.get(ConflictRow, (mechanism_id, cid))
        if conflict is None or not queries.awaits(conflict, party):
            return None
        return {"conflicts": [conflict.id], "messages": queries.open_alerts(s, mechanism_id, conflict.id, party)}


def _named(picture: Picture, ref: Any) -> dict[str, list[str]] | None:
    """The conflict, message or activity a phrase's ``ref`` names (``conflicts``, ``messages`` as ``settles``
    is written, or ``activities``), or None."""
    if not isinstance(ref, str):
        return None
    if ref in picture.activity_ids:
        return {"activities": [ref]}
    if not _names_one_of(ref, picture):
        return None
    return {"conflicts": [ref], "messages": []} if ref.startswith("C") else {"conflicts": [], "messages": [ref]}


def _who_may_see(ctx: Context, picture: Picture, settles: dict[str, list[str]], parties: list[str]) -> list[str]:
    """Those of ``parties`` who may see the conflict or message a phrase is about (its ``ref``, and what it
    settles: its entry names them), so that one sent by default to every party does not tell a party of
    another's conflict, alert or intent ("Received C20. We are amending our activity") it may not see. A
    conflict's parties and the facilitator see it (and the alerts settled with it are named to them, ids
    only, as the acknowledgement of a conflict names them); a message alone (a line check) is seen by whom
    it went to; an activity by the parties the disclosure rule shows it to ("holding TR-0004" under
    conflicts-only: those it is in conflict with), and the facilitator, who reads the whole channel."""
    mechanism_id = picture.mechanism.id
    activities = settles.get("activities", ())
    with ctx.store.read() as s:
        conflicts = [s.get(ConflictRow, (mechanism_id, cid)) for cid in settles.get("conflicts", ())]
        alone = () if conflicts else settles.get("messages", ())
        messages = [s.get(MessageRow, (mechanism_id, mid)) for mid in alone]
    kept = []
    for party in parties:
        member = next((m for m in picture.mechanism.members if m.party == party), None)
        if member is None:
            continue
        if (
            all(c is None or sees_conflict(member, {"parties": c.parties}) for c in conflicts)
            and all(m is None or queries.sees(m, member) for m in messages)
            and all(_sees_activity(ctx, mechanism_id, aid, member) for aid in activities)
        ):
            kept.append(party)
    return kept


def _sees_activity(ctx: Context, mechanism_id: str, activity_id: str, member: Member) -> bool:
    if member.role is not Role.PARTY:  # the facilitator reads the whole channel, whatever it may see of notices
        return True
    try:
        queries.visible_activity(ctx, mechanism_id, activity_id, member)
    except NotFound:
        return False
    return True


def _names_one_of(ref: str, picture: Picture) -> bool:
    """Whether ``ref`` can name a conflict (C1…) or a message (M1…) of the mechanism: no store read otherwise."""
    counts = {"C": picture.conflict_count, "M": picture.message_count}
    number = ref[1:]
    return ref[:1] in counts and _is_number(number) and 1 <= int(number) <= counts[ref[:1]]


MOST_PARAM_CHARS = 200
"""The most characters a parameter of a member's phrase holds (a place, a reference, a time): a phrase is read
as the agreed wording, so a longer text is free text, shown as written and marked so."""
_UTC_TIME = re.compile(r"(\d{4}-\d\d-\d\dT)?\d\d:\d\d(:\d\d(\.\d+)?)?([zZ]|[+-]\d\d:?\d\d)?")
"""A phrase's time: ISO 8601 with its zone, or without one as UTC (what the page's form sends), or the time
of day alone (09:00)."""


def _check_member_params(ctx: Context, picture: Picture, template: str, params: dict[str, Any], member: Member) -> None:
    """A member's phrase says only what its parameters are for (:func:`check_phrase_params`). A query about an
    activity asks a party to answer by a deadline, so its reference must name an activity the sender may see
    (any other is answered as absent, hidden or missing alike: nothing is learnt by asking); the other phrases
    answer and ask nothing, and their reference need only be an id."""
    check_phrase_params(params, member.party)
    if "ref" in params and template == QUERY_ACTIVITY:  # it asks a party to answer, by a deadline: about something real
        ref = identifier(params["ref"], "ref")  # as the check above read it
        kind = _seen_kind(ctx, picture, ref, member)
        if kind is None:
            raise NotFound(f"params.ref: no activity {ref!r} that you may see", field="ref")
        if kind != "activity":
            raise InvalidInput(f"params.ref: a query asks about an activity, and {ref} is a {kind}", field="ref")


def check_phrase_params(params: dict[str, Any], party: str) -> None:
    """A member's phrase says only what its parameters are for, since its reader reads it as the agreed wording
    and not as free text: a reference is an id; a time is a time (t2 not before t1); the party reporting an
    incident is the sender's own (``party``); no parameter holds more than :data:`MOST_PARAM_CHARS` characters.
    (A 15,000-character reference carried another party's words inside an agreed phrase.) Held by the service
    as it takes a phrase, and by ``ledger verify`` on what it recorded (:mod:`deconflict.service.admission`).

    Raises:
        InvalidInput: naming the parameter (``params.ref``, ``params.t1`` …) and what is wrong with it.
    """
    for name, value in params.items():
        if isinstance(value, str) and len(value) > MOST_PARAM_CHARS:
            raise InvalidInput(
                f"params.{name}: {len(value):,} characters, more than the {MOST_PARAM_CHARS} a phrase's parameter "
                "may hold; send a longer text as free text",
                field=name,
            )
    for name in sorted(phrases.TIME_PARAMS & params.keys()):
        value = params[name]
        if isinstance(value, datetime):
            continue
        given = value.strip() if isinstance(value, str) else ""
        if _UTC_TIME.fullmatch(given):
            if given[4:5] == "-":  # a date too: a real one (2025-02-30 is not)
                _dated(given, name)
                continue
            hh, mm, ss = int(given[0:2]), int(given[3:5]), int(given[6:8]) if given[5:6] == ":" else 0
            if hh < 24 and mm < 60 and ss < 60:  # a real time of day (99:99 and 24:00 are not)
                continue
        raise InvalidInput(
            f"params.{name}: {value!r} is not a time; give it in UTC as 2025-04-09T08:00Z (ISO 8601) or 08:00",
            field=name,
        )
    if "party" in params and params["party"] != party:
        raise InvalidInput(
            f"params.party: a member reports for its own party ({party}), not {params['party']!r}",
            field="party",
        )
    first, last = _hhmm(params.get("t1")), _hhmm(params.get("t2"))
    if first and last and first > last:
        raise InvalidInput(
            f"params.t2: {params['t2']!r} is before t1 {params['t1']!r}; a window runs from t1 to t2", field="t2"
        )
    if "ref" in params:
        try:
            identifier(params["ref"], "ref")
        except InvalidInput as e:  # named as the other parameters are
            raise InvalidInput(f"params.{e.message}", field="ref") from None


def _hhmm(value: Any) -> str:
    """A phrase's time as comparable UTC text (``2025-04-09T08:00``), or "" for one that is not a whole date and
    time (a time of day alone is not ordered against another: it may be the next day's)."""
    if isinstance(value, datetime):
        return iso(value)[:16]
    text = value.strip() if isinstance(value, str) else ""
    if text[4:5] != "-":
        return ""
    return iso(_dated(text, "t"))[:16]


def _dated(text: str, field: str) -> datetime:
    """A phrase's date and time: ISO 8601 with its zone, or without one as UTC (what the page's form sends)."""
    zoned = text if text[-1] in "zZ" or "+" in text[10:] or "-" in text[10:] else f"{text}Z"
    return parse_utc(zoned, field=field)


def _seen_kind(ctx: Context, picture: Picture, ref: str, member: Member) -> str | None:
    """What ``ref`` names that ``member`` may see: "activity", "conflict" or "message"; None for anything
    else, hidden or missing alike."""
    mechanism_id = picture.mechanism.id
    try:
        queries.visible_activity(ctx, mechanism_id, ref, member)
        return "activity"
    except NotFound:
        pass
    try:
        queries.visible_conflict(ctx, mechanism_id, ref, member)
        return "conflict"
    except NotFound:
        pass
    with ctx.store.read() as s:
        return "message" if queries.readable_message(s, mechanism_id, ref, member) is not None else None


def _check_asked_of_the_owner(
    ctx: Context, picture: Picture, params: dict[str, Any], recipients: list[str], member: Member
) -> None:
    """A query about an activity goes to the party whose activity it is (asked of another party, the owner
    never hears it and the one asked is held to a deadline for another's notice). Checked only for an activity
    the sender may see: of any other, nothing is said (a message cannot find out another's notices)."""
    ref = params.get("ref")
    if not isinstance(ref, str):
        return
    try:
        activity = queries.visible_activity(ctx, picture.mechanism.id, ref, member)
    except NotFound:
        return
    if activity.party == member.party:
        raise InvalidInput(
            f"params.ref: {ref} is your own activity; a query asks another party about its activity", field="ref"
        )
    if activity.party not in recipients:
        raise InvalidInput(
            f"to: a query about activity {ref} asks {activity.party}, whose activity it is; "
            f"add {activity.party} to the addressees (it went to {', '.join(recipients)})",
            field="to",
        )


def _check_about(ctx: Context, picture: Picture, about: dict[str, str], member: Member) -> None:
    """What a message is about must exist and be visible to its sender: an activity, conflict or message the
    sender may not see is answered as one that does not exist (a message cannot find out another's notices)."""
    mechanism_id = picture.mechanism.id
    kind, ref = about.get("kind"), about.get("id")
    if kind == "zone" and isinstance(ref, str):
        if ref not in {z["id"] for z in zones.zones(ctx, mechanism_id, include_withdrawn=True)}:
            raise NotFound(f"about: zone {ref!r} does not exist", field="about")
    elif kind == "activity" and isinstance(ref, str):
        try:
            queries.visible_activity(ctx, mechanism_id, ref, member)
        except NotFound as e:
            raise NotFound(f"about: {e.message}", field="about") from None
    elif kind == queries.ABOUT_CONFLICT and isinstance(ref, str):
        try:
            queries.visible_conflict(ctx, mechanism_id, ref, member)
        except NotFound as e:
            raise NotFound(f"about: {e.message}", field="about") from None
    elif kind == queries.ABOUT_MESSAGE and isinstance(ref, str):
        with ctx.store.read() as s:
            if queries.readable_message(s, mechanism_id, ref, member) is None:
                raise NotFound(f"about: {_message_not_found(ref).message}", field="about")
    else:
        raise InvalidInput("about: give kind (activity, conflict, zone or message) and id", field="about")


def message(ctx: Context, mechanism_id: str, message_id: str, *, reader: Member) -> dict[str, Any]:
    """A message worded for ``reader``, with where it stands.

    Raises:
        NotFound: no such message.
    """
    with ctx.store.read() as s:
        row = s.get(MessageRow, (mechanism_id, message_id))
        if row is None:
            raise _message_not_found(message_id)
        return queries.message_doc(row, reader)


def _message_not_found(message_id: str) -> NotFound:
    """The one answer for a message that does not exist and one the reader may not read."""
    return NotFound(f"message {message_id!r}: no such message that you may read", field="message")


MESSAGES_READ_AT_ONCE = 500
"""The fewest stored messages :func:`messages` reads at a time while it looks for those the reader may see."""


def messages(
    ctx: Context,
    mechanism_id: str,
    *,
    reader: Member,
    after_seq: int = 0,
    limit: int = 500,
    newest: bool = False,
    awaiting: bool = False,
) -> list[dict[str, Any]]:
    """The first ``limit`` messages after ``after_seq`` that the reader may see (with ``newest``, the last
    ``limit`` of them: what a duty officer's channel shows), in order, worded in the reader's language. The
    messages it may not see are passed over, not counted: a page is short only at the end of the channel (a
    client paging on until a short page misses none). Who may see a message is read first from its
    addressing alone (index ``ix_messages_seq``, a page of the channel at a time, from its end with
    ``newest``), then the messages found are read whole. With ``awaiting``, only the messages that wait on the
    reader's party (:func:`_awaiting`)."""
    if limit < 1:
        raise InvalidInput(f"limit: must be at least 1, got {limit}", field="limit")
    ctx.pictures.get(mechanism_id)
    if awaiting:
        return _awaiting(ctx, mechanism_id, reader=reader, after_seq=after_seq, limit=limit, newest=newest)
    page = max(limit, MESSAGES_READ_AT_ONCE)
    addressing = select(
        MessageRow.seq, MessageRow.recipients, MessageRow.sender, MessageRow.doc["from_party"].as_string()
    ).where(MessageRow.mechanism_id == mechanism_id, MessageRow.seq > after_seq)
    addressing = addressing.order_by(MessageRow.seq.desc() if newest else MessageRow.seq)
    found: list[int] = []
    with ctx.store.read() as s:
        read_from: int | None = None  # where the next read starts (None: after_seq, or with newest the end)
        while len(found) < limit:
            query = (
                addressing
                if read_from is None
                else addressing.where(MessageRow.seq < read_from if newest else MessageRow.seq > read_from)
            )
            rows = s.execute(query.limit(page)).all()
            for seq, to, sender, from_party in rows:
                if sees_message(reader, to=to, sender=sender, from_party=from_party):
                    found.append(seq)
            if len(rows) < page:
                break
            read_from = rows[-1][0]
        found = found[:limit]
        whole = s.scalars(
            select(MessageRow)
            .where(MessageRow.mechanism_id == mechanism_id, MessageRow.seq.in_(found))
            .order_by(MessageRow.seq)
        )
        return [queries.message_doc(row, reader) for row in whole]


def _awaiting(
    ctx: Context, mechanism_id: str, *, reader: Member, after_seq: int, limit: int, newest: bool
) -> list[dict[str, Any]]:
    """The messages after ``after_seq`` that wait on the reader's party for its acknowledgement (sent to it, not
    acknowledged by it, not closed), whatever their age: the first ``limit`` (with ``newest`` the last), in
    order. What :func:`~deconflict.service.duty.waiting` lists, as the messages themselves: a page showing the
    channel's newest messages reads these too, so that nothing it must answer is out of its reach."""
    with ctx.store.read() as s:
        rows = queries.waiting_on(s, mechanism_id, reader.party, after_seq=after_seq)
        found = [r for r in rows if queries.sees(r, reader)]
        found = found[-limit:] if newest else found[:limit]
        return [queries.message_doc(r, reader) for r in found]
