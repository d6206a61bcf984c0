"""Notices of planned activity: notify, preview, amend (with the version seen), cancel, and reading them
back. Each write validates first, then detects and records in one transaction; the volume index follows
the committed state.
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select

from deconflict.clock import iso
from deconflict.detect import SeparationFinding, ZoneFinding
from deconflict.disclosure import check_caps, preview_separation
from deconflict.errors import DeconflictError, Forbidden, InvalidInput, InvalidState, StaleVersion
from deconflict.formats.docs import (
    activity_from_doc,
    check_windows,
    choice,
    parse_volumes,
    party_identifier,
)
from deconflict.model import (
    Activity,
    ActivityKind,
    ActivityState,
    ConflictKind,
    Disclosure,
    Member,
    Rules,
    Volume,
)
from deconflict.record.chain import EntryType
from deconflict.service import conflicts, derive, findings, previews, queries
from deconflict.service.context import (
    IMMEDIATE,
    LIVE_STATES,
    Context,
    Outcome,
    SignatureMode,
    StaleRecord,
    each_alone,
    retrying,
)
from deconflict.service.picture import Picture, Projected, party_member
from deconflict.service.writer import RecordWriter, record_now
from deconflict.store.schema import ActivityRow, ActivityVersionRow

__all__ = [
    "Answers",
    "NewNotice",
    "activities",
    "activity_history",
    "amend",
    "cancel",
    "check_not_ended",
    "notify",
    "notify_many",
    "preview_notice",
]


@retrying
def notify(
    ctx: Context,
    *,
    mechanism_id: str,
    actor: str,
    kind: str,
    volumes: list[dict[str, Any]],
    activity_id: str | None = None,
    title: str = "",
    mode: SignatureMode = IMMEDIATE,
) -> Outcome:
    """Notify a planned activity: validate, apply the rules, detect, store and record in one transaction.

    Raises:
        NotFound, Forbidden: the actor is not a party's member of the mechanism.
        InvalidInput: a volume breaks a rule, or every window has ended (the message names volume and field).
        InvalidState: the activity id is taken.
    """
    with ctx.exclusive(mechanism_id) as picture:
        now = record_now(ctx, picture, mode)
        notice = NewNotice(actor, kind, volumes, activity_id, title)
        activity, projected = _new_activity(picture, notice, now, pending={})
        return _commit_version(ctx, picture, activity, projected, actor, EntryType.ACTIVITY_NOTIFIED, None, mode)


@dataclass(frozen=True)
class NewNotice:
    """One notice of :func:`notify_many`: what :func:`notify` takes besides the mechanism (signed at once)."""

    actor: str
    kind: str
    volumes: list[dict[str, Any]]
    activity_id: str | None = None
    title: str = ""


BATCH_BUDGET_S = 0.025
"""How long a transaction of :func:`notify_many` takes more notices in: past it, the notices left go in the
next transaction, so that the first notices' answers wait at most about this long for the others' work (a
plain notice takes 1-3 ms of it; one that raises hundreds of conflicts in a crowded area, tens of
milliseconds: 64 of them in one transaction kept the first one's answer waiting 5 s)."""


Answers = list[tuple[int, Outcome | Exception]]
"""Answers to some of :func:`notify_many`'s notices: (the notice's place in the batch, its answer)."""


def notify_many(ctx: Context, *, mechanism_id: str, notices: Sequence[NewNotice]) -> Iterator[Answers]:
    """Several members' notices, each signed at once by a key the service holds, with the answer
    :func:`notify` gives for each: its outcome, or the error it raises. The answers come as they are on the
    disk: first those of the notices recorded together, then the others.

    The notices are checked and recorded in order in one transaction (one pass through the record's gate,
    one commit, one wait for the disk), each checked against the notices before it in the batch as it
    would be had they been sent one by one: its id follows theirs, and its conflicts with them are raised.
    A notice refused (a volume breaking a rule, an id taken) is answered with that refusal and nothing of it
    is written. A notice of a member whose party signs its own entries is sent on its own afterwards (and
    refused there, as alone). Should anything else fail while the notices are worked out (an entry the
    record's rules refuse), nothing of the batch is kept and every notice is sent on its own, in order, as
    :func:`notify` would (those share one wait for the disk). An error of the store at the commit (the
    database gone, the disk full) is raised for the notices not yet answered. A transaction takes notices
    for :data:`BATCH_BUDGET_S` at most; those left go in the next, and are answered once it is on the disk."""
    start = 0
    while start < len(notices):
        results = _notify_together(ctx, mechanism_id=mechanism_id, notices=notices[start:])
        done: Answers = [(start + i, found) for i, found in enumerate(results) if found is not None]
        if done:
            yield done
        alone = [start + i for i, found in enumerate(results) if found is None]
        if alone:
            yield each_alone(ctx, alone, lambda i: notify(ctx, mechanism_id=mechanism_id, **vars(notices[i])))
        start += len(results)


@retrying
def _notify_together(
    ctx: Context, *, mechanism_id: str, notices: Sequence[NewNotice]
) -> list[Outcome | Exception | None]:
    """:func:`notify_many`'s one transaction: the answer for each notice it took, None for one to send on its
    own. It takes the notices in order until it has worked for :data:`BATCH_BUDGET_S` (one at least): the
    list is as long as the notices it took."""
    results: list[Outcome | Exception | None] = [None] * len(notices)
    began = time.monotonic()
    with ctx.exclusive(mechanism_id) as picture:
        added: list[str] = []
        """Activities put in the picture's index for the notices after them, before the commit."""
        written = False
        """Whether every notice was worked out: a failure after that is the commit's (or what follows it)."""
        try:
            with RecordWriter(ctx, mechanism_id, picture=picture, gather=True) as w:
                alone = {a for a in {n.actor for n in notices} if w.refusal(a) is not None}
                for i, notice in enumerate(notices):
                    if i and time.monotonic() - began > BATCH_BUDGET_S:  # the rest in the next transaction
                        del results[i:]
                        break
                    if notice.actor in alone:
                        continue
                    now = record_now(ctx, picture, IMMEDIATE)
                    if w.last_seq:  # not before the batch's last entry (the picture's time is the commit's)
                        now = w.floor(now)
                    try:
                        activity, projected = _new_activity(picture, notice, now, pending=w.new_activities)
                    except DeconflictError as e:  # this notice's own refusal: nothing of it written
                        results[i] = e
                        continue
                    found = findings.findings(picture, activity, projected)
                    seq, raised, closed = derive.record_version(
                        w, picture, activity, projected, found, notice.actor, EntryType.ACTIVITY_NOTIFIED, amended=False
                    )
                    picture.index_activity(activity, projected)
                    added.append(activity.id)
                    results[i] = Outcome(activity=activity, raised=tuple(raised), resolved=tuple(closed), seq=seq)
                w.flush()  # a row the database refuses fails the batch here: each notice is then sent alone
                written = True
        except StaleRecord:
            _unindex(picture, added)
            raise  # run again on a fresh picture (retrying)
        except Exception:
            if written:  # the store's error at the commit, for every notice: the picture is read again
                ctx.pictures.clear()
                raise
            _unindex(picture, added)  # nothing of the batch was kept: each notice is sent on its own
            return [None] * len(results)
    return results


def _unindex(picture: Picture, activity_ids: list[str]) -> None:
    """Take out of the picture's index the activities a batch put there before its transaction failed."""
    for activity_id in activity_ids:
        picture.unindex_activity(activity_id)


def _new_activity(
    picture: Picture, notice: NewNotice, now: datetime, *, pending: Mapping[str, str]
) -> tuple[Activity, Projected]:
    """The first version of a notified activity and its volumes projected, checked as :func:`notify` checks
    them; ``pending``: the activities notified earlier in the same transaction (id → party), as if committed.

    Raises:
        NotFound, Forbidden: the actor is not a party's member of the mechanism.
        InvalidInput: a volume breaks a rule, or every window has ended.
        InvalidState: the activity id is taken.
    """
    member = party_member(picture, notice.actor)
    kind = choice(notice.kind, ActivityKind, "kind")
    if notice.activity_id is None:
        activity_id = picture.next_activity_id(member.party, pending)
    else:
        activity_id = party_identifier(notice.activity_id, "id", party=member.party)
        if activity_id in picture.activity_ids or activity_id in pending:  # the party's own: ids are per party
            raise InvalidState(
                f"id: activity {activity_id!r} already exists; amend it or choose another id", field="id"
            )
    vols = parse_volumes(notice.volumes, party=member.party, activity=activity_id)
    check_not_ended(vols, now, picture.mechanism.rules)
    projected = picture.project_in_area(vols)
    check_caps(picture.mechanism.rules, picture.frame, vols, projected)
    title = conflicts.title(notice.title)
    activity = _first_version(picture, member, kind, vols, now, activity_id=activity_id, title=title)
    return activity, projected


def preview_notice(
    ctx: Context, *, mechanism_id: str, actor: str, kind: str, volumes: list[dict[str, Any]]
) -> list[dict[str, Any]]:
    """The conflicts a notice would raise if it were sent now; nothing is written or recorded.

    Every preview is counted, limited to the rules' ``previews_per_hour`` per member, and held to the
    same caps as a notice (service/previews, disclosure.check_caps). Under ``conflicts-only`` another
    party's notice appears only as the conflict would show it: its parts within the separation minima
    of the draft, their window and band (disclosure.preview_separation); never its id, its own window or
    band, or a distance.

    Raises:
        PreviewsExhausted: the member has asked for its hour's worth of previews.
    """
    with ctx.exclusive(mechanism_id) as picture:  # the index must not change under the query
        now = ctx.clock()
        member = party_member(picture, actor)
        previews.admit(ctx, picture, member, now)
        rules = picture.mechanism.rules
        kind_ = choice(kind, ActivityKind, "kind")
        vols = parse_volumes(volumes, party=member.party, activity="preview")
        check_not_ended(vols, now, picture.mechanism.rules)
        projected = picture.project_in_area(vols)
        check_caps(rules, picture.frame, vols, projected)
        draft = _first_version(picture, member, kind_, vols, now)
        found = findings.findings(picture, draft, projected)
        out: list[dict[str, Any]] = []
        for f in found:
            if isinstance(f, SeparationFinding):
                parts = []
                if rules.disclosure is Disclosure.CONFLICTS_ONLY:
                    parts = findings.separation_overlaps(picture, draft, projected, f)[1]
                whole = {
                    "other_activity": f.other_activity,
                    "distance_m": round(f.distance_m, 1),
                    "start": iso(f.start),
                    "end": iso(f.end),
                    "floor_m": f.floor_m,
                    "ceiling_m": f.ceiling_m,
                }
                doc = preview_separation(
                    other_party=f.other_party, parts=parts, disclosure=rules.disclosure, whole=whole
                )
                if doc is None:
                    continue
            elif isinstance(f, ZoneFinding):
                zone = picture.zones[f.zone].zone
                doc = {
                    "kind": ConflictKind.ZONE.value,
                    "zone": f.zone,
                    "zone_kind": zone.kind.value,
                    "zone_owner": f.zone_owner,
                    "start": iso(f.start),
                    "end": iso(f.end),
                }
            else:
                doc = {
                    "kind": ConflictKind.SHORT_NOTICE.value,
                    "lead_time_s": round(f.lead_time_s),
                    "min_notice_s": f.min_notice_s,
                }
            out.append(doc)
        previews.reached(ctx, mechanism_id, member, {d["other_party"] for d in out if "other_party" in d}, now)
    return out


@retrying
def amend(
    ctx: Context,
    *,
    mechanism_id: str,
    actor: str,
    activity_id: str,
    seen_version: int,
    volumes: list[dict[str, Any]] | None = None,
    kind: str | None = None,
    title: str | None = None,
    mode: SignatureMode = IMMEDIATE,
) -> Outcome:
    """A new version of an activity; ``seen_version`` must be the current one.

    Raises:
        StaleVersion: the activity has moved on since ``seen_version``.
        Forbidden: the activity belongs to another party.
        InvalidState: the activity is cancelled or ended.
    """
    with ctx.exclusive(mechanism_id) as picture:
        now = record_now(ctx, picture, mode)
        member = party_member(picture, actor)
        current = _own_activity(ctx, mechanism_id, activity_id, member)
        _check_version(current, seen_version)
        vols = (
            parse_volumes(volumes, party=member.party, activity=activity_id) if volumes is not None else current.volumes
        )
        check_not_ended(vols, now, picture.mechanism.rules)
        projected = picture.project_in_area(vols)
        check_caps(picture.mechanism.rules, picture.frame, vols, projected)
        activity = Activity(
            id=current.id,
            mechanism=mechanism_id,
            party=current.party,
            kind=choice(kind, ActivityKind, "kind") if kind is not None else current.kind,
            volumes=vols,
            state=current.state,
            version=current.version + 1,
            notified_at=now,
            first_notified_at=current.first_notified_at,
            title=conflicts.title(title) if title is not None else current.title,
        )
        return _commit_version(ctx, picture, activity, projected, actor, EntryType.ACTIVITY_AMENDED, current, mode)


@retrying
def cancel(
    ctx: Context,
    *,
    mechanism_id: str,
    actor: str,
    activity_id: str,
    seen_version: int | None = None,
    mode: SignatureMode = IMMEDIATE,
) -> Outcome:
    """Cancel an activity (a new version in state cancelled); its open conflicts are closed as amended."""
    with ctx.exclusive(mechanism_id) as picture:
        member = party_member(picture, actor)
        current = _own_activity(ctx, mechanism_id, activity_id, member)
        if seen_version is not None:
            _check_version(current, seen_version)
        now = record_now(ctx, picture, mode)
        activity = Activity(
            **{**current.__dict__, "state": ActivityState.CANCELLED, "version": current.version + 1, "notified_at": now}
        )
        with RecordWriter(ctx, mechanism_id, picture=picture, mode=mode) as w:
            seq, closed = derive.record_cancel(w, activity, actor, picture)
        picture.unindex_activity(activity_id)
        return Outcome(activity=activity, resolved=tuple(closed), seq=seq)


def activities(
    ctx: Context,
    mechanism_id: str,
    *,
    party: str | None = None,
    start: datetime | None = None,
    end: datetime | None = None,
    include_closed: bool = False,
) -> list[Activity]:
    """Activities, optionally of one party and overlapping a window."""
    ctx.pictures.get(mechanism_id)
    stmt = select(ActivityRow).where(ActivityRow.mechanism_id == mechanism_id)
    if party is not None:
        stmt = stmt.where(ActivityRow.party == party)
    if start is not None:
        stmt = stmt.where(ActivityRow.end > start)
    if end is not None:
        stmt = stmt.where(ActivityRow.start < end)
    if not include_closed:
        stmt = stmt.where(ActivityRow.state.in_([s.value for s in LIVE_STATES]))
    with ctx.store.read() as s:
        return [activity_from_doc(r.doc, mechanism=mechanism_id) for r in s.scalars(stmt.order_by(ActivityRow.start))]


def activity_history(ctx: Context, mechanism_id: str, activity_id: str) -> list[dict[str, Any]]:
    """Every version of an activity, oldest first, with who made it and when."""
    queries.activity(ctx, mechanism_id, activity_id)
    with ctx.store.read() as s:
        rows = s.scalars(
            select(ActivityVersionRow)
            .where(ActivityVersionRow.mechanism_id == mechanism_id, ActivityVersionRow.activity_id == activity_id)
            .order_by(ActivityVersionRow.version)
        )
        return [
            {"version": r.version, "at": iso(r.at), "actor": r.actor, "seq": r.seq, "activity": r.doc} for r in rows
        ]


def _first_version(
    picture: Picture,
    member: Member,
    kind: ActivityKind,
    vols: tuple[Volume, ...],
    now: datetime,
    *,
    activity_id: str = "preview",
    title: str = "",
) -> Activity:
    """Version 1 of an activity notified at ``now`` by ``member`` (notify, and the preview of a notice)."""
    return Activity(
        id=activity_id,
        mechanism=picture.mechanism.id,
        party=member.party,
        kind=kind,
        volumes=vols,
        state=ActivityState.NOTIFIED,
        version=1,
        notified_at=now,
        first_notified_at=now,
        title=title,
    )


def _commit_version(
    ctx: Context,
    picture: Picture,
    activity: Activity,
    projected: Projected,
    actor: str,
    entry_type: EntryType,
    previous: Activity | None,
    mode: SignatureMode,
) -> Outcome:
    """Record a version (closing the previous version's conflicts, raising the new one's), then index it."""
    found = findings.findings(picture, activity, projected)
    with RecordWriter(ctx, activity.mechanism, picture=picture, mode=mode) as w:
        seq, raised, closed = derive.record_version(
            w, picture, activity, projected, found, actor, entry_type, amended=previous is not None
        )
    if previous is not None:
        picture.unindex_activity(activity.id)
    picture.index_activity(activity, projected)
    return Outcome(activity=activity, raised=tuple(raised), resolved=tuple(closed), seq=seq)


def _own_activity(ctx: Context, mechanism_id: str, activity_id: str, member: Member) -> Activity:
    """The member's party's activity to change: another party's that the member may see is Forbidden; one it
    may not see is not found, as one that does not exist."""
    current = queries.visible_activity(ctx, mechanism_id, activity_id, member)
    if current.party != member.party:
        raise Forbidden(f"activity {activity_id!r} belongs to {current.party}; only its party may change it")
    if current.state not in LIVE_STATES:
        raise InvalidState(f"activity {activity_id!r} is {current.state.value} and can no longer change")
    return current


def _check_version(current: Activity, seen_version: int) -> None:
    if seen_version != current.version:
        raise StaleVersion(
            f"version: activity {current.id!r} is at version {current.version}, but you changed version "
            f"{seen_version}; read the current version and amend that",
            field="version",
        )


def check_not_ended(vols: tuple[Volume, ...], now: datetime, rules: Rules) -> None:
    """Refuse a notice whose every window has already ended (a notice is of activity to come or under
    way), and a window longer than the rules allow or beyond their horizon (``check_windows``)."""
    check_windows(vols, now=now, rules=rules)
    ends = [v.end for v in vols if v.end is not None]
    if ends and len(ends) == len(vols) and max(ends) <= now:
        n = max(range(len(vols)), key=lambda i: ends[i])
        raise InvalidInput(
            f"volume {n + 1} end: every window of this notice has already ended (the latest ended at "
            f"{iso(max(ends).replace(microsecond=0))}, now is {iso(now.replace(microsecond=0))}); "
            "notify activity still to come or under way",
            field="end",
        )
