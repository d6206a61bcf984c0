"""Recompute what the service itself wrote in a record, from the entries before it, and name every entry
that should or should not be there.

A signature proves who wrote an entry and the authority rules say whether they had the right to; neither
says whether the service's own entries are *true*: that the conflict it recorded is one the two notices
really make, that nobody's conflict was left out, that an alert went to the party the rules name, that an
escalation was due and none was skipped. Those entries are functions of the entries before them, so
``ledger verify`` recomputes them with the service's own code (:mod:`deconflict.service.derive`, and
:func:`deconflict.service.duty.record_due` for the duty loop), run on the state the record had at that
point (its tables rebuilt in memory by the same projection the service uses), and compares:

* after each party's notice, amendment or cancellation, each zone declared or withdrawn, and each conflict
  a member resolved, the service's entries that follow at the same time must be exactly those the code
  writes: conflicts with every field (awaiting, deadline, window, band, overlap parts), the alerts and who
  they go to, the conflicts closed;
* a run of the duty loop's entries (escalation steps, line checks, a line reported down) must be exactly
  what was due at its time;
* an escalation step that fell due must be in the record by the time a later entry shows the record went
  on ``GRACE_S`` past it (a service down for longer writes it late, and says so by its time);
* any other entry the service wrote is named: nothing before it calls for it.

Not recomputed, and counted as such: the tactical picture's conflicts, their alerts and their clearing
(track reports are not entries: the states that raised each conflict are in its entry as evidence), and the
"line restored" notice that follows a party's first word after its line was reported down. A copy whose
payloads are withheld cannot be recomputed at all.

The state follows the record as written, not as recomputed, so one wrong entry is named once and does not
make every later one look wrong.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import create_engine, select
from sqlalchemy.orm import Session
from sqlalchemy.pool import StaticPool

from deconflict import hotline as phrases
from deconflict.clock import iso, parse_utc
from deconflict.formats.docs import activity_from_doc, zone_from_doc
from deconflict.hotline.ladder import ladder_schedule
from deconflict.mechanisms import mechanism_from_record
from deconflict.model import Member, Resolution, Role
from deconflict.record.chain import EntryType
from deconflict.service import admission, conflicts, derive, duty, findings, queries, tactical_shape, tracks
from deconflict.service.dry import DryWriter, brief, differing, entry_key, entry_words
from deconflict.service.picture import Picture, ZoneShape, build_picture
from deconflict.store import projection
from deconflict.store.json_column import json_text
from deconflict.store.schema import ActivityRow, Base, ConflictRow, LedgerEntry, MessageRow

__all__ = ["GRACE_S", "Recheck", "recheck"]

GRACE_S = 300.0
"""How long after an escalation step fell due the record may go on without it (the duty loop runs every
second; a service stopped for longer writes the step when it starts again)."""

_TICK_TEMPLATES = frozenset({"escalated_to", "line_down", phrases.MessageType.LINE_CHECK.value})
_MEMBER_ENTRIES_RECOMPUTED = frozenset({EntryType.CONFLICT_ACKNOWLEDGED.value, EntryType.CONFLICT_RESOLVED.value})
"""A member's entries whose payload the service works out (the alerts an acknowledgement or a resolution
settles): compared whole, so a member cannot close another party's alert by listing it."""
_TACTICAL = frozenset(k.value for k in queries.TACTICAL_KINDS)
_SYSTEM = "system"
"""The actor of the service's own entries."""


@dataclass
class Recheck:
    """What recomputing the service's own entries found."""

    triggers: int = 0
    """Entries whose consequences were recomputed (notices, zones, resolutions) plus duty-loop runs."""
    derived: int = 0
    """The service's entries found to be exactly what the code writes."""
    not_recomputed: dict[str, int] = field(default_factory=dict)
    """The service's entries that cannot be recomputed from the record, by why."""
    problems: list[str] = field(default_factory=list)
    """Each entry that should not be there, differs, or is missing, in words (with its number)."""
    skipped: str | None = None
    """Why the recomputation stopped before the end (a withheld payload); what it found before stands."""

    @property
    def ok(self) -> bool:
        return not self.problems


class _Rechecker:
    def __init__(self, s: Session, mechanism_id: str) -> None:
        self.s = s
        self.mid = mechanism_id
        self.out = Recheck()
        self._picture: Picture | None = None
        self.pending: list[tuple[str, str, Any]] = []
        self.pending_after: tuple[int, str, datetime] | None = None
        """(seq, type, time) of the entry whose consequences are pending."""
        self.seq = 0
        self.reported: dict[str, int] = {}
        """Message → the highest escalation rung already named as missing."""
        self.conflicts = 0
        self.messages = 0
        """Conflicts and messages in the record so far (what numbers the next ones)."""
        self.next_due: datetime | None = None
        self.line_due: dict[str, datetime] = {}
        """party → when its next line check falls due (after the last one the record holds)."""
        """No escalation step falls due before this (None: none awaited); a lower bound, refreshed when passed."""

    # --- the picture the service's code reads ---------------------------------------------------------

    def picture(self) -> Picture:
        if self._picture is None:
            self._picture = build_picture(self.s, self.mid)
        p = self._picture
        p.conflict_count, p.message_count = self.conflicts, self.messages
        return p

    def member(self, actor: str) -> Member | None:
        return next((m for m in self.picture().mechanism.members if m.id == actor), None)

    def dry(self, run: Callable[[DryWriter, Picture], object]) -> list[tuple[str, str, Any]]:
        """What ``run`` writes through the service's code on the state now; nothing stays in the tables."""
        picture = self.picture()
        # committed first (in memory, nothing to sync): SQLite's ROLLBACK TO walks every page the transaction
        # has changed, so with one transaction for the whole record each dry run cost more than the last
        # (8 ms at 8,000 entries; 26,906 entries took 8 min 43 s to verify)
        self.s.commit()
        nested = self.s.begin_nested()
        try:
            w = DryWriter(self.s, self.mid, picture, self.seq)
            run(w, picture)
            return w.written
        finally:
            nested.rollback()

    # --- entries --------------------------------------------------------------------------------------

    def entry(self, e: dict[str, Any]) -> None:
        seq, actor, type_, p = int(e["seq"]), str(e["actor"]), str(e["type"]), e["payload"]
        at = e["at"] if isinstance(e["at"], datetime) else parse_utc(e["at"], field="at")
        if actor != _SYSTEM or not self._is_tick(type_, p):  # a duty-loop run is held to what was due instead
            self._missed_escalations(f"before entry {seq}", at)
        if actor == _SYSTEM:
            self._service_entry(seq, at, type_, p)
        else:
            self._close_pending(seq)
            self._numbered(seq, type_, p)
            self._trigger(seq, at, actor, type_, p)
        self._apply(e, seq, at, actor, type_, p)

    def _numbered(self, seq: int, type_: str, p: Any) -> None:
        """A member's message takes the next number the service gives (the service's own entries are compared
        whole with what it writes): one numbered out of turn means a message before it is missing or was added."""
        if type_ != EntryType.MESSAGE_SENT.value:
            return
        given, due = str(p.get("id")), f"M{self.messages + 1}"
        if given != due:
            self.out.problems.append(
                f"entry {seq}: message {given!r} where the record's numbering calls for {due!r} (a message "
                "before it is missing, or one was added)"
            )

    def _apply(self, e: dict[str, Any], seq: int, at: datetime, actor: str, type_: str, p: Any) -> None:
        self.s.add(
            LedgerEntry(
                mechanism_id=self.mid,
                seq=seq,
                at=at,
                actor=actor,
                type=type_,
                payload="",
                payload_hash=str(e.get("payload_hash", "")),
                prev_hash=str(e.get("prev_hash", "")),
                hash=str(e.get("hash", "")),
                key_id=e.get("key_id"),
                signature=e.get("signature"),
            )
        )
        projection.apply(self.s, mechanism=self.mid, type=type_, payload=p, at=at, seq=seq, actor=actor)
        self.s.flush()
        self.seq = seq
        # numbered as the record numbers them (after a gap it names, the next ones follow the record's numbers
        # rather than collide with them)
        if type_ == EntryType.CONFLICT_DETECTED.value:
            self.conflicts = max(self.conflicts + 1, _number(p.get("id"), "C"))
        elif type_ == EntryType.MESSAGE_SENT.value:
            self.messages = max(self.messages + 1, _number(p.get("id"), "M"))
            if p.get("template") == phrases.MessageType.LINE_CHECK.value and (p.get("about") or {}).get("id"):
                interval = self.picture().mechanism.rules.line_check_interval_s
                self.line_due[str(p["about"]["id"])] = at + timedelta(seconds=interval)
            if p.get("needs_ack") and p.get("deadline"):
                due = parse_utc(p["deadline"], field="deadline")  # its first step falls due at its deadline
                self.next_due = due if self.next_due is None else min(self.next_due, due)
        self._follow(type_, p)

    def _follow(self, type_: str, p: Any) -> None:
        """Move the picture on as the service does after committing an entry."""
        if type_ == EntryType.MECHANISM_DECLARED.value:
            mechanism_from_record(p)  # rules the service could not run by are named at entry 1
        picture = self._picture
        if picture is None:
            return
        if type_ in (EntryType.MEMBER_ADDED.value, EntryType.MECHANISM_DECLARED.value):
            self._picture = None  # members change the mechanism: rebuilt at the next use
        elif type_ in (EntryType.ACTIVITY_NOTIFIED.value, EntryType.ACTIVITY_AMENDED.value):
            activity = activity_from_doc(p, mechanism=self.mid)
            if activity.id in picture.activities:
                picture.unindex_activity(activity.id)
            picture.index_activity(activity, picture.project(activity.volumes))
        elif type_ == EntryType.ACTIVITY_CANCELLED.value:
            if p["id"] in picture.activities:
                picture.unindex_activity(p["id"])
        elif type_ == EntryType.ZONE_DECLARED.value:
            z = zone_from_doc(p, mechanism=self.mid)
            picture.zones[z.id] = ZoneShape(z, picture.frame.project(z.footprint.geometry), z.footprint.radius_m)
        elif type_ == EntryType.ZONE_WITHDRAWN.value:
            picture.zones.pop(p["id"], None)

    def _trigger(self, seq: int, at: datetime, actor: str, type_: str, p: Any) -> None:
        """Recompute what the service writes after a member's (or the operator's) entry."""
        mid = self.mid
        refused = self._refused_by_the_service(actor, type_, p, at)
        if refused is not None:
            self.out.problems.append(f"entry {seq}: the service would have refused {actor}'s {type_}: {refused}")
        run: Callable[[DryWriter, Picture], object] | None = None
        if type_ in (EntryType.ACTIVITY_NOTIFIED.value, EntryType.ACTIVITY_AMENDED.value):
            activity = activity_from_doc(p, mechanism=mid)
            entry_type = EntryType(type_)

            def run(w: DryWriter, picture: Picture) -> object:
                projected = picture.project(activity.volumes)
                found = findings.findings(picture, activity, projected)
                amended = entry_type is EntryType.ACTIVITY_AMENDED
                return derive.record_version(w, picture, activity, projected, found, actor, entry_type, amended=amended)

        elif type_ == EntryType.ACTIVITY_CANCELLED.value:
            cancelled = activity_from_doc(p, mechanism=mid)

            def run(w: DryWriter, picture: Picture) -> object:
                return derive.record_cancel(w, cancelled, actor, picture)

        elif type_ == EntryType.ZONE_DECLARED.value:
            zone = zone_from_doc(p, mechanism=mid)

            def run(w: DryWriter, picture: Picture) -> object:
                zgeom = picture.frame.project(zone.footprint.geometry)
                hits = derive.activities_in_zone(self.s, picture, zone, zgeom)
                shape = ZoneShape(zone, zgeom, zone.footprint.radius_m)
                picture.zones[zone.id] = shape
                try:
                    return derive.record_zone(w, picture, shape, hits, actor, at)
                finally:
                    picture.zones.pop(zone.id, None)

        elif type_ == EntryType.ZONE_WITHDRAWN.value and (member := self.member(actor)) is not None:
            party = member.party

            def run(w: DryWriter, picture: Picture) -> object:
                return derive.record_zone_withdrawn(w, picture, str(p["id"]), actor, party, at)

        elif type_ == EntryType.CONFLICT_RESOLVED.value and (member := self.member(actor)) is not None:
            by = member.party

            def run(w: DryWriter, picture: Picture) -> object:
                how = Resolution(p["resolution"])
                return conflicts.record_resolution(w, picture, actor, str(p["id"]), how, p.get("note", ""), at, by=by)

        elif type_ == EntryType.CONFLICT_ACKNOWLEDGED.value:

            def run(w: DryWriter, picture: Picture) -> object:
                return conflicts.record_acknowledgement(w, actor, str(p["id"]), str(p["party"]), at)

        elif type_ == EntryType.MESSAGE_ACKNOWLEDGED.value:
            down = derive.lines_down(self.s, mid, [str(p["id"])])

            def run(w: DryWriter, picture: Picture) -> object:
                w.append(actor, EntryType.MESSAGE_ACKNOWLEDGED, p, at)
                derive.record_lines_restored(w, picture, str(p["party"]), down, at)
                return None

        elif type_ == EntryType.MESSAGE_SENT.value and isinstance(p.get("from_party"), str):
            down = derive.lines_down(self.s, mid, (p.get("settles") or {}).get("messages") or ())

            def run(w: DryWriter, picture: Picture) -> object:
                w.append(actor, EntryType.MESSAGE_SENT, p, at)
                derive.record_lines_restored(w, picture, str(p["from_party"]), down, at)
                return None

        if run is None:
            return
        written = self.dry(run)
        self.out.triggers += 1
        own = written[0][2] if written else None
        if type_ in _MEMBER_ENTRIES_RECOMPUTED and own is not None and (diff := differing(p, own)):
            self.out.problems.append(
                f"entry {seq}: {actor}'s {type_} of {p.get('id')} is not what the record before it gives: "
                + "; ".join(f"{k} {brief(p, k)} where the rules give {brief(own, k)}" for k in diff[:4])
            )
        self.pending = written[1:]  # the first is the member's own entry
        self.pending_after = (seq, type_, at)

    def _refused_by_the_service(self, actor: str, type_: str, p: Any, at: datetime) -> str | None:
        if not isinstance(p, dict) or self.seq == 0:
            return None
        return admission.refused(self.s, self.picture(), self.member(actor), type_, p, at)

    def _service_entry(self, seq: int, at: datetime, type_: str, p: Any) -> None:
        if self.pending and self.pending_after is not None and at == self.pending_after[2]:
            if self._match(seq, type_, p):
                return
        elif self.pending:
            self._close_pending(seq)
        if self._tactical(seq, at, type_, p):
            return
        if self._is_tick(type_, p):
            self._close_pending(seq)
            self.pending = self.dry(lambda w, picture: duty.record_due(w, picture, at))
            self.pending_after = (seq, "tick", at)
            self.out.triggers += 1
            if self._match(seq, type_, p):
                return
        self.out.problems.append(
            f"entry {seq}: the service wrote {entry_words(type_, p)} at {iso(at)}, but nothing in the record before it "
            "calls for it"
        )

    def _match(self, seq: int, type_: str, p: Any) -> bool:
        """Pair a service entry with the first pending one about the same thing; what it skips is missing."""
        key = entry_key(type_, p)
        for i, (_, exp_type, exp) in enumerate(self.pending):
            if entry_key(exp_type, exp) != key:
                continue
            for _, miss_type, miss in self.pending[:i]:
                self._missing(seq, miss_type, miss)
            del self.pending[: i + 1]
            diff = differing(p, exp)
            if diff:
                self.out.problems.append(
                    f"entry {seq}: {entry_words(type_, p)} is not what the entries before it give: "
                    + "; ".join(f"{k} {brief(p, k)} where the rules give {brief(exp, k)}" for k in diff[:4])
                )
            else:
                self.out.derived += 1
            return True
        return False

    def _missing(self, seq: int, type_: str, p: Any) -> None:
        assert self.pending_after is not None
        after_seq, after_type, at = self.pending_after
        cause = "the duty loop's run" if after_type == "tick" else f"entry {after_seq} ({after_type})"
        self.out.problems.append(
            f"missing before entry {seq}: {cause} at {iso(at)} calls for {entry_words(type_, p)}, which the record "
            "does not hold"
        )

    def _close_pending(self, seq: int) -> None:
        for _, type_, p in self.pending:
            self._missing(seq, type_, p)
        self.pending = []
        self.pending_after = None

    def _tactical(self, seq: int, at: datetime, type_: str, p: Any) -> bool:
        """A tactical conflict or its clearing, as far as the record can tell: raised from track reports,
        which are not entries, so whether the tracks were in conflict (or parted) is not recomputed; what
        follows from the conflict is: who it awaits, its deadline, the evidence it carries, its alerts, and
        a clearing's own entry. True when the entry was one (its problems, if any, are noted)."""
        if not isinstance(p, dict):
            return False
        if type_ == EntryType.CONFLICT_DETECTED.value and p.get("kind") in _TACTICAL:
            self._count("tactical conflicts (whether the tracks were in conflict)")
            for problem in self._tactical_shape(p, at):
                self.out.problems.append(f"entry {seq}: tactical conflict {p.get('id')}: {problem}")

            def alerts(w: DryWriter, picture: Picture) -> None:
                w.append(_SYSTEM, EntryType.CONFLICT_DETECTED, p, at)
                tracks.tactical_alerts(w, picture, p, at)

            self.pending = self.dry(alerts)[1:]
            self.pending_after = (seq, "tactical conflict.detected", at)
            return True
        if type_ == EntryType.CONFLICT_RESOLVED.value and p.get("resolution") == Resolution.CLEARED.value:
            row = self.s.get(ConflictRow, (self.mid, p.get("id")))
            if row is None or row.kind not in _TACTICAL:
                kind = "no conflict" if row is None else f"a {row.kind} conflict"
                self.out.problems.append(
                    f"entry {seq}: the service closes {p.get('id')} ({kind}) as cleared, which closes only "
                    "tactical conflicts (the tracks parted)"
                )
                return True
            self._count("tactical conflicts cleared (whether the tracks parted)")
            note = tracks.CLEARED_NOTES[row.kind]
            if p.get("note") == tracks.EARLIER_CLEARED_NOTES.get(row.kind):  # before contact lost stayed open
                note = tracks.EARLIER_CLEARED_NOTES[row.kind]
            own = self.dry(
                lambda w, picture: conflicts.record_resolution(
                    w, picture, _SYSTEM, row.id, Resolution.CLEARED, note, at
                )
            )
            if own and (diff := differing(p, own[0][2])):
                self.out.problems.append(
                    f"entry {seq}: {entry_words(type_, p)} is not what the record before it gives: "
                    + "; ".join(f"{k} {brief(p, k)} where the rules give {brief(own[0][2], k)}" for k in diff[:4])
                )
            return True
        return False

    def _tactical_shape(self, p: dict[str, Any], at: datetime) -> list[str]:
        picture = self.picture()
        parties = {m.party for m in picture.mechanism.members if m.role is Role.PARTY}
        other = self.s.get(ActivityRow, (self.mid, str(p.get("other_activity"))))
        owners = {other.id: other.party} if other is not None else {}
        return tactical_shape.problems(p, at, picture.mechanism.rules, parties, owners)

    def _count(self, why: str) -> None:
        self.out.not_recomputed[why] = self.out.not_recomputed.get(why, 0) + 1

    @staticmethod
    def _is_tick(type_: str, p: Any) -> bool:
        return type_ == EntryType.MESSAGE_ESCALATED.value or (
            type_ == EntryType.MESSAGE_SENT.value and isinstance(p, dict) and p.get("template") in _TICK_TEMPLATES
        )

    def _missed_escalations(self, where: str, at: datetime) -> None:
        """Escalation steps and line checks due more than GRACE_S before this entry that the record still
        does not hold."""
        when = at - timedelta(seconds=GRACE_S)
        for party, due in sorted(self.line_due.items()):
            if due <= when:
                del self.line_due[party]  # named once; due again only after a new line check
                self.out.problems.append(
                    f"missing {where}: a line check of {party} fell due at {iso(due)}, and the record has none "
                    f"by {iso(at)}"
                )
        if self.next_due is None or when < self.next_due:
            return
        rules = self.picture().mechanism.rules
        self.next_due = None
        rows = queries.by_seq(
            self.s.scalars(
                select(MessageRow).where(*queries.unanswered(self.mid), MessageRow.steps < len(rules.ladder) - 1)
            )
        )
        for row in rows:
            start = duty.escalation_start(row, rules.ack_deadline_s)
            done = max(row.steps, self.reported.get(row.id, 0))
            for window in ladder_schedule(start, rules.ack_deadline_s, rules.ladder)[done + 1 :]:
                if window.alerted_at > when:  # not due yet: the next time to look
                    self.next_due = (
                        window.alerted_at if self.next_due is None else min(self.next_due, window.alerted_at)
                    )
                    break
                self.reported[row.id] = window.rung
                self.out.problems.append(
                    f"missing {where}: the escalation of {row.id} to rung {window.rung} ({window.name}) "
                    f"fell due at {iso(window.alerted_at)}, unanswered, and the record has none of it by {iso(at)}"
                )

    def finish(self, until: datetime | None) -> Recheck:
        self._close_pending(self.seq + 1)
        if until is not None:  # the service vouched for the head at that time: what fell due before is in
            self._missed_escalations(f"at the end of the record (the service's checkpoint at {iso(until)})", until)
        return self.out


def _number(ref: Any, letter: str) -> int:
    """The number of a conflict's or message's id (``C7`` → 7); 0 for any other."""
    text = str(ref)
    return int(text[1:]) if text[:1] == letter and text[1:].isdigit() and len(text) < 12 else 0


def recheck(entries: Iterable[dict[str, Any]], *, mechanism: str, until: datetime | None = None) -> Recheck:
    """Recompute the service's own entries of a record (entry documents in order, with their payloads).

    ``until``: a time the service vouched for the record's head (its last checkpoint's); escalation steps
    due more than ``GRACE_S`` before it must be in the record. A withheld payload stops the recomputation
    there (what was found before it stands)."""
    engine = create_engine("sqlite://", poolclass=StaticPool, json_serializer=json_text)
    Base.metadata.create_all(engine)
    s = Session(engine, expire_on_commit=False)  # in memory: the tables live as long as the recheck
    try:
        r = _Rechecker(s, mechanism)
        for e in entries:
            if "payload" not in e:
                r.out.skipped = f"entry {e['seq']}'s payload is withheld in this copy; entries from it on are not"
                return r.out
            try:
                r.entry(e)
            except Exception as exc:  # noqa: BLE001 (an entry the record before it cannot take: named, not raised)
                # a store's refusal in its own words (without the statement and its parameters)
                why = str(getattr(exc, "orig", None) or exc).split("\n")[0] or type(exc).__name__
                why = why.removeprefix(f"entry {e.get('seq')} ({e.get('type')}): ")  # named once, below
                r.out.problems.append(
                    f"entry {e.get('seq')} ({e.get('type')}) does not follow from the record before it ({why}); "
                    "nothing after it is recomputed"
                )
                return r.out
        return r.finish(until)
    finally:
        s.close()
        engine.dispose()
