"""The class :class:`Service`: the stable facade over the use cases, one short documented forward per method.

Each method hands the use case its :class:`~deconflict.service.context.Context` and, for a write, the
:class:`~deconflict.service.context.SignatureMode` of the member's entry it appends.
"""

from __future__ import annotations

import threading
from collections.abc import Collection, Iterator
from datetime import datetime, timedelta
from typing import Any, Literal

from deconflict.clock import Clock, system_clock
from deconflict.disclosure import listed_part, sees_conflict, sees_whole_notices
from deconflict.formats.docs import activity_to_doc
from deconflict.model import LIVE_KEEPS_S, Activity, Mechanism, Member
from deconflict.record import signing
from deconflict.service import (
    conflicts,
    credentials,
    duty,
    hotline,
    keys,
    mechanisms,
    notices,
    queries,
    rules,
    tracks,
    zones,
)
from deconflict.service.context import (
    IMMEDIATE,
    CheckpointListener,
    Context,
    EntryListener,
    Listener,
    Outcome,
    SignatureMode,
)
from deconflict.service.facade_record import RecordFacade
from deconflict.service.picture import Pictures
from deconflict.service.signers import Signers
from deconflict.store import Store

__all__ = ["Service"]


class Service(RecordFacade):
    """The deconfliction use cases over one store: the stable facade, one documented forward per method.

    A write that appends a member's entry takes ``mode``: how that entry is signed (see
    :class:`SignatureMode`); by default with a key the service holds for the party.
    """

    def __init__(self, store: Store, *, clock: Clock = system_clock, checkpoint_interval_s: float = 60.0) -> None:
        self.store = store
        lock = threading.RLock()
        audiences: dict[str, dict[tuple[str, str], Any]] = {}
        self._ctx = Context(
            store=store,
            clock=clock,
            lock=lock,
            # a record written over (a restore, a failover) may number its conflicts and messages for others
            pictures=Pictures(store, lock, clock, on_dropped=lambda mid: _forget(audiences, mid)),
            signers=Signers(store, clock=clock),
            checkpoint_interval_s=checkpoint_interval_s,
            audiences=audiences,
        )
        self.service_key: signing.KeyPair = self._ctx.signers.service_key
        """The service's own key: signs its entries and the checkpoints."""
        self.listeners: list[Listener] = self._ctx.listeners
        """Called with (mechanism id, last sequence number) after each committed change."""
        self.checkpoint_listeners: list[CheckpointListener] = self._ctx.checkpoint_listeners
        """Called with (mechanism id, checkpoint document) after each signed checkpoint."""
        self.entry_listeners: list[EntryListener] = self._ctx.entry_listeners
        """Called with (mechanism id, the entry documents a write of this process appended) after it commits,
        before the listeners hear of its last entry."""

    @classmethod
    def open(cls, db: str, *, migrate: bool = True, clock: Clock = system_clock, read_only: bool = False) -> Service:
        """The service over the database ``db`` (an SQLite file or a database URL); ``read_only``: to read
        what it holds, and nothing else (:func:`~deconflict.store.open_store`)."""
        from deconflict.store import open_store

        return cls(open_store(db, migrate=migrate, read_only=read_only), clock=clock)

    # --- the context, as attributes -----------------------------------------------------------

    @property
    def context(self) -> Context:
        """What the use cases are given."""
        return self._ctx

    @property
    def clock(self) -> Clock:
        return self._ctx.clock

    @clock.setter
    def clock(self, value: Clock) -> None:
        self._ctx.clock = value

    @property
    def checkpoint_interval_s(self) -> float:
        """Every this many seconds (at a tick), a chain that has grown gets a signed checkpoint."""
        return self._ctx.checkpoint_interval_s

    @checkpoint_interval_s.setter
    def checkpoint_interval_s(self, value: float) -> None:
        self._ctx.checkpoint_interval_s = value

    # --- signing ------------------------------------------------------------------------------

    def _mode(self, mode: SignatureMode | None) -> SignatureMode:
        """The mode a write runs in: the one the caller passed (checked against the clock), else immediate.

        A party that holds its own key calls a write twice: ``mode=SignatureMode(prepare=True)`` (raises
        :class:`Prepared` with the entry to sign, writes nothing), then ``mode=SignatureMode(signed=...)``
        with its signature of that entry's hash (the clock pinned to the prepared instant).
        """
        if mode is None:
            return IMMEDIATE
        mode.check(self._ctx.clock)
        return mode

    # --- mechanisms, members, keys, tokens ----------------------------------------------------

    def mechanism_ids(self) -> list[str]:
        """Every mechanism in the store, by id."""
        return mechanisms.mechanism_ids(self._ctx)

    def mechanism(self, mechanism_id: str) -> Mechanism:
        """A mechanism with its current members and zones."""
        return self._ctx.pictures.get(mechanism_id).mechanism

    def member(self, mechanism_id: str, member_id: str) -> Member:
        """A member of a mechanism; raises NotFound."""
        return mechanisms.member(self._ctx, mechanism_id, member_id)

    def next_member_id(self, mechanism_id: str, party: str) -> str:
        """The first free member id of the form ``<party>-<n>``."""
        return mechanisms.next_member_id(self._ctx, mechanism_id, party)

    def declare_mechanism(
        self,
        *,
        mechanism: Mechanism,
        keys: dict[str, str] | None = None,
        key_proofs: dict[str, str] | None = None,
        demo_custody: bool = False,
        mode: SignatureMode | None = None,
    ) -> Outcome:
        """Record a new mechanism, its parties' keys (``keys``: party → public key; ``key_proofs``: party →
        proof of possession) and its initial zones."""
        return mechanisms.declare_mechanism(
            self._ctx,
            mechanism=mechanism,
            party_keys=keys,
            key_proofs=key_proofs,
            demo_custody=demo_custody,
            mode=self._mode(mode),
        )

    def check_member(self, *, mechanism_id: str, member: dict[str, Any] | Member) -> Member:
        """:meth:`add_member`'s checks, nothing written."""
        return mechanisms.check_member(self._ctx, mechanism_id=mechanism_id, member=member)

    def add_member(self, *, mechanism_id: str, member: dict[str, Any] | Member) -> Member:
        """Add a member (an account acting for a party, a facilitator or an observer)."""
        return mechanisms.add_member(self._ctx, mechanism_id=mechanism_id, member=member)

    def register_key(
        self,
        *,
        mechanism_id: str,
        party: str,
        public_key: str,
        possession: str | None = None,
        authorised_by: str | None = None,
        authorisation: str | None = None,
        mode: SignatureMode | None = None,
        check_only: bool = False,
    ) -> dict[str, Any]:
        """Register a party's new public key with its proof of possession and, while the party has a key
        in force, that key's authorisation (see ``service.keys``); returns the key. ``check_only``: refuse as
        it would, write nothing (an empty document returned)."""
        return keys.register_key(
            self._ctx,
            mechanism_id=mechanism_id,
            party=party,
            public_key=public_key,
            possession=possession,
            authorised_by=authorised_by,
            authorisation=authorisation,
            mode=self._mode(mode),
            check_only=check_only,
        )

    def revoke_key(self, *, mechanism_id: str, key_id: str, reason: str = "") -> dict[str, Any]:
        """The operator retires a key: entries after this one signed with it do not verify."""
        return keys.revoke_key(self._ctx, mechanism_id=mechanism_id, key_id=key_id, reason=reason)

    def check_key_revocation(self, *, mechanism_id: str, key_id: str) -> None:
        """Raise what :meth:`revoke_key` would raise of the key (unknown, already revoked, the service's own),
        writing nothing."""
        self._ctx.pictures.get(mechanism_id)
        keys.revocable(self._ctx, mechanism_id, key_id)

    def keys(self, mechanism_id: str) -> list[dict[str, Any]]:
        """The mechanism's public keys and their fingerprints, as its record registered them."""
        return keys.keys(self._ctx, mechanism_id)

    def key(self, mechanism_id: str, key_id: str) -> dict[str, Any]:
        """A registered key; raises NotFound."""
        return queries.key(self._ctx, mechanism_id, key_id)

    def issue_token(self, *, mechanism_id: str, member_id: str, label: str = "") -> str:
        """A new bearer token for a member, returned once; only its hash is stored."""
        return credentials.issue_token(self._ctx, mechanism_id=mechanism_id, member_id=member_id, label=label)

    def revoke_tokens(self, *, mechanism_id: str, member_id: str) -> int:
        """Revoke every live token of a member; returns how many were revoked."""
        return credentials.revoke_tokens(self._ctx, mechanism_id=mechanism_id, member_id=member_id)

    def authenticate_cached(self, token: str) -> tuple[str, Member] | None | Literal[False]:
        """Like :meth:`authenticate` from a cache of recent answers; False when the cache cannot say."""
        return credentials.authenticate_cached(self._ctx, token)

    def authenticate(self, token: str) -> tuple[str, Member] | None:
        """(mechanism id, member) for a live token, or None."""
        return credentials.authenticate(self._ctx, token)

    # --- activities ---------------------------------------------------------------------------

    def activity(self, mechanism_id: str, activity_id: str) -> Activity:
        """The current version of an activity; raises NotFound."""
        return queries.activity(self._ctx, mechanism_id, activity_id)

    def activity_history(self, mechanism_id: str, activity_id: str) -> list[dict[str, Any]]:
        """Every version of an activity, oldest first, with who made it and when."""
        return notices.activity_history(self._ctx, mechanism_id, activity_id)

    def activities(
        self,
        mechanism_id: str,
        *,
        party: str | None = None,
        start: datetime | None = None,
        end: datetime | None = None,
        include_closed: bool = False,
    ) -> list[Activity]:
        """Activities, optionally of one party and overlapping a window."""
        return notices.activities(
            self._ctx, mechanism_id, party=party, start=start, end=end, include_closed=include_closed
        )

    def notify(
        self,
        *,
        mechanism_id: str,
        actor: str,
        kind: str,
        volumes: list[dict[str, Any]],
        activity_id: str | None = None,
        title: str = "",
        mode: SignatureMode | None = None,
    ) -> Outcome:
        """Notify a planned activity: validate, apply the rules, detect, store and record in one transaction."""
        return notices.notify(
            self._ctx,
            mechanism_id=mechanism_id,
            actor=actor,
            kind=kind,
            volumes=volumes,
            activity_id=activity_id,
            title=title,
            mode=self._mode(mode),
        )

    def notify_many(self, *, mechanism_id: str, batch: list[notices.NewNotice]) -> Iterator[notices.Answers]:
        """Several members' notices, each signed by a key the service holds: for each (by its place in the
        list), its outcome or the error notifying it raised, as they are on the disk (recorded together in
        one transaction, in order, each checked against those before it as if sent one by one)."""
        return notices.notify_many(self._ctx, mechanism_id=mechanism_id, notices=batch)

    def preview_notice(
        self, *, mechanism_id: str, actor: str, kind: str, volumes: list[dict[str, Any]]
    ) -> list[dict[str, Any]]:
        """The conflicts a notice would raise if it were sent now; nothing is written or recorded."""
        return notices.preview_notice(self._ctx, mechanism_id=mechanism_id, actor=actor, kind=kind, volumes=volumes)

    def amend(
        self,
        *,
        mechanism_id: str,
        actor: str,
        activity_id: str,
        seen_version: int,
        volumes: list[dict[str, Any]] | None = None,
        kind: str | None = None,
        title: str | None = None,
        mode: SignatureMode | None = None,
    ) -> Outcome:
        """A new version of an activity; ``seen_version`` must be the current one."""
        return notices.amend(
            self._ctx,
            mechanism_id=mechanism_id,
            actor=actor,
            activity_id=activity_id,
            seen_version=seen_version,
            volumes=volumes,
            kind=kind,
            title=title,
            mode=self._mode(mode),
        )

    def cancel(
        self,
        *,
        mechanism_id: str,
        actor: str,
        activity_id: str,
        seen_version: int | None = None,
        mode: SignatureMode | None = None,
    ) -> Outcome:
        """Cancel an activity (a new version in state cancelled); its open conflicts are closed as amended."""
        return notices.cancel(
            self._ctx,
            mechanism_id=mechanism_id,
            actor=actor,
            activity_id=activity_id,
            seen_version=seen_version,
            mode=self._mode(mode),
        )

    # --- zones --------------------------------------------------------------------------------

    def zones(self, mechanism_id: str, *, include_withdrawn: bool = False) -> list[dict[str, Any]]:
        """The mechanism's zones in force (and the withdrawn ones, with ``include_withdrawn``)."""
        return zones.zones(self._ctx, mechanism_id, include_withdrawn=include_withdrawn)

    def declare_zone(
        self, *, mechanism_id: str, actor: str, zone: dict[str, Any], mode: SignatureMode | None = None
    ) -> Outcome:
        """Declare a zone owned by the actor's party; live activities it forbids raise conflicts."""
        return zones.declare_zone(self._ctx, mechanism_id=mechanism_id, actor=actor, zone=zone, mode=self._mode(mode))

    def withdraw_zone(
        self, *, mechanism_id: str, actor: str, zone_id: str, mode: SignatureMode | None = None
    ) -> Outcome:
        """Withdraw a zone (its owner only); the conflicts it raised close as withdrawn."""
        return zones.withdraw_zone(
            self._ctx, mechanism_id=mechanism_id, actor=actor, zone_id=zone_id, mode=self._mode(mode)
        )

    # --- conflicts ----------------------------------------------------------------------------

    def conflicts(
        self,
        mechanism_id: str,
        *,
        status: str | None = None,
        party: str | None = None,
        ending_after: datetime | None = None,
        activities: Collection[str] | None = None,
    ) -> list[dict[str, Any]]:
        """Conflicts with their status, newest last; ``status`` 'unresolved' means open or acknowledged;
        ``ending_after``: only those that still count after it (:func:`conflicts.ends_after`); ``activities``:
        only those of these activities."""
        return conflicts.conflicts(
            self._ctx, mechanism_id, status=status, party=party, ending_after=ending_after, activities=activities
        )

    def live_picture(self, mechanism_id: str, reader: Member) -> tuple[list[Activity], list[dict[str, Any]]]:
        """The activities and conflicts of the live picture as ``reader`` may see it (``GET
        .../picture.geojson``, ``.kml``, ``.kmz``, which GIS clients poll; the page and the TAK bridge read the
        same through the API): the activities in force or to come and those that ended within
        :data:`~deconflict.model.LIVE_KEEPS_S`, another party's notice seen in part judged by the parts the
        reader sees, never by its hidden end (as ``GET .../activities?start=``); every open conflict
        whatever its window, those acknowledged that still count (:func:`conflicts.ends_after`), and every
        conflict of an activity listed (under ``conflicts-only`` they say which parts of another party's
        notice the reader sees, resolved or not). What ended before is replay's: unbounded, a year of
        operation put every activity ever notified in each picture."""
        since = self.clock() - timedelta(seconds=LIVE_KEEPS_S)
        disclosure = self.mechanism(mechanism_id).rules.disclosure
        candidates = self.activities(mechanism_id, start=since)  # a part never ends after its notice
        every = conflicts.live(self._ctx, mechanism_id, since=since, activities=[a.id for a in candidates])
        visible = [c for c in every if sees_conflict(reader, c)]
        activities = []
        for a in candidates:
            if sees_whole_notices(reader, disclosure, a.party) or listed_part(
                activity_to_doc(a), visible, reader, start=since
            ):
                activities.append(a)
        listed = {a.id for a in activities}
        kept = [
            c
            for c in every
            if c["status"] == "open"
            or c.get("activity") in listed
            or c.get("other_activity") in listed
            or (c["status"] == "acknowledged" and conflicts.ends_after(c, since))
        ]
        return activities, kept

    def audiences(
        self, mechanism_id: str, entries: list[dict[str, Any]], *, read: bool = True
    ) -> dict[tuple[str, str], Any] | None:
        """Who may see each conflict and message the follow-up entries among ``entries`` name (None: the
        tables would have to be read, and ``read`` is False)."""
        return queries.audiences(self._ctx, mechanism_id, entries, read=read)

    def conflict(self, mechanism_id: str, conflict_id: str) -> dict[str, Any]:
        """A conflict as members read it; raises NotFound."""
        return queries.conflict(self._ctx, mechanism_id, conflict_id)

    def acknowledge_conflict(
        self, *, mechanism_id: str, actor: str, conflict_id: str, mode: SignatureMode | None = None
    ) -> dict[str, Any]:
        """A party acknowledges a conflict it was alerted to."""
        return conflicts.acknowledge_conflict(
            self._ctx, mechanism_id=mechanism_id, actor=actor, conflict_id=conflict_id, mode=self._mode(mode)
        )

    def resolve_conflict(
        self,
        *,
        mechanism_id: str,
        actor: str,
        conflict_id: str,
        resolution: str,
        note: str = "",
        mode: SignatureMode | None = None,
    ) -> dict[str, Any]:
        """Close a conflict by hand as amended, accepted or escalated (a party it awaits, or the facilitator)."""
        return conflicts.resolve_conflict(
            self._ctx,
            mechanism_id=mechanism_id,
            actor=actor,
            conflict_id=conflict_id,
            resolution=resolution,
            note=note,
            mode=self._mode(mode),
        )

    # --- hotline and the duty loop ------------------------------------------------------------

    def send_message(
        self,
        *,
        mechanism_id: str,
        actor: str,
        template: str | None = None,
        params: dict[str, Any] | None = None,
        text: str | None = None,
        lang: str | None = None,
        to: list[str] | None = None,
        about: dict[str, str] | None = None,
        mode: SignatureMode | None = None,
    ) -> dict[str, Any]:
        """Send a standard message (template + params, agreed wording) or free text on the channel."""
        return hotline.send_message(
            self._ctx,
            mechanism_id=mechanism_id,
            actor=actor,
            template=template,
            params=params,
            text=text,
            lang=lang,
            to=to,
            about=about,
            mode=self._mode(mode),
        )

    def send_messages(self, *, mechanism_id: str, messages: list[hotline.Outgoing]) -> Iterator[hotline.Answers]:
        """Several members' messages, each signed by a key the service holds: for each (by its place in the
        list), the message as its sender reads it or the error sending it raised, as they are on the disk
        (those that settle nothing first, recorded in one transaction)."""
        return hotline.send_messages(self._ctx, mechanism_id=mechanism_id, messages=messages)

    def acknowledge_message(
        self, *, mechanism_id: str, actor: str, message_id: str, mode: SignatureMode | None = None
    ) -> dict[str, Any]:
        """A recipient acknowledges a message; a late answer to a line check restores the line."""
        return hotline.acknowledge_message(
            self._ctx, mechanism_id=mechanism_id, actor=actor, message_id=message_id, mode=self._mode(mode)
        )

    def message(self, mechanism_id: str, message_id: str, *, reader: Member) -> dict[str, Any]:
        """A message worded for ``reader``, with where it stands; raises NotFound."""
        return hotline.message(self._ctx, mechanism_id, message_id, reader=reader)

    def messages(
        self,
        mechanism_id: str,
        *,
        reader: Member,
        after_seq: int = 0,
        limit: int = 500,
        newest: bool = False,
        awaiting: bool = False,
    ) -> list[dict[str, Any]]:
        """Messages the reader may see, in order, worded in the reader's language: the first ``limit`` after
        ``after_seq``, or with ``newest`` the last ``limit`` of them; with ``awaiting``, only those that wait
        on the reader's party for its acknowledgement."""
        return hotline.messages(
            self._ctx,
            mechanism_id,
            reader=reader,
            after_seq=after_seq,
            limit=limit,
            newest=newest,
            awaiting=awaiting,
        )

    def waiting(self, mechanism_id: str, *, reader: Member) -> dict[str, Any]:
        """What waits on the reader's party now, soonest deadline first (see :func:`duty.waiting`)."""
        return duty.waiting(self._ctx, mechanism_id, reader=reader)

    def line_status(self, mechanism_id: str) -> dict[str, str]:
        """Each party's line: up, pending, late or down."""
        return duty.line_status(self._ctx, mechanism_id)

    def tick(self, *, snapshots: bool = True) -> int:
        """Record what stored times make due now: escalation steps, line checks, lines down, the tactical
        picture moving on, and a checkpoint when one is due; then the next replay snapshot due, unless
        ``snapshots`` is False (a server writes them beside the tick: :meth:`write_due_snapshots`). Returns
        entries written.

        Driven by stored instants, not sleeping tasks: after a restart the first tick records
        exactly the steps that fell due while the service was down.
        """
        return duty.tick(self._ctx, snapshots=snapshots)

    def overdue_steps(self, before: datetime) -> int:
        """Escalation steps and line checks that fell due before ``before`` and are not in their record, in every
        mechanism (:func:`deconflict.service.duty.overdue_steps`)."""
        return sum(duty.overdue_steps(self._ctx, m, before) for m in self.mechanism_ids())

    def release_duty(self) -> None:
        """Give up the duty lease this process holds, when it stops cleanly: another process takes over the
        duty loop at its next tick, not :data:`~deconflict.service.ticker.LEASE_S` later."""
        duty.release(self._ctx)

    def warm(self) -> dict[str, int | None]:
        """Build what the first write in each mechanism would otherwise build under its lock (the record's
        authority rules, read from entry 1: :func:`~deconflict.service.rules.warm`), without holding the lock:
        a server calls it as it starts. For each mechanism, the entry its state reflects (None: a write had
        built one already)."""
        return {mechanism_id: rules.warm(self._ctx, mechanism_id) for mechanism_id in self.mechanism_ids()}

    def write_due_snapshots(self) -> None:
        """Write the next replay snapshot due in each mechanism, at most the duty loop's share of a core,
        when this process held the duty lease at its last tick (a failure is logged, and tried again later)."""
        duty.write_due_snapshots(self._ctx)

    # --- the tactical picture -----------------------------------------------------------------

    def report_tracks(self, *, mechanism_id: str, actor: str, reports: list[dict[str, Any]]) -> dict[str, Any]:
        """Store a batch of a party's position reports, then check the tactical picture at once."""
        return tracks.report_tracks(self._ctx, mechanism_id=mechanism_id, actor=actor, reports=reports)

    def contact_lost(self, mechanism_id: str, conflicts: list[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
        """For each unresolved tracks conflict among ``conflicts``, its tracks no longer in the picture (id →
        ``[{"track", "last_report"}]``; those with both tracks reporting are left out)."""
        return tracks.contact_lost(self._ctx, mechanism_id, conflicts)

    def tracks(self, mechanism_id: str, *, reader: Member) -> list[dict[str, Any]]:
        """Tracks in the picture now that ``reader`` may see, each flown on to now."""
        return tracks.tracks(self._ctx, mechanism_id, reader=reader)


def _forget(kept: dict[str, Any], mechanism_id: str) -> None:
    """Let go of what ``kept`` holds of a mechanism."""
    kept.pop(mechanism_id, None)
