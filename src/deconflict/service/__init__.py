"""The use cases: the one place that joins the domain, detection, the store and the record.

Every use case validates its input first, then, in one transaction, appends its record
entries and applies them to the tables; nothing is written when anything fails. The
in-memory volume index of each mechanism follows the committed state.

Every entry is signed as it is appended (see :mod:`deconflict.signing`): the service's own
entries with the service's key; a member's entry with its party's key. A party that holds its
own key runs a use case twice: once *prepared* (:meth:`Service.acting` with ``prepare``; the
use case stops at the entry it would append and returns it unsigned, writing nothing), then
with the signature it made over that entry's hash on its side (``signed``). The second run
pins the clock to the prepared time; if the record moved on in between, the hash differs and
the party prepares again. Keys the service holds for parties exist in the demo only.
"""

from __future__ import annotations

import functools
import hashlib
import re
import secrets
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, TypeVar

import numpy as np
import shapely
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from deconflict import hotline, ledger, projection, replay, signing
from deconflict.clock import Clock, iso, parse_utc, system_clock
from deconflict.detect import (
    SeparationFinding,
    ShortNotice,
    ZoneFinding,
    separation_findings,
    short_notice,
    zone_applies,
    zone_findings,
)
from deconflict.disclosure import overlap_part, sees_message
from deconflict.errors import Forbidden, InvalidInput, InvalidState, NotFound, StaleVersion
from deconflict.formats.docs import (
    activity_from_doc,
    activity_to_doc,
    choice,
    identifier,
    parse_member,
    parse_track_reports,
    parse_volumes,
    parse_zone,
    zone_from_doc,
    zone_to_doc,
)
from deconflict.geo import WGS84, Frame
from deconflict.mechanisms import mechanism_from_record, mechanism_to_doc
from deconflict.model import (
    MANUAL_RESOLUTIONS,
    Activity,
    ActivityKind,
    ActivityState,
    ConflictKind,
    ConflictStatus,
    Disclosure,
    Mechanism,
    Member,
    Resolution,
    Role,
    Volume,
    Zone,
    ZoneKind,
)
from deconflict.store import Store
from deconflict.store.schema import (
    ActivityRow,
    ActivityVersionRow,
    CheckpointRow,
    ConflictRow,
    CustodyKeyRow,
    KeyRow,
    LedgerEntry,
    MechanismRow,
    MemberRow,
    MessageRow,
    TokenRow,
    TrackReportRow,
    TrackRow,
    ZoneRow,
)
from deconflict.tactical import Tracks, find_track_conflicts, tracks_in_volumes
from deconflict.volumes import VolumeIndex

F = TypeVar("F", bound=Callable[..., Any])
SYSTEM = "system"
"""Actor of entries the service makes itself (detected conflicts, automatic resolutions)."""
OPERATOR = "operator"
"""Actor of entries made by the installation's operator (declaring a mechanism)."""
LIVE_STATES = (ActivityState.NOTIFIED, ActivityState.ACKNOWLEDGED, ActivityState.ACTIVE)


@dataclass
class _Live:
    """A mechanism's in-memory picture: its frame, volume index, zones and activity kinds."""

    mechanism: Mechanism
    frame: Frame
    allowed_area: Any
    index: VolumeIndex
    zones: dict[str, tuple[Zone, Any, float]] = field(default_factory=dict)
    activities: dict[str, tuple[str, ActivityKind, tuple[str, ...], int]] = field(default_factory=dict)
    """activity id → (party, kind, volume ids, version) for live activities."""
    head: ledger.Head = ledger.Head(0, ledger.GENESIS_HASH)
    """The record's head this picture reflects."""
    activity_ids: dict[str, str] = field(default_factory=dict)
    """Every activity id ever notified → its party."""
    party_counts: Counter[str] = field(default_factory=Counter)
    """How many activities each party has notified."""
    conflict_count: int = 0
    message_count: int = 0
    checked_at: float = 0.0
    """When (monotonic seconds) the stored head was last compared with ``head``."""
    checkpointed_at: float = 0.0
    """When (monotonic seconds) the last checkpoint was signed (0: not since this picture was built)."""


@dataclass(frozen=True)
class Outcome:
    """What a use case changed: the activity (if any) and the conflicts it raised or closed."""

    activity: Activity | None = None
    raised: tuple[dict[str, Any], ...] = ()
    resolved: tuple[str, ...] = ()
    seq: int = 0
    """Sequence number of the last record entry written."""


@dataclass(frozen=True)
class Signed:
    """A signature a party made on its side over the hash of the entry a prepared request appends."""

    at: datetime
    """The prepared entry's time; the use case runs again at this instant."""
    entry_hash: str
    key_id: str
    signature: str


class Prepared(Exception):  # noqa: N818 - an outcome carried out of the use case, not an error
    """A use case run with ``prepare`` stopped at the entry it would append: here it is, unsigned."""

    def __init__(self, entry: dict[str, Any]) -> None:
        super().__init__(entry["hash"])
        self.entry = entry


@dataclass
class _Acting:
    prepare: bool
    signed: Signed | None
    used: bool = False


MEMBER_PHRASES: dict[Role, frozenset[str]] = {
    Role.PARTY: frozenset(
        {
            "acknowledged",
            "holding",
            "acknowledged_amending",
            "proceeding_as_notified",
            "query_activity",
            "incident_at",
            "activity_notified",
            "line_check_reply",
        }
    ),
    Role.FACILITATOR: frozenset({"acknowledged", "query_activity", "incident_at", "line_check_reply"}),
    Role.OBSERVER: frozenset(),
}
"""The standard phrases each role may send: a facilitator has no activity to hold, amend or proceed with."""

ACK_PHRASES = frozenset({"acknowledged", "acknowledged_amending", "holding", "proceeding_as_notified"})
"""Standard responses that acknowledge what their ``ref`` names, when the sender's party is awaited."""

PREPARED_TTL_S = 120.0
"""How long a prepared entry may wait for its signature."""
CLOCK_SKEW_S = 5.0
"""How far in the future a signed time may lie (clocks of the two sides differ a little)."""


class _StaleRecord(Exception):
    """The record grew in another process since the in-memory picture was built."""


def _retrying(fn: F) -> F:
    """Run a write use case again, once, on a fresh picture when another process got there first."""

    @functools.wraps(fn)
    def wrapper(self: Any, *args: Any, **kwargs: Any) -> Any:
        try:
            return fn(self, *args, **kwargs)
        except _StaleRecord:
            return fn(self, *args, **kwargs)

    return wrapper  # type: ignore[return-value]


class Service:
    """The deconfliction use cases over one store."""

    def __init__(self, store: Store, *, clock: Clock = system_clock, checkpoint_interval_s: float = 60.0) -> None:
        self.store = store
        self.clock = clock
        self.checkpoint_interval_s = checkpoint_interval_s
        """Every this many seconds (at a tick), a chain that has grown gets a signed checkpoint."""
        self._acting_now: _Acting | None = None
        self._checkpoint_seq: dict[str, int] = {}
        """mechanism → sequence number of its newest signed checkpoint, as this process last saw it."""
        self._custody: dict[str, signing.KeyPair] = {}
        self.service_key = self._load_service_key()
        self._live: dict[str, _Live] = {}
        self._lock = threading.RLock()
        self._token_cache: dict[str, tuple[float, tuple[str, Member] | None]] = {}
        self.listeners: list[Callable[[str, int], None]] = []
        """Called with (mechanism id, last sequence number) after each committed change."""
        self.checkpoint_listeners: list[Callable[[str, dict[str, Any]], None]] = []
        """Called with (mechanism id, checkpoint document) after each signed checkpoint."""

    @classmethod
    def open(cls, db: str, *, migrate: bool = True, clock: Clock = system_clock) -> Service:
        """The service over the database ``db`` (an SQLite file or a database URL)."""
        from deconflict.store import open_store

        return cls(open_store(db, migrate=migrate), clock=clock)

    # --- reading ---------------------------------------------------------------------------

    def mechanism_ids(self) -> list[str]:
        with self.store.read() as s:
            return list(s.scalars(select(MechanismRow.id).order_by(MechanismRow.id)))

    def mechanism(self, mechanism_id: str) -> Mechanism:
        """A mechanism with its current members and zones."""
        return self._get_live(mechanism_id).mechanism

    def member(self, mechanism_id: str, member_id: str) -> Member:
        for attempt in range(2):
            for m in self.mechanism(mechanism_id).members:
                if m.id == member_id:
                    return m
            if attempt == 0:  # another process (deconflict member add) may have added it
                with self.store.read() as s:
                    if s.get(MemberRow, (mechanism_id, member_id)) is None:
                        break
                with self._lock:
                    self._live.pop(mechanism_id, None)
        raise NotFound(f"member {member_id!r} is not a member of mechanism {mechanism_id!r}", field="member")

    def activity(self, mechanism_id: str, activity_id: str) -> Activity:
        with self.store.read() as s:
            row = s.get(ActivityRow, (mechanism_id, activity_id))
            if row is None:
                raise NotFound(
                    f"activity {activity_id!r} does not exist in mechanism {mechanism_id!r}", field="activity"
                )
            return activity_from_doc(row.doc, mechanism=mechanism_id)

    def activity_history(self, mechanism_id: str, activity_id: str) -> list[dict[str, Any]]:
        """Every version of an activity, oldest first, with who made it and when."""
        self.activity(mechanism_id, activity_id)
        with self.store.read() as s:
            rows = s.scalars(
                select(ActivityVersionRow)
                .where(ActivityVersionRow.mechanism_id == mechanism_id, ActivityVersionRow.activity_id == activity_id)
                .order_by(ActivityVersionRow.version)
            )
            return [
                {"version": r.version, "at": iso(r.at), "actor": r.actor, "seq": r.seq, "activity": r.doc} for r in rows
            ]

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
        self._get_live(mechanism_id)
        stmt = select(ActivityRow).where(ActivityRow.mechanism_id == mechanism_id)
        if party is not None:
            stmt = stmt.where(ActivityRow.party == party)
        if start is not None:
            stmt = stmt.where(ActivityRow.end > start)
        if end is not None:
            stmt = stmt.where(ActivityRow.start < end)
        if not include_closed:
            stmt = stmt.where(ActivityRow.state.in_([s.value for s in LIVE_STATES]))
        with self.store.read() as s:
            return [
                activity_from_doc(r.doc, mechanism=mechanism_id) for r in s.scalars(stmt.order_by(ActivityRow.start))
            ]

    def zones(self, mechanism_id: str, *, include_withdrawn: bool = False) -> list[dict[str, Any]]:
        self._get_live(mechanism_id)
        stmt = select(ZoneRow).where(ZoneRow.mechanism_id == mechanism_id)
        if not include_withdrawn:
            stmt = stmt.where(ZoneRow.withdrawn_at.is_(None))
        with self.store.read() as s:
            return [
                {**r.doc, "withdrawn_at": iso(r.withdrawn_at) if r.withdrawn_at else None}
                for r in s.scalars(stmt.order_by(ZoneRow.id))
            ]

    def conflicts(
        self, mechanism_id: str, *, status: str | None = None, party: str | None = None
    ) -> list[dict[str, Any]]:
        """Conflicts with their status, newest last; ``status`` 'unresolved' means open or acknowledged."""
        self._get_live(mechanism_id)
        stmt = select(ConflictRow).where(ConflictRow.mechanism_id == mechanism_id)
        if status == "unresolved":
            stmt = stmt.where(ConflictRow.status != ConflictStatus.RESOLVED.value)
        elif status is not None:
            stmt = stmt.where(ConflictRow.status == choice(status, ConflictStatus, "status").value)
        with self.store.read() as s:
            rows = list(s.scalars(stmt.order_by(ConflictRow.detected_at, ConflictRow.id)))
        out = [_conflict_public(r) for r in rows]
        if party is not None:
            out = [c for c in out if party in c["parties"]]
        return out

    def conflict(self, mechanism_id: str, conflict_id: str) -> dict[str, Any]:
        with self.store.read() as s:
            row = s.get(ConflictRow, (mechanism_id, conflict_id))
            if row is None:
                raise NotFound(
                    f"conflict {conflict_id!r} does not exist in mechanism {mechanism_id!r}", field="conflict"
                )
            return _conflict_public(row)

    def replay(self, mechanism_id: str, at: datetime | None) -> dict[str, Any]:
        """The mechanism's state as it stood at ``at`` (now when None), rebuilt from its record alone."""
        self._get_live(mechanism_id)
        stmt = select(LedgerEntry).where(LedgerEntry.mechanism_id == mechanism_id)
        if at is not None:
            stmt = stmt.where(LedgerEntry.at <= at)
        with self.store.read() as s:
            rows = s.scalars(stmt.order_by(LedgerEntry.seq)).yield_per(2000)
            return replay.replay((ledger.entry_doc(r) for r in rows), mechanism=mechanism_id, at=at)

    def verify(self, mechanism_id: str) -> ledger.ChainReport:
        """Recompute the mechanism's record chain."""
        with self.store.read() as s:
            return ledger.verify_store(s, mechanism_id)

    # --- mechanisms and members --------------------------------------------------------------

    def declare_mechanism(
        self, *, mechanism: Mechanism, keys: dict[str, str] | None = None, demo_custody: bool = False
    ) -> Outcome:
        """Record a new mechanism (its first entry, carrying the service's public key), the parties'
        public keys, and its initial zones.

        ``keys`` maps a party to the public key it generated on its side. With ``demo_custody``
        the service makes and holds a key for every other party: for the demo only, and the
        record says so. A party with neither cannot act until its key is registered. Initial
        zones are declared by their owner when the service holds the owner's key, otherwise by
        the operator, as written in the agreed mechanism file.
        """
        keys = dict(keys or {})
        signers = {m.party for m in mechanism.members}
        unknown = set(keys) - signers
        if unknown:
            raise InvalidInput(f"keys: {', '.join(sorted(unknown))} has no member in the mechanism", field="keys")
        with self._lock:
            with self.store.read() as s:
                if s.get(MechanismRow, mechanism.id) is not None:
                    raise InvalidState(f"mechanism {mechanism.id!r} already exists", field="id")
            public = {party: signing.public_key(k) for party, k in keys.items()}
            now = self._now()
            held: set[str] = set()
            with self._write() as s:
                doc = mechanism_to_doc(mechanism)
                doc["service_key"] = {"key_id": self.service_key.key_id, "public_key": self.service_key.public_key}
                seq = self._record(s, mechanism.id, OPERATOR, "mechanism.declared", doc, now)
                for party in sorted(signers):
                    if party in public:
                        seq = self._register_key(s, mechanism.id, party, public[party], signing.PARTY_CUSTODY, now)
                    elif demo_custody:
                        pair = signing.KeyPair.generate()
                        s.add(
                            CustodyKeyRow(
                                owner=f"{mechanism.id}/{party}",
                                key_id=pair.key_id,
                                seed=signing.b64(pair.seed),
                                note="demo only: a real party keeps its private key on its own side",
                                created_at=now,
                            )
                        )
                        seq = self._register_key(s, mechanism.id, party, pair.public_key, signing.DEMO_CUSTODY, now)
                        held.add(party)
            self._live.pop(mechanism.id, None)
            for zone in mechanism.zones:
                if zone.owner in held:
                    owner = next(m.id for m in mechanism.members if m.party == zone.owner and m.role is Role.PARTY)
                    seq = self.declare_zone(mechanism_id=mechanism.id, actor=owner, zone=zone_to_doc(zone)).seq
                else:
                    seq = self.declare_zone(mechanism_id=mechanism.id, actor=OPERATOR, zone=zone_to_doc(zone)).seq
            return Outcome(seq=seq)

    def _register_key(
        self, s: Session, mechanism_id: str, owner: str, public_key: str, custody: str, at: datetime
    ) -> int:
        payload = {"key_id": signing.key_id(public_key), "owner": owner, "public_key": public_key, "custody": custody}
        return self._record(s, mechanism_id, OPERATOR, "key.registered", payload, at)

    @_retrying
    def register_key(self, *, mechanism_id: str, party: str, public_key: str) -> dict[str, Any]:
        """The operator registers a party's public key (generated on the party's side); returns the key."""
        with self._lock:
            live = self._refresh(mechanism_id)
            signers = {m.party for m in live.mechanism.members}
            if party not in signers:
                raise InvalidInput(
                    f"party: {party!r} has no member in mechanism {mechanism_id!r}; "
                    f"members act for {', '.join(sorted(signers))}",
                    field="party",
                )
            public = signing.public_key(public_key)
            kid = signing.key_id(public)
            with self.store.read() as s:
                if s.get(KeyRow, (mechanism_id, kid)) is not None:
                    raise InvalidState(f"public_key: key {kid} is already registered", field="public_key")
            with self._write() as s:
                self._register_key(s, mechanism_id, party, public, signing.PARTY_CUSTODY, self._now())
            return self.key(mechanism_id, kid)

    @_retrying
    def revoke_key(self, *, mechanism_id: str, key_id: str, reason: str = "") -> dict[str, Any]:
        """The operator retires a key: entries after this one signed with it do not verify."""
        with self._lock:
            self._refresh(mechanism_id)
            current = self.key(mechanism_id, key_id)
            if current["revoked_seq"] is not None:
                raise InvalidState(f"key {key_id} was already revoked at entry {current['revoked_seq']}")
            if current["owner"] == ledger.SERVICE:
                raise InvalidState("the service's own key cannot be revoked this way")
            with self._write() as s:
                payload = {"key_id": key_id, "reason": reason[:200]}
                self._record(s, mechanism_id, OPERATOR, "key.revoked", payload, self._now())
                s.execute(
                    CustodyKeyRow.__table__.delete().where(
                        CustodyKeyRow.owner == f"{mechanism_id}/{current['owner']}", CustodyKeyRow.key_id == key_id
                    )
                )
            self._custody.pop(f"{mechanism_id}/{current['owner']}", None)
            return self.key(mechanism_id, key_id)

    def keys(self, mechanism_id: str) -> list[dict[str, Any]]:
        """The mechanism's public keys and their fingerprints, as its record registered them."""
        self._get_live(mechanism_id)
        with self.store.read() as s:
            rows = s.scalars(select(KeyRow).where(KeyRow.mechanism_id == mechanism_id).order_by(KeyRow.registered_seq))
            return [_key_doc(r) for r in rows]

    def key(self, mechanism_id: str, key_id: str) -> dict[str, Any]:
        with self.store.read() as s:
            row = s.get(KeyRow, (mechanism_id, key_id))
            if row is None:
                raise NotFound(f"key {key_id!r} is not registered in mechanism {mechanism_id!r}", field="key_id")
            return _key_doc(row)

    # --- signing -------------------------------------------------------------------------------

    @contextmanager
    def acting(self, *, prepare: bool = False, signed: Signed | None = None) -> Iterator[None]:
        """Run one use case prepared (it raises :class:`Prepared` with the entry to sign) or with the
        party's signature of that entry (the clock is pinned to the prepared time)."""
        if signed is not None:
            now = self.clock()
            if signed.at > now + timedelta(seconds=CLOCK_SKEW_S):
                raise InvalidInput("signed_at: lies in the future; prepare the request again", field="signed_at")
            if signed.at < now - timedelta(seconds=PREPARED_TTL_S):
                raise StaleVersion(
                    f"signed_at: the prepared entry is more than {PREPARED_TTL_S:g} s old; prepare and sign again",
                    field="signed_at",
                )
        with self._lock:
            self._acting_now = _Acting(prepare, signed)
            try:
                yield
            finally:
                self._acting_now = None

    def _now(self) -> datetime:
        acting = self._acting_now
        if acting is not None and acting.signed is not None:
            return acting.signed.at
        return self.clock()

    def _load_service_key(self) -> signing.KeyPair:
        with self.store.transaction() as s:
            row = s.get(CustodyKeyRow, ledger.SERVICE)
            if row is None:
                pair = signing.KeyPair.generate()
                s.add(
                    CustodyKeyRow(
                        owner=ledger.SERVICE,
                        key_id=pair.key_id,
                        seed=signing.b64(pair.seed),
                        note="the service's own key: signs its entries and the checkpoints",
                        created_at=self.clock(),
                    )
                )
                return pair
            return signing.KeyPair.from_seed(signing.unb64(row.seed, field="seed", size=32))

    def _signer(self, s: Session, mechanism_id: str, actor: str) -> ledger.Signer:
        """How the entry about to be appended for ``actor`` gets its signature."""
        if actor in ledger.SERVICE_ACTORS:
            key = self.service_key
            return lambda row: (key.key_id, key.sign_entry(row["hash"]))
        party = self._party_of(s, mechanism_id, actor)
        acting = self._acting_now
        if acting is not None and not acting.used and (acting.prepare or acting.signed is not None):
            acting.used = True
            if acting.prepare:
                return _stop_prepared
            assert acting.signed is not None
            return functools.partial(self._check_signed, s, mechanism_id, party, acting.signed)
        owner = f"{mechanism_id}/{party}"
        key = self._custody.get(owner)
        if key is None:
            row = s.get(CustodyKeyRow, owner)
            if row is None:
                raise Forbidden(
                    f"party {party} signs its own entries: prepare the request, sign the entry with "
                    f"{party}'s private key and send the signature (deconflict notify --key, or the Python client)"
                )
            key = self._custody[owner] = signing.KeyPair.from_seed(signing.unb64(row.seed, field="seed", size=32))
        return lambda row: (key.key_id, key.sign_entry(row["hash"]))

    @staticmethod
    def _check_signed(
        s: Session, mechanism_id: str, party: str, signed: Signed, row: dict[str, Any]
    ) -> tuple[str, str]:
        if row["hash"] != signed.entry_hash:
            raise StaleVersion(
                f"signature: the record moved on since the request was prepared (the entry would now be "
                f"number {row['seq']}, or the request differs); prepare and sign again",
                field="signature",
            )
        key = s.get(KeyRow, (mechanism_id, signed.key_id))
        if key is None or key.revoked_seq is not None:
            state = "is not registered" if key is None else f"was revoked at entry {key.revoked_seq}"
            raise Forbidden(f"signature: key {signed.key_id} {state} in mechanism {mechanism_id!r}")
        if key.owner != party:
            raise Forbidden(f"signature: key {signed.key_id} belongs to {key.owner}, not to {party}")
        if not signing.verify(key.public_key, signing.entry_message(row["hash"]), signed.signature):
            raise Forbidden(f"signature: does not verify with key {signed.key_id} over entry hash {row['hash']}")
        return signed.key_id, signed.signature

    def _party_of(self, s: Session, mechanism_id: str, actor: str) -> str:
        live = self._live.get(mechanism_id)
        if live is not None:
            for m in live.mechanism.members:
                if m.id == actor:
                    return m.party
        row = s.get(MemberRow, (mechanism_id, actor))
        if row is None:
            raise NotFound(f"member {actor!r} is not a member of mechanism {mechanism_id!r}", field="member")
        return row.party

    # --- checkpoints ---------------------------------------------------------------------------

    def checkpoint(self, mechanism_id: str) -> dict[str, Any] | None:
        """Sign the chain's head now (unless the last checkpoint already covers it); returns it or None."""
        with self._lock:
            live = self._refresh(mechanism_id)
            with self.store.read() as s:
                head = ledger.read_head(s, mechanism_id)
                last = s.scalar(select(func.max(CheckpointRow.seq)).where(CheckpointRow.mechanism_id == mechanism_id))
            self._checkpoint_seq[mechanism_id] = last or 0
            if head.seq == 0 or (last is not None and last >= head.seq):
                return None
            at = self.clock()
            message = signing.checkpoint_message(mechanism=mechanism_id, seq=head.seq, hash=head.hash, at=iso(at))
            signature = self.service_key.sign(message)
            with self.store.transaction() as s:
                s.add(
                    CheckpointRow(
                        mechanism_id=mechanism_id,
                        seq=head.seq,
                        hash=head.hash,
                        at=at,
                        key_id=self.service_key.key_id,
                        signature=signature,
                    )
                )
            live.checkpointed_at = time.monotonic()
            self._checkpoint_seq[mechanism_id] = head.seq
            doc = ledger.checkpoint_doc(
                mechanism=mechanism_id,
                seq=head.seq,
                hash=head.hash,
                at=at,
                key_id=self.service_key.key_id,
                signature=signature,
            )
        for listener in self.checkpoint_listeners:
            listener(mechanism_id, doc)
        return doc

    def latest_checkpoint_seq(self, mechanism_id: str) -> int:
        """The newest checkpoint's sequence number (0: none) without a query once known; the event
        stream asks at every wake-up and reads the checkpoint table only when this moves."""
        seq = self._checkpoint_seq.get(mechanism_id)
        if seq is None:
            with self.store.read() as s:
                found = s.scalar(select(func.max(CheckpointRow.seq)).where(CheckpointRow.mechanism_id == mechanism_id))
            seq = self._checkpoint_seq[mechanism_id] = found or 0
        return seq

    def checkpoints(
        self, mechanism_id: str, *, after: int = 0, limit: int = 1000, latest: bool = False
    ) -> list[dict[str, Any]]:
        """Signed checkpoints of entries after ``after``, oldest first (only the newest with ``latest``)."""
        self._get_live(mechanism_id)
        stmt = select(CheckpointRow).where(CheckpointRow.mechanism_id == mechanism_id, CheckpointRow.seq > after)
        if latest:
            stmt = stmt.order_by(CheckpointRow.seq.desc()).limit(1)
        else:
            stmt = stmt.order_by(CheckpointRow.seq).limit(limit)
        with self.store.read() as s:
            rows = s.scalars(stmt)
            return [
                ledger.checkpoint_doc(
                    mechanism=r.mechanism_id, seq=r.seq, hash=r.hash, at=r.at, key_id=r.key_id, signature=r.signature
                )
                for r in rows
            ]

    @_retrying
    def add_member(self, *, mechanism_id: str, member: dict[str, Any] | Member) -> Member:
        """Add a member (an account acting for a party, a facilitator or an observer)."""
        with self._lock:
            live = self._refresh(mechanism_id)
            m = member if isinstance(member, Member) else parse_member(member)
            if any(x.id == m.id for x in live.mechanism.members):
                raise InvalidState(f"member {m.id!r} already exists in mechanism {mechanism_id!r}", field="id")
            if m.role is Role.PARTY and m.party not in live.mechanism.parties():
                raise InvalidInput(
                    f"party: {m.party!r} is not a party of mechanism {mechanism_id!r}; "
                    f"parties are {', '.join(sorted(live.mechanism.parties()))}",
                    field="party",
                )
            with self._write() as s:
                self._record(s, mechanism_id, OPERATOR, "member.added", _member_doc(m), self._now())
            self._live.pop(mechanism_id, None)
            return m

    # --- credentials ---------------------------------------------------------------------------

    def issue_token(self, *, mechanism_id: str, member_id: str, label: str = "") -> str:
        """A new bearer token for a member, returned once; only its hash is stored."""
        self.member(mechanism_id, member_id)
        token = TOKEN_PREFIX + secrets.token_urlsafe(32)
        with self.store.transaction() as s:
            s.add(
                TokenRow(
                    token_hash=_token_hash(token),
                    mechanism_id=mechanism_id,
                    member_id=member_id,
                    label=label[:200],
                    created_at=self._now(),
                    revoked_at=None,
                )
            )
        return token

    def revoke_tokens(self, *, mechanism_id: str, member_id: str) -> int:
        """Revoke every live token of a member; returns how many were revoked."""
        self.member(mechanism_id, member_id)
        with self.store.transaction() as s:
            rows = s.scalars(
                select(TokenRow).where(
                    TokenRow.mechanism_id == mechanism_id,
                    TokenRow.member_id == member_id,
                    TokenRow.revoked_at.is_(None),
                )
            ).all()
            for row in rows:
                row.revoked_at = self._now()
        self._token_cache.clear()
        return len(rows)

    def authenticate_cached(self, token: str) -> tuple[str, Member] | None | bool:
        """Like :meth:`authenticate` from a cache of recent answers; False when the cache cannot say.

        Answers are kept for TOKEN_CACHE_S, so a revocation made by another process takes effect
        within that time (one made through this service at once).
        """
        hit = self._token_cache.get(token)
        if hit is None or hit[0] < time.monotonic():
            return False
        return hit[1]

    def authenticate(self, token: str) -> tuple[str, Member] | None:
        """(mechanism id, member) for a live token, or None."""
        found = self._authenticate(token)
        if len(self._token_cache) > 10_000:
            self._token_cache.clear()
        self._token_cache[token] = (time.monotonic() + TOKEN_CACHE_S, found)
        return found

    def _authenticate(self, token: str) -> tuple[str, Member] | None:
        if not token.startswith(TOKEN_PREFIX) or len(token) > 200:
            return None
        with self.store.read() as s:
            row = s.get(TokenRow, _token_hash(token))
            if row is None or row.revoked_at is not None:
                return None
            mechanism_id, member_id = row.mechanism_id, row.member_id
        return mechanism_id, self.member(mechanism_id, member_id)

    def next_member_id(self, mechanism_id: str, party: str) -> str:
        taken = {m.id for m in self.mechanism(mechanism_id).members}
        n = 1
        while f"{party}-{n}" in taken:
            n += 1
        return f"{party}-{n}"

    # --- activities ---------------------------------------------------------------------------

    @_retrying
    def notify(
        self,
        *,
        mechanism_id: str,
        actor: str,
        kind: str,
        volumes: list[dict[str, Any]],
        activity_id: str | None = None,
        title: str = "",
    ) -> Outcome:
        """Notify a planned activity: validate, apply the rules, detect, store and record in one transaction."""
        with self._lock:
            live = self._refresh(mechanism_id)
            member = self._party_member(live, actor)
            kind_ = choice(kind, ActivityKind, "kind")
            if activity_id is None:
                activity_id = self._next_activity_id(live, member.party)
            else:
                activity_id = identifier(activity_id, "id")
                if activity_id in live.activity_ids:
                    raise InvalidState(
                        f"id: activity {activity_id!r} already exists; amend it or choose another id", field="id"
                    )
            vols = parse_volumes(volumes, party=member.party, activity=activity_id)
            _check_not_ended(vols, self._now())
            projected = self._project_in_area(live, vols)
            activity = self._first_version(live, member, kind_, vols, activity_id=activity_id, title=_title(title))
            return self._commit_version(live, activity, projected, actor, "activity.notified", previous=None)

    def preview_notice(
        self, *, mechanism_id: str, actor: str, kind: str, volumes: list[dict[str, Any]]
    ) -> list[dict[str, Any]]:
        """The conflicts a notice would raise if it were sent now; nothing is written or recorded.

        Under ``conflicts-only`` another party's notice is named only by its party, window and band
        (no id, no distance), so that previews cannot map notices the caller may not see.
        """
        with self._lock:  # the index must not change under the query
            live = self._refresh(mechanism_id)
            member = self._party_member(live, actor)
            kind_ = choice(kind, ActivityKind, "kind")
            vols = parse_volumes(volumes, party=member.party, activity="preview")
            _check_not_ended(vols, self._now())
            projected = self._project_in_area(live, vols)
            findings = self._findings(live, self._first_version(live, member, kind_, vols), projected)
        whole = live.mechanism.rules.disclosure is Disclosure.FULL
        out: list[dict[str, Any]] = []
        for f in findings:
            if isinstance(f, SeparationFinding):
                doc: dict[str, Any] = {
                    "kind": ConflictKind.SEPARATION.value,
                    "other_party": f.other_party,
                    "start": iso(f.start),
                    "end": iso(f.end),
                    "floor_m": f.floor_m,
                    "ceiling_m": f.ceiling_m,
                }
                if whole:
                    doc.update(other_activity=f.other_activity, distance_m=round(f.distance_m, 1))
            elif isinstance(f, ZoneFinding):
                zone = live.zones[f.zone][0]
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
        return out

    def _first_version(
        self,
        live: _Live,
        member: Member,
        kind: ActivityKind,
        vols: tuple[Volume, ...],
        *,
        activity_id: str = "preview",
        title: str = "",
    ) -> Activity:
        """Version 1 of an activity notified now by ``member`` (notify, and the preview of a notice)."""
        now = self._now()
        return Activity(
            id=activity_id,
            mechanism=live.mechanism.id,
            party=member.party,
            kind=kind,
            volumes=vols,
            state=ActivityState.NOTIFIED,
            version=1,
            notified_at=now,
            first_notified_at=now,
            title=title,
        )

    @_retrying
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
    ) -> Outcome:
        """A new version of an activity; ``seen_version`` must be the current one."""
        with self._lock:
            live = self._refresh(mechanism_id)
            member = self._party_member(live, actor)
            current = self._own_activity(mechanism_id, activity_id, member)
            self._check_version(current, seen_version)
            vols = (
                parse_volumes(volumes, party=member.party, activity=activity_id)
                if volumes is not None
                else current.volumes
            )
            _check_not_ended(vols, self._now())
            projected = self._project_in_area(live, vols)
            activity = Activity(
                id=current.id,
                mechanism=mechanism_id,
                party=current.party,
                kind=choice(kind, ActivityKind, "kind") if kind is not None else current.kind,
                volumes=vols,
                state=current.state,
                version=current.version + 1,
                notified_at=self._now(),
                first_notified_at=current.first_notified_at,
                title=_title(title) if title is not None else current.title,
            )
            return self._commit_version(live, activity, projected, actor, "activity.amended", previous=current)

    @_retrying
    def cancel(self, *, mechanism_id: str, actor: str, activity_id: str, seen_version: int | None = None) -> Outcome:
        """Cancel an activity (a new version in state cancelled); its open conflicts are closed as amended."""
        with self._lock:
            live = self._refresh(mechanism_id)
            member = self._party_member(live, actor)
            current = self._own_activity(mechanism_id, activity_id, member)
            if seen_version is not None:
                self._check_version(current, seen_version)
            now = self._now()
            activity = Activity(
                **{
                    **current.__dict__,
                    "state": ActivityState.CANCELLED,
                    "version": current.version + 1,
                    "notified_at": now,
                }
            )
            with self._write() as s:
                seq = self._record(s, mechanism_id, actor, "activity.cancelled", activity_to_doc(activity), now)
                closed, seq2 = self._close_conflicts(
                    s,
                    mechanism_id,
                    activity_id,
                    now,
                    Resolution.CANCELLED,
                    f"activity {activity_id} cancelled",
                    by=member.party,
                )
                seq = seq2 or seq
            self._unindex(live, activity_id)
            return Outcome(activity=activity, resolved=tuple(closed), seq=seq)

    # --- zones --------------------------------------------------------------------------------

    @_retrying
    def declare_zone(self, *, mechanism_id: str, actor: str, zone: dict[str, Any]) -> Outcome:
        """Declare a zone owned by the actor's party; live activities it forbids raise conflicts."""
        with self._lock:
            live = self._refresh(mechanism_id)
            # The operator declares only the zones of the agreed mechanism file, in their owners' names.
            owner = str(zone.get("owner")) if actor == OPERATOR else self._party_member(live, actor).party
            z = parse_zone(zone, mechanism=mechanism_id, owner=owner, parties=live.mechanism.parties())
            with self.store.read() as s:
                if s.get(ZoneRow, (mechanism_id, z.id)) is not None:
                    raise InvalidState(f"id: zone {z.id!r} already exists; choose another id", field="id")
            zgeom = live.frame.project(z.footprint.geometry)
            now = self._now()
            hits = self._activities_in_zone(live, z, zgeom)
            live.zones[z.id] = entry = (z, zgeom, z.footprint.radius_m)
            try:
                with self._write() as s:
                    seq = self._record(s, mechanism_id, actor, "zone.declared", zone_to_doc(z), now)
                    raised = []
                    for activity in hits:
                        projected = self._project(live, activity.volumes)
                        for finding in zone_findings(activity, projected, [entry], live.frame):
                            if finding.end <= now:  # the activity was there before now only: nothing to prevent
                                continue
                            doc, seq = self._raise(s, live, activity, projected, finding, now)
                            raised.append(doc)
            except BaseException:
                live.zones.pop(z.id, None)
                raise
            return Outcome(raised=tuple(raised), seq=seq)

    @_retrying
    def withdraw_zone(self, *, mechanism_id: str, actor: str, zone_id: str) -> Outcome:
        with self._lock:
            live = self._refresh(mechanism_id)
            member = self._party_member(live, actor)
            with self.store.read() as s:
                row = s.get(ZoneRow, (mechanism_id, zone_id))
                if row is None:
                    raise NotFound(f"zone {zone_id!r} does not exist in mechanism {mechanism_id!r}", field="zone")
                if row.owner != member.party:
                    raise Forbidden(f"zone {zone_id!r} belongs to {row.owner}; only its owner may withdraw it")
                if row.withdrawn_at is not None:
                    raise InvalidState(f"zone {zone_id!r} was already withdrawn at {iso(row.withdrawn_at)}")
            now = self._now()
            with self._write() as s:
                seq = self._record(s, mechanism_id, actor, "zone.withdrawn", {"id": zone_id}, now)
                closed, seq2 = self._close_conflicts(
                    s,
                    mechanism_id,
                    zone_id,
                    now,
                    Resolution.WITHDRAWN,
                    f"zone {zone_id} withdrawn",
                    by=member.party,
                    zone=True,
                )
            live.zones.pop(zone_id, None)
            return Outcome(resolved=tuple(closed), seq=seq2 or seq)

    # --- conflicts ----------------------------------------------------------------------------

    @_retrying
    def acknowledge_conflict(self, *, mechanism_id: str, actor: str, conflict_id: str) -> dict[str, Any]:
        """A party acknowledges a conflict it was alerted to."""
        with self._lock:
            live = self._refresh(mechanism_id)
            member = self._party_member(live, actor)
            c = self.conflict(mechanism_id, conflict_id)
            self._check_awaited(c, member.party)
            with self._write() as s:
                self._record_acknowledgement(s, mechanism_id, actor, conflict_id, member.party, self._now())
            return self.conflict(mechanism_id, conflict_id)

    @staticmethod
    def _check_awaited(c: dict[str, Any], party: str) -> None:
        """Raise unless ``party`` is one the conflict awaits and it is still open for it."""
        cid = c["id"]
        if c["status"] == ConflictStatus.RESOLVED.value:
            raise InvalidState(f"conflict {cid!r} is already resolved ({c['resolution']}); nothing to acknowledge")
        if party not in c.get("awaiting", ()):
            awaited = ", ".join(c.get("awaiting", ())) or "nobody"
            raise Forbidden(
                f"conflict {cid!r} awaits the acknowledgement of {awaited}, not of {party}"
                + (" (you were sent an information copy)" if party in c["parties"] else "")
            )
        if party in c["acknowledged"]:
            raise InvalidState(f"conflict {cid!r} was already acknowledged by {party}")

    def _record_acknowledgement(
        self, s: Session, mechanism_id: str, actor: str, conflict_id: str, party: str, now: datetime
    ) -> int:
        """One entry: ``party`` acknowledges the conflict, and with it its alerts still awaiting that party."""
        payload = {"id": conflict_id, "party": party, "messages": _open_alerts(s, mechanism_id, conflict_id, party)}
        return self._record(s, mechanism_id, actor, "conflict.acknowledged", payload, now)

    def _record_resolution(
        self,
        s: Session,
        mechanism_id: str,
        actor: str,
        conflict_id: str,
        resolution: Resolution,
        note: str,
        now: datetime,
        *,
        by: str | None = None,
    ) -> int:
        """One entry: the conflict is resolved, and its alerts still awaiting an acknowledgement close with it.

        With ``by`` (the party whose action closed it), the conflict's other parties, and the facilitator for
        a red line, are told on the hotline in their own language, with the note of a member who resolved it.
        """
        payload = {
            "id": conflict_id,
            "resolution": resolution.value,
            "note": note,
            "messages": _open_alerts(s, mechanism_id, conflict_id),
        }
        seq = self._record(s, mechanism_id, actor, "conflict.resolved", payload, now)
        live = self._live.get(mechanism_id)
        row = s.get(ConflictRow, (mechanism_id, conflict_id))
        if by is None or live is None or row is None:
            return seq
        tell = set(row.doc["parties"])
        if row.doc.get("zone_kind") == ZoneKind.RED_LINE.value:
            tell |= {m.party for m in live.mechanism.members if m.role is Role.FACILITATOR}
        tell.discard(by)
        if tell:
            params: dict[str, Any] = {"conflict": conflict_id, "ref": row.doc["activity"], "how": resolution.value}
            params["party"] = by
            template = "conflict_closed"
            if note and actor not in ledger.SERVICE_ACTORS:
                template, params["note"] = "conflict_closed_note", note
            self._post_standard(s, live, template, params, sorted(tell), ("conflict", conflict_id), now)
            seq = s.info["last_entry"][1]
        return seq

    @_retrying
    def resolve_conflict(
        self, *, mechanism_id: str, actor: str, conflict_id: str, resolution: str, note: str = ""
    ) -> dict[str, Any]:
        """Close a conflict by hand as amended, accepted or escalated (a party it awaits, or the facilitator)."""
        with self._lock:
            live = self._refresh(mechanism_id)
            member = self._any_member(live, actor)
            how = choice(resolution, Resolution, "resolution")
            if how not in MANUAL_RESOLUTIONS:
                raise InvalidInput(
                    f"resolution: {how.value!r} is recorded by the service when it happens; by hand a conflict is "
                    f"resolved as {', '.join(r.value for r in MANUAL_RESOLUTIONS)}",
                    field="resolution",
                )
            c = self.conflict(mechanism_id, conflict_id)
            awaited = c.get("awaiting", ())
            if not (member.role is Role.FACILITATOR or (member.role is Role.PARTY and member.party in awaited)):
                causer = member.role is Role.PARTY and member.party in c["parties"]
                raise Forbidden(
                    f"conflict {conflict_id!r} is resolved by hand by {', '.join(awaited) or 'nobody'} (the party it "
                    f"awaits) or the facilitator"
                    + (
                        "; your activity caused it: amend or cancel it, and the conflict closes by itself"
                        if causer
                        else ""
                    )
                )
            if c["status"] == ConflictStatus.RESOLVED.value:
                raise InvalidState(f"conflict {conflict_id!r} is already resolved ({c['resolution']})")
            with self._write() as s:
                self._record_resolution(
                    s, mechanism_id, actor, conflict_id, how, _title(note), self._now(), by=member.party
                )
            return self.conflict(mechanism_id, conflict_id)

    # --- hotline ------------------------------------------------------------------------------

    @_retrying
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
    ) -> dict[str, Any]:
        """Send a standard message (template + params, agreed wording) or free text on the channel."""
        with self._lock:
            live = self._refresh(mechanism_id)
            member = self._any_member(live, actor)
            if member.role is Role.OBSERVER:
                raise Forbidden(f"member {actor!r} is an observer and reads the hotline without writing to it")
            everyone = {m.party for m in live.mechanism.members}
            recipients = sorted(set(to) if to else _answering(live) - {member.party})
            unknown = [p for p in recipients if p not in everyone]
            if unknown or not recipients:
                raise InvalidInput(
                    f"to: {', '.join(unknown) or 'nobody'} is not a member of this mechanism", field="to"
                )
            if template is not None:
                if text is not None:
                    raise InvalidInput("text: give either a template with params or free text, not both", field="text")
                allowed = MEMBER_PHRASES[member.role]
                if template not in allowed and template in hotline.bundled_templates():
                    role = member.role.value
                    raise Forbidden(
                        f"template: {template!r} is not a phrase a {role} sends (alerts, line checks and "
                        f"escalations come from the service); a {role} may send {', '.join(sorted(allowed))}"
                    )
                rendered = hotline.render(template, member.language, params or {})
                doc = {
                    "template": template,
                    "params": dict(rendered.params),
                    "lang": member.language,
                    "from_party": member.party,
                }
                settles = self._settled_by_phrase(live, template, doc["params"], member.party)
                if settles:
                    doc["settles"] = settles
            else:
                if not isinstance(text, str) or not text.strip():
                    raise InvalidInput("text: give a template, or free text to send", field="text")
                if len(text) > 4000:
                    raise InvalidInput("text: longer than 4000 characters", field="text")
                rendered = hotline.free_text(text.strip(), lang or member.language)
                doc = {
                    "template": None,
                    "params": {},
                    "lang": rendered.lang,
                    "text": rendered.text,
                    "from_party": member.party,
                }
            if about is not None:
                self._check_about(mechanism_id, about)
            restored = self._lines_restored_by(mechanism_id, doc.get("settles"))
            now = self._now()
            with self._write() as s:
                payload = self._post(
                    s, live, sender=actor, rendered=rendered, doc=doc, to=recipients, about=about, now=now
                )
                seq = s.info["last_entry"][1]
                for check in restored:  # a phrase answering a line check that was reported down: as an ack does
                    others = sorted(_answering(live) - {member.party})
                    params = {"party": member.party, "t1": now}
                    self._post_standard(s, live, "line_restored", params, others, ("message", check), now)
            return message_view(payload, seq=seq, sender=actor, sent_at=now, reader=member)

    def _lines_restored_by(self, mechanism_id: str, settles: dict[str, list[str]] | None) -> list[str]:
        """The line checks, among the messages a phrase settles, whose line was reported down."""
        if not settles:
            return []
        with self.store.read() as s:
            return [
                mid
                for mid in settles.get("messages", ())
                if (row := s.get(MessageRow, (mechanism_id, mid))) is not None
                and row.type == hotline.MessageType.LINE_CHECK.value
                and self._line_down_posted(s, mechanism_id, mid)
            ]

    @_retrying
    def acknowledge_message(self, *, mechanism_id: str, actor: str, message_id: str) -> dict[str, Any]:
        """A recipient acknowledges a message; a late answer to a line check restores the line."""
        with self._lock:
            live = self._refresh(mechanism_id)
            member = self._any_member(live, actor)
            with self.store.read() as s:
                row = s.get(MessageRow, (mechanism_id, message_id))
                if row is None:
                    raise NotFound(
                        f"message {message_id!r} does not exist in mechanism {mechanism_id!r}", field="message"
                    )
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
                was_down = row.type == "line_check" and self._line_down_posted(s, mechanism_id, message_id)
                conflict = self._alerted_conflict(s, mechanism_id, row, member.party)
            now = self._now()
            with self._write() as s:
                if conflict is not None:  # the alert and its conflict are settled together, in one entry
                    self._record_acknowledgement(s, mechanism_id, actor, conflict, member.party, now)
                else:
                    payload = {"id": message_id, "party": member.party}
                    self._record(s, mechanism_id, actor, "message.acknowledged", payload, now)
                if was_down:
                    others = sorted(_answering(live) - {member.party})
                    params = {"party": member.party, "t1": now}
                    self._post_standard(s, live, "line_restored", params, others, ("message", message_id), now)
            return self.message(mechanism_id, message_id, reader=member)

    @staticmethod
    def _alerted_conflict(s: Session, mechanism_id: str, row: MessageRow, party: str) -> str | None:
        """The conflict an alert is about, when acknowledging the alert acknowledges that conflict for ``party``."""
        if row.about_kind != "conflict" or row.about_id is None:
            return None
        c = s.get(ConflictRow, (mechanism_id, row.about_id))
        return c.id if c is not None and _awaits(c, party) else None

    def _settled_by_phrase(
        self, live: _Live, template: str, params: dict[str, Any], party: str
    ) -> dict[str, list[str]] | None:
        """What a response phrase ("Received and acknowledged: C7") acknowledges for the sender's party.

        Its ``ref`` may name a conflict that awaits the party, or a message addressed to the party that
        still needs its acknowledgement (an alert: then its conflict too). Anything else settles nothing.
        """
        ref = params.get("ref")
        if template not in ACK_PHRASES or not isinstance(ref, str) or not _names_one_of(ref, live):
            return None
        mechanism_id = live.mechanism.id
        with self.store.read() as s:
            conflict = s.get(ConflictRow, (mechanism_id, ref))
            message = s.get(MessageRow, (mechanism_id, ref))
            if conflict is None and message is not None:
                if (
                    party not in message.recipients
                    or not message.needs_ack
                    or party in message.acknowledged
                    or message.closed_at is not None
                ):
                    return None
                cid = self._alerted_conflict(s, mechanism_id, message, party)
                if cid is None:
                    return {"conflicts": [], "messages": [message.id]}
                conflict = s.get(ConflictRow, (mechanism_id, cid))
            if conflict is None or not _awaits(conflict, party):
                return None
            return {"conflicts": [conflict.id], "messages": _open_alerts(s, mechanism_id, conflict.id, party)}

    def message(self, mechanism_id: str, message_id: str, *, reader: Member) -> dict[str, Any]:
        with self.store.read() as s:
            row = s.get(MessageRow, (mechanism_id, message_id))
            if row is None:
                raise NotFound(f"message {message_id!r} does not exist in mechanism {mechanism_id!r}", field="message")
            return self._message_view(row, reader)

    def messages(
        self, mechanism_id: str, *, reader: Member, after_seq: int = 0, limit: int = 500
    ) -> list[dict[str, Any]]:
        """Messages the reader may see, in order, worded in the reader's language."""
        self._get_live(mechanism_id)
        stmt = (
            select(MessageRow)
            .where(MessageRow.mechanism_id == mechanism_id, MessageRow.seq > after_seq)
            .order_by(MessageRow.seq)
            .limit(limit)
        )
        with self.store.read() as s:
            rows = list(s.scalars(stmt))
        return [self._message_view(r, reader) for r in rows if self._sees_message(r, reader)]

    def waiting(self, mechanism_id: str, *, reader: Member) -> dict[str, Any]:
        """What waits on the reader's party now, soonest deadline first: the conflicts it must acknowledge
        (each with its alerts) and the other messages it must answer; each says whether it is overdue and
        how far up the ladder it has climbed. What a page alarms for at sign-in, and what a shift hands over."""
        live = self._get_live(mechanism_id)
        now = self._now()
        party = reader.party
        ladder = live.mechanism.rules.ladder
        items: list[dict[str, Any]] = []
        with self.store.read() as s:
            open_messages = [
                r
                for r in s.scalars(select(MessageRow).where(*_unanswered(mechanism_id)).order_by(MessageRow.seq))
                if party in r.recipients and party not in r.acknowledged
            ]
            conflicts = s.scalars(
                select(ConflictRow).where(
                    ConflictRow.mechanism_id == mechanism_id, ConflictRow.status != ConflictStatus.RESOLVED.value
                )
            )
            listed: set[str] = set()
            for c in conflicts:
                if not _awaits(c, party):
                    continue
                alerts = [m for m in open_messages if m.about_kind == "conflict" and m.about_id == c.id]
                steps = max((m.steps for m in alerts), default=0)
                items.append(
                    {
                        "kind": "conflict",
                        "id": c.id,
                        "type": c.kind,
                        "deadline": iso(c.deadline),
                        "overdue": now >= c.deadline,
                        "alerts": [m.id for m in alerts],
                        "rung": steps,
                        "rung_name": ladder[steps].name if steps < len(ladder) else None,
                        "summary": self._message_view(alerts[0], reader)["text"] if alerts else None,
                    }
                )
                listed.add(c.id)
            for m in open_messages:
                if m.about_kind == "conflict" and m.about_id in listed:
                    continue
                deadline = m.deadline or m.sent_at + timedelta(seconds=live.mechanism.rules.ack_deadline_s)
                items.append(
                    {
                        "kind": "message",
                        "id": m.id,
                        "type": m.type,
                        "deadline": iso(deadline),
                        "overdue": now >= deadline,
                        "alerts": [],
                        "rung": m.steps,
                        "rung_name": ladder[m.steps].name if m.steps < len(ladder) else None,
                        "summary": self._message_view(m, reader)["text"],
                    }
                )
        items.sort(key=lambda i: (i["deadline"], i["id"]))
        return {"now": iso(now), "party": party, "items": items}

    def tick(self) -> int:
        """Record what stored times make due now: escalation steps, line checks, lines down.

        Driven by stored instants, not sleeping tasks: after a restart the first tick records
        exactly the steps that fell due while the service was down. Returns entries written.
        """
        written = 0
        for mechanism_id in self.mechanism_ids():
            with self._lock:
                live = self._refresh(mechanism_id)
                written += self._tick_mechanism(live)
                written += self._tactical_tick(live, self._now())
                if time.monotonic() - live.checkpointed_at >= self.checkpoint_interval_s:
                    self.checkpoint(mechanism_id)
        return written

    def _tick_mechanism(self, live: _Live) -> int:
        rules = live.mechanism.rules
        mid = live.mechanism.id
        now = self._now()
        written = 0
        with self.store.read() as s:
            open_rows = list(
                s.scalars(select(MessageRow).where(*_unanswered(mid), MessageRow.steps < len(rules.ladder) - 1))
            )
            checks = {
                party: s.scalars(
                    select(MessageRow)
                    .where(
                        MessageRow.mechanism_id == mid, MessageRow.type == "line_check", MessageRow.about_id == party
                    )
                    .order_by(MessageRow.seq.desc())
                    .limit(1)
                ).first()
                for party in sorted(live.mechanism.parties())
            }
            downs = {party: bool(row and self._line_down_posted(s, mid, row.id)) for party, row in checks.items()}
            heard = {party: _heard_since(s, live, party, row) for party, row in checks.items()}
        facilitators = sorted({m.party for m in live.mechanism.members if m.role is Role.FACILITATOR})
        with self._write() as s:
            for row in open_rows:
                # the ladder runs from the deadline the message carries (an alert re-raised by an amendment
                # keeps the deadline of the one it replaces), which is sent_at + ack_deadline_s otherwise
                start = row.sent_at
                if row.deadline is not None:
                    start = min(start, row.deadline - timedelta(seconds=rules.ack_deadline_s))
                for step in hotline.due_steps(start, rules.ack_deadline_s, rules.ladder, None, now, row.steps):
                    payload = {"id": row.id, "rung": step.rung, "name": step.name, "due_at": iso(step.due_at)}
                    self._record(s, mid, SYSTEM, "message.escalated", payload, now)
                    to = sorted(
                        set(row.recipients) | (set(facilitators) if step.rung == len(rules.ladder) - 1 else set())
                    )
                    params = {"ref": row.id, "t1": step.due_at, "rung": step.name}
                    self._post_standard(s, live, "escalated_to", params, to, ("message", row.id), now)
                    written += 2
            for party, last in checks.items():
                if last is not None and not downs[party]:
                    state = hotline.line_state(
                        last.sent_at, last.acknowledged_at, rules.ack_deadline_s, now, heard_at=heard[party]
                    )
                    if state is hotline.LineState.DOWN:
                        others = sorted(_answering(live) - {party})
                        params = {"party": party, "t1": last.sent_at}
                        self._post_standard(s, live, "line_down", params, others, ("message", last.id), now)
                        written += 1
                if hotline.line_check_due(last.sent_at if last else None, rules.line_check_interval_s, now):
                    params = {"party": party, "t1": now}
                    self._post_standard(s, live, "line_check", params, [party], ("party", party), now)
                    written += 1
        return written

    def line_status(self, mechanism_id: str) -> dict[str, str]:
        """Each party's line: up; pending (a check awaits its answer, in time); late (unanswered past its
        deadline, but the party has acted since it was sent); down (unanswered, and nothing heard since)."""
        live = self._get_live(mechanism_id)
        now = self._now()
        out = {}
        with self.store.read() as s:
            for party in sorted(live.mechanism.parties()):
                last = s.scalars(
                    select(MessageRow)
                    .where(
                        MessageRow.mechanism_id == mechanism_id,
                        MessageRow.type == "line_check",
                        MessageRow.about_id == party,
                    )
                    .order_by(MessageRow.seq.desc())
                    .limit(1)
                ).first()
                if last is None:
                    out[party] = hotline.LineState.UP.value
                else:
                    ack_s = live.mechanism.rules.ack_deadline_s
                    heard = _heard_since(s, live, party, last)
                    out[party] = hotline.line_state(
                        last.sent_at, last.acknowledged_at, ack_s, now, heard_at=heard
                    ).value
        return out

    def _post(
        self,
        s: Session,
        live: _Live,
        *,
        sender: str,
        rendered: hotline.Rendered,
        doc: dict[str, Any],
        to: list[str],
        about: dict[str, str] | None,
        now: datetime,
        deadline: datetime | None = None,
    ) -> dict[str, Any]:
        """Record one message inside the caller's transaction (``deadline``: an earlier one it inherits)."""
        pending = s.info.setdefault("new_messages", {})
        pending[live.mechanism.id] = pending.get(live.mechanism.id, 0) + 1
        if rendered.needs_ack:
            deadline = deadline or now + timedelta(seconds=live.mechanism.rules.ack_deadline_s)
        else:
            deadline = None
        payload = {
            "id": f"M{live.message_count + pending[live.mechanism.id]}",
            "type": rendered.type.value if hasattr(rendered.type, "value") else str(rendered.type),
            "to": to,
            "needs_ack": rendered.needs_ack,
            "deadline": iso(deadline) if deadline else None,
            "about": about,
            **doc,
        }
        self._record(s, live.mechanism.id, sender, "message.sent", payload, now)
        return payload

    def _post_standard(
        self,
        s: Session,
        live: _Live,
        template: str,
        params: dict[str, Any],
        to: list[str],
        about: tuple[str, str],
        now: datetime,
        deadline: datetime | None = None,
    ) -> dict[str, Any]:
        """A standard message from the system (wording stored as template + parameters)."""
        rendered = hotline.render(template, "en", params)
        doc = {"template": template, "params": dict(rendered.params), "lang": "en"}
        about_doc = {"kind": about[0], "id": about[1]}
        return self._post(
            s, live, sender=SYSTEM, rendered=rendered, doc=doc, to=to, about=about_doc, now=now, deadline=deadline
        )

    def _message_view(self, row: MessageRow, reader: Member) -> dict[str, Any]:
        return message_status_view(
            row.doc,
            seq=row.seq,
            sender=row.sender,
            sent_at=row.sent_at,
            acknowledged=row.acknowledged,
            acknowledged_at=iso(row.acknowledged_at) if row.acknowledged_at else None,
            steps=row.steps,
            reader=reader,
            closed_at=iso(row.closed_at) if row.closed_at else None,
            closed_note=row.closed_note,
        )

    @staticmethod
    def _sees_message(row: MessageRow, reader: Member) -> bool:
        return sees_message(reader, to=row.recipients, sender=row.sender, from_party=row.doc.get("from_party"))

    @staticmethod
    def _line_down_posted(s: Session, mechanism_id: str, check_id: str) -> bool:
        stmt = select(MessageRow.id).where(
            MessageRow.mechanism_id == mechanism_id,
            MessageRow.about_kind == "message",
            MessageRow.about_id == check_id,
            MessageRow.type == "alert",
        )
        return s.execute(stmt.limit(1)).first() is not None

    def _check_about(self, mechanism_id: str, about: dict[str, str]) -> None:
        kind, ref = about.get("kind"), about.get("id")
        lookups = {"activity": self.activity, "conflict": self.conflict}
        if kind == "zone":
            if ref not in {z["id"] for z in self.zones(mechanism_id, include_withdrawn=True)}:
                raise NotFound(f"about: zone {ref!r} does not exist", field="about")
        elif kind in lookups and isinstance(ref, str):
            lookups[kind](mechanism_id, ref)
        else:
            raise InvalidInput("about: give kind (activity, conflict or zone) and id", field="about")

    # --- the tactical picture: tracks, predicted loss of separation, conformance ---------------------

    @_retrying
    def report_tracks(self, *, mechanism_id: str, actor: str, reports: list[dict[str, Any]]) -> dict[str, Any]:
        """Store a batch of a party's position reports (all of them or none), then check the tactical
        picture at once. Returns how many were stored and the conflicts raised and cleared.

        Reports are kept as the tracks' latest state and history, not as record entries; the conflicts
        they raise, and their alerts, are recorded.
        """
        with self._lock:
            live = self._refresh(mechanism_id)
            member = self._party_member(live, actor)
            now = self._now()
            states = parse_track_reports(reports, now=now, stale_s=live.mechanism.rules.track_stale_s)
            with self._write() as s:
                for st in states:
                    fields = {k: st[k] for k in ("lat", "lon", "alt_m", "gs_mps", "trk_deg", "vs_mps")}
                    s.merge(
                        TrackReportRow(
                            mechanism_id=mechanism_id, party=member.party, id=st["id"], at=st["at"], **fields
                        )
                    )
                    row = s.get(TrackRow, (mechanism_id, member.party, st["id"]))
                    if row is None:
                        s.add(
                            TrackRow(
                                mechanism_id=mechanism_id,
                                party=member.party,
                                id=st["id"],
                                at=st["at"],
                                received_at=now,
                                **fields,
                            )
                        )
                    elif row.at <= st["at"]:  # a late report never replaces a newer state
                        for k, v in {"at": st["at"], "received_at": now, **fields}.items():
                            setattr(row, k, v)
                s.flush()
                raised, cleared = self._tactical(s, live, now)
            return {"stored": len(states), "raised": raised, "cleared": cleared}

    def tracks(self, mechanism_id: str, *, reader: Member) -> list[dict[str, Any]]:
        """Tracks in the picture now (reported within the stale time) that ``reader`` may see, each with
        its position extrapolated to now. A party sees its own tracks, and others' under full disclosure
        or while they are in an open conflict with its own; facilitators and observers see all."""
        live = self._get_live(mechanism_id)
        now = self.clock()
        with self.store.read() as s:
            rows = self._fresh_tracks(s, live, now)
            involved = {
                track
                for c in s.scalars(self._open_tactical(mechanism_id))
                if reader.party in c.parties
                for track in (c.activity, c.other_activity)
            }
        whole = reader.role is not Role.PARTY or live.mechanism.rules.disclosure is Disclosure.FULL
        picture = _extrapolated(rows, now)
        out = []
        for row, (lat, lon, alt) in zip(rows, picture, strict=True):
            name = f"{row.party}/{row.id}"
            if whole or row.party == reader.party or name in involved:
                out.append(
                    {
                        "track": name,
                        "party": row.party,
                        "id": row.id,
                        "reported_at": iso(row.at),
                        "lat": round(lat, 6),
                        "lon": round(lon, 6),
                        "alt_m": round(alt, 1),
                        "gs_mps": row.gs_mps,
                        "trk_deg": row.trk_deg,
                        "vs_mps": row.vs_mps,
                    }
                )
        return out

    def _fresh_tracks(self, s: Session, live: _Live, now: datetime) -> list[TrackRow]:
        since = now - timedelta(seconds=live.mechanism.rules.track_stale_s)
        stmt = select(TrackRow).where(TrackRow.mechanism_id == live.mechanism.id, TrackRow.at >= since)
        return list(s.scalars(stmt.order_by(TrackRow.party, TrackRow.id)))

    @staticmethod
    def _open_tactical(mechanism_id: str) -> Any:
        return select(ConflictRow).where(
            ConflictRow.mechanism_id == mechanism_id,
            ConflictRow.kind.in_([k.value for k in TACTICAL_KINDS]),
            ConflictRow.status != ConflictStatus.RESOLVED.value,
        )

    def _tactical(self, s: Session, live: _Live, now: datetime) -> tuple[list[dict[str, Any]], list[str]]:
        """Raise a conflict (and its alert) for each situation that is new, clear each that has ended.

        A situation is a pair of different parties' tracks predicted to lose separation within the
        look-ahead, a track outside every active volume of its party (beyond the tolerance), or a
        track inside another party's active volume. It raises one conflict while it lasts, however
        many reports arrive, and a new one if it comes back after it ended.
        """
        rules = live.mechanism.rules
        mid = live.mechanism.id
        rows = self._fresh_tracks(s, live, now)
        found: dict[tuple[str, ...], dict[str, Any]] = {}
        if rows:
            picture = np.array(_extrapolated(rows, now)).reshape(-1, 3)
            names = [f"{r.party}/{r.id}" for r in rows]
            party_of = {n: r.party for n, r in zip(names, rows, strict=True)}
            lat, lon, alt = picture[:, 0], picture[:, 1], picture[:, 2]
            t = Tracks.of(
                names, lat, lon, alt, [r.gs_mps for r in rows], [r.trk_deg for r in rows], [r.vs_mps for r in rows]
            )
            table = find_track_conflicts(
                t, rpz_m=rules.separation_m, hpz_m=rules.vertical_separation_m, lookahead_s=rules.track_lookahead_s
            )
            for c in table.conflicts(t):
                if party_of[c.a] != party_of[c.b]:
                    found[(ConflictKind.TRACKS.value, c.a, c.b)] = {
                        "kind": ConflictKind.TRACKS.value,
                        "activity": c.a,
                        "other_activity": c.b,
                        "parties": sorted({party_of[c.a], party_of[c.b]}),
                        "awaiting": sorted({party_of[c.a], party_of[c.b]}),
                        "distance_m": round(c.dcpa_m, 1),
                        "tcpa_s": round(c.tcpa_s, 1),
                        "t_in_s": round(c.t_in_s, 1),
                        "t_out_s": round(c.t_out_s, 1),
                        "separation_m": rules.separation_m,
                        "vertical_separation_m": rules.vertical_separation_m,
                    }
            volumes = self._active_volumes(s, mid, now)
            for party in sorted(set(party_of.values())):
                mine = np.array([i for i, r in enumerate(rows) if r.party == party])
                own = [(a, v) for p, a, v in volumes if p == party]
                inside, _ = tracks_in_volumes(
                    lon[mine], lat[mine], alt[mine], now, [v for _, v in own], tolerance_m=rules.conformance_tolerance_m
                )
                for k in sorted(set(range(len(mine))) - set(inside.tolist())):
                    name = names[mine[k]]
                    found[(ConflictKind.CONFORMANCE.value, name)] = {
                        "kind": ConflictKind.CONFORMANCE.value,
                        "activity": name,
                        "parties": [party],
                        "awaiting": [party],
                        "tolerance_m": rules.conformance_tolerance_m,
                    }
                theirs = [(p, a, v) for p, a, v in volumes if p != party]
                hit_t, hit_v = tracks_in_volumes(lon[mine], lat[mine], alt[mine], now, [v for _, _, v in theirs])
                for k, j in zip(hit_t.tolist(), hit_v.tolist(), strict=True):
                    name, (other, activity_id, _) = names[mine[k]], theirs[j]
                    found.setdefault(
                        (ConflictKind.INTRUSION.value, name, activity_id),
                        {
                            "kind": ConflictKind.INTRUSION.value,
                            "activity": name,
                            "other_activity": activity_id,
                            "other_party": other,
                            "parties": sorted({party, other}),
                            "awaiting": sorted({party, other}),
                        },
                    )
        open_rows = {_tactical_key(c): c for c in s.scalars(self._open_tactical(mid))}
        raised = []
        for key, doc in found.items():
            if key in open_rows:
                continue
            pending = s.info.setdefault("new_conflicts", {})
            pending[mid] = pending.get(mid, 0) + 1
            track = next(r for r in rows if f"{r.party}/{r.id}" == doc["activity"])
            doc = {
                "id": f"C{live.conflict_count + pending[mid]}",
                **doc,
                "party": track.party,
                "deadline": iso(now + timedelta(seconds=rules.ack_deadline_s)),
            }
            self._record(s, mid, SYSTEM, "conflict.detected", doc, now)
            self._tactical_alert(s, live, doc, now)
            raised.append(doc)
        cleared = []
        for key, row in open_rows.items():
            if key not in found:
                self._record_resolution(s, mid, SYSTEM, row.id, Resolution.CLEARED, _CLEARED[row.kind], now)
                cleared.append(row.id)
        return raised, cleared

    def _tactical_alert(self, s: Session, live: _Live, conflict: dict[str, Any], now: datetime) -> None:
        ref = conflict["id"]
        if conflict["kind"] == ConflictKind.TRACKS.value:
            template = "track_alert"
            params: dict[str, Any] = {
                "ref": ref,
                "track": conflict["activity"],
                "other_track": conflict["other_activity"],
                "minutes": round(conflict["t_in_s"] / 60, 1),
                "distance": round(conflict["distance_m"] / 1000, 1),
            }
        elif conflict["kind"] == ConflictKind.CONFORMANCE.value:
            template = "conformance_alert"
            params = {"ref": ref, "track": conflict["activity"], "distance": round(conflict["tolerance_m"] / 1000, 1)}
        else:
            template = "intrusion_alert"
            params = {"ref": ref, "track": conflict["activity"], "other_ref": conflict["other_activity"]}
        for party in conflict["awaiting"]:  # one alert each: each party acknowledges, and climbs, on its own
            self._post_standard(s, live, template, params, [party], ("conflict", ref), now)

    @staticmethod
    def _active_volumes(s: Session, mechanism_id: str, now: datetime) -> list[tuple[str, str, Volume]]:
        """(party, activity id, volume) for every volume of a live activity whose window holds ``now``."""
        rows = s.scalars(
            select(ActivityRow).where(
                ActivityRow.mechanism_id == mechanism_id,
                ActivityRow.state.in_([x.value for x in LIVE_STATES]),
                ActivityRow.start <= now,
                ActivityRow.end > now,
            )
        )
        out = []
        for r in rows:
            activity = activity_from_doc(r.doc, mechanism=mechanism_id)
            out += [(activity.party, activity.id, v) for v in activity.volumes]
        return out

    def _tactical_tick(self, live: _Live, now: datetime) -> int:
        """Keep the tactical picture current between reports: predictions move on with time, and a
        track that stops reporting leaves the picture (its conflicts clear)."""
        mid = live.mechanism.id
        since = now - timedelta(seconds=live.mechanism.rules.track_stale_s)
        with self.store.read() as s:
            busy = s.scalar(
                select(func.count()).select_from(TrackRow).where(TrackRow.mechanism_id == mid, TrackRow.at >= since)
            ) or s.scalar(select(func.count()).select_from(self._open_tactical(mid).subquery()))
        if not busy:
            return 0
        with self._write() as s:
            raised, cleared = self._tactical(s, live, now)
        return len(raised) + len(cleared)

    # --- internals ----------------------------------------------------------------------------

    @contextmanager
    def _write(self) -> Iterator[Session]:
        """One transaction; listeners hear of its last entry once it is committed."""
        try:
            with self.store.transaction() as s:
                yield s
        except IntegrityError as e:
            if "ledger" not in str(e):
                raise
            self._live.clear()  # another process appended: every picture is suspect
            raise _StaleRecord() from e
        for mechanism_id, head in s.info.get("heads", {}).items():
            live = self._live.get(mechanism_id)
            if live is not None:
                live.head = head
                live.conflict_count += s.info.get("new_conflicts", {}).get(mechanism_id, 0)
                live.message_count += s.info.get("new_messages", {}).get(mechanism_id, 0)
                added = s.info.get("new_activities", {}).get(mechanism_id, {})
                live.activity_ids.update(added)
                live.party_counts.update(added.values())
        last = s.info.get("last_entry")
        if last is not None:
            for listener in self.listeners:
                listener(*last)

    def _record(self, s: Session, mechanism_id: str, actor: str, type: str, payload: Any, at: datetime) -> int:
        heads = s.info.setdefault("heads", {})
        live = self._live.get(mechanism_id)
        after = heads.get(mechanism_id) or (live.head if live is not None else None)
        sign = self._signer(s, mechanism_id, actor)
        head = ledger.append(
            s, mechanism=mechanism_id, actor=actor, type=type, payload=payload, at=at, after=after, sign=sign
        )
        heads[mechanism_id] = head
        projection.apply(s, mechanism=mechanism_id, type=type, payload=payload, at=at, seq=head.seq, actor=actor)
        if type == "activity.notified":
            s.info.setdefault("new_activities", {}).setdefault(mechanism_id, {})[payload["id"]] = payload["party"]
        s.info["last_entry"] = (mechanism_id, head.seq)
        return head.seq

    def _refresh(self, mechanism_id: str) -> _Live:
        """The mechanism's picture, rebuilt if another process has written to its record since.

        The stored head is compared at most every FRESHNESS_S; a write made on a stale picture
        fails on the record's primary key and is retried once on a fresh one (see ``_retrying``).
        """
        live = self._get_live(mechanism_id)
        if time.monotonic() - live.checked_at < FRESHNESS_S:
            return live
        with self.store.read() as s:
            current = ledger.read_head(s, mechanism_id)
        if current != live.head:
            self._live.pop(mechanism_id, None)
            live = self._get_live(mechanism_id)
        live.checked_at = time.monotonic()
        return live

    def entries_after(self, mechanism_id: str, after: int, *, limit: int = 1000) -> list[dict[str, Any]]:
        """Record entries with a sequence number above ``after``, in order (at most ``limit``)."""
        with self.store.read() as s:
            rows = s.scalars(
                select(LedgerEntry)
                .where(LedgerEntry.mechanism_id == mechanism_id, LedgerEntry.seq > after)
                .order_by(LedgerEntry.seq)
                .limit(limit)
            )
            return [ledger.entry_doc(r) for r in rows]

    def record_ids(self) -> list[str]:
        """The mechanisms that have a record in this database, in order."""
        with self.store.read() as s:
            return sorted(s.scalars(select(LedgerEntry.mechanism_id).distinct()))

    def record(self, mechanism_id: str, *, upto: int | None = None) -> Iterator[dict[str, Any]]:
        """Every entry of a mechanism's record in order (up to sequence number ``upto``), read in pages."""
        after = 0
        while page := self.entries_after(mechanism_id, after, limit=5000):
            for entry in page:
                if upto is not None and entry["seq"] > upto:
                    return
                yield entry
            after = page[-1]["seq"]

    def head(self, mechanism_id: str) -> ledger.Head:
        """The record's head: the last entry's sequence number and hash (0 and the genesis hash when empty)."""
        with self.store.read() as s:
            return ledger.read_head(s, mechanism_id)

    def _get_live(self, mechanism_id: str) -> _Live:
        live = self._live.get(mechanism_id)
        if live is not None:
            return live
        with self._lock, self.store.read() as s:
            row = s.get(MechanismRow, mechanism_id)
            if row is None:
                raise NotFound(f"mechanism {mechanism_id!r} does not exist", field="mechanism")
            base = mechanism_from_record(row.doc)
            members = tuple(
                Member(id=m.id, name=m.name, role=Role(m.role), party=m.party, language=m.language)
                for m in s.scalars(
                    select(MemberRow).where(MemberRow.mechanism_id == mechanism_id).order_by(MemberRow.id)
                )
            )
            zone_rows = list(
                s.scalars(select(ZoneRow).where(ZoneRow.mechanism_id == mechanism_id, ZoneRow.withdrawn_at.is_(None)))
            )
            zones = tuple(zone_from_doc(z.doc, mechanism=mechanism_id) for z in zone_rows)
            mechanism = Mechanism(
                id=base.id,
                name=base.name,
                area=base.area,
                area_name=base.area_name,
                rules=base.rules,
                members=members,
                zones=zones,
            )
            frame = Frame.for_bounds(tuple(mechanism.area.bounds))  # type: ignore[arg-type]
            allowed = frame.project(mechanism.area)
            if mechanism.rules.area_margin_m > 0:
                allowed = shapely.buffer(allowed, mechanism.rules.area_margin_m)
            shapely.prepare(allowed)
            live = _Live(mechanism=mechanism, frame=frame, allowed_area=allowed, index=VolumeIndex(frame))
            for z in zones:
                live.zones[z.id] = (z, frame.project(z.footprint.geometry), z.footprint.radius_m)
            rows = s.scalars(
                select(ActivityRow).where(
                    ActivityRow.mechanism_id == mechanism_id,
                    ActivityRow.state.in_([x.value for x in LIVE_STATES]),
                )
            )
            for r in rows:
                activity = activity_from_doc(r.doc, mechanism=mechanism_id)
                self._index(live, activity, self._project(live, activity.volumes))
            live.index.rebuild()
            live.head = ledger.read_head(s, mechanism_id)
            live.activity_ids = dict(
                s.execute(
                    select(ActivityRow.id, ActivityRow.party).where(ActivityRow.mechanism_id == mechanism_id)
                ).all()
            )
            live.party_counts = Counter(live.activity_ids.values())
            live.message_count = (
                s.scalar(select(func.count()).select_from(MessageRow).where(MessageRow.mechanism_id == mechanism_id))
                or 0
            )
            live.conflict_count = (
                s.scalar(select(func.count()).select_from(ConflictRow).where(ConflictRow.mechanism_id == mechanism_id))
                or 0
            )
            self._live[mechanism_id] = live
            return live

    def _project(self, live: _Live, volumes: tuple[Volume, ...]) -> list[tuple[Any, float]]:
        geoms, radii = live.frame.project_footprints([v.footprint for v in volumes])
        return list(zip(geoms, radii.tolist(), strict=True))

    def _project_in_area(self, live: _Live, volumes: tuple[Volume, ...]) -> list[tuple[Any, float]]:
        projected = self._project(live, volumes)
        for n, (v, (geom, radius)) in enumerate(zip(volumes, projected, strict=True)):
            shape = shapely.buffer(geom, radius) if radius > 0 else geom
            if not live.allowed_area.covers(shape):
                margin = live.mechanism.rules.area_margin_m
                beyond = f" (or within {margin / 1000:g} km of it)" if margin else ""
                raise InvalidInput(
                    f"volume {n + 1} (id {v.id!r}) geometry: the footprint extends outside the mechanism's area of "
                    f"responsibility, {live.mechanism.area_name}{beyond}",
                    field="geometry",
                )
        return projected

    def _index(self, live: _Live, activity: Activity, projected: list[tuple[Any, float]]) -> None:
        vols = activity.volumes
        live.index.add(
            [(activity.id, v.id) for v in vols],
            [activity.party] * len(vols),
            np.array([g for g, _ in projected], dtype=object),
            np.array([r for _, r in projected]),
            np.array([v.start.timestamp() for v in vols]),  # type: ignore[union-attr]
            np.array([v.end.timestamp() for v in vols]),  # type: ignore[union-attr]
            np.array([v.floor_m for v in vols]),
            np.array([v.ceiling_m for v in vols]),
        )
        live.activities[activity.id] = (activity.party, activity.kind, tuple(v.id for v in vols), activity.version)

    def _unindex(self, live: _Live, activity_id: str) -> None:
        entry = live.activities.pop(activity_id, None)
        if entry is not None:
            for vid in entry[2]:
                live.index.remove((activity_id, vid))

    def _commit_version(
        self,
        live: _Live,
        activity: Activity,
        projected: list[tuple[Any, float]],
        actor: str,
        entry_type: str,
        *,
        previous: Activity | None,
    ) -> Outcome:
        findings = self._findings(live, activity, projected)
        now = activity.notified_at
        with self._write() as s:
            seq = self._record(s, activity.mechanism, actor, entry_type, activity_to_doc(activity), now)
            closed: list[str] = []
            carried = _carried_deadlines(s, activity.mechanism, activity.id) if previous is not None else {}
            if previous is not None:
                closed, seq2 = self._close_conflicts(
                    s,
                    activity.mechanism,
                    activity.id,
                    now,
                    Resolution.AMENDED,
                    f"{activity.id} superseded by version {activity.version}",
                    by=activity.party,
                )
                seq = seq2 or seq
            raised = []
            for finding in findings:
                doc, seq = self._raise(s, live, activity, projected, finding, now, carried=carried)
                raised.append(doc)
        if previous is not None:
            self._unindex(live, activity.id)
        self._index(live, activity, projected)
        return Outcome(activity=activity, raised=tuple(raised), resolved=tuple(closed), seq=seq)

    @staticmethod
    def _findings(
        live: _Live, activity: Activity, projected: list[tuple[Any, float]]
    ) -> list[SeparationFinding | ZoneFinding | ShortNotice]:
        """What a version of an activity conflicts with: other parties' notices, zones, the lead time."""
        rules = live.mechanism.rules
        findings: list[SeparationFinding | ZoneFinding | ShortNotice] = []
        findings += separation_findings(
            activity,
            projected,
            live.index,
            separation_m=rules.separation_m,
            vertical_separation_m=rules.vertical_separation_m,
        )
        findings += zone_findings(activity, projected, list(live.zones.values()), live.frame)
        findings = [f for f in findings if f.end > activity.notified_at]  # an overlap wholly past is no conflict
        late = short_notice(activity, min_notice_s=rules.min_notice_s)
        if late is not None:
            findings.append(late)
        return findings

    def _raise(
        self,
        s: Session,
        live: _Live,
        activity: Activity,
        projected: list[tuple[Any, float]],
        finding: SeparationFinding | ZoneFinding | ShortNotice,
        now: datetime,
        *,
        carried: dict[tuple[str, ...], tuple[str, datetime]] | None = None,
    ) -> tuple[dict[str, Any], int]:
        pending = s.info.setdefault("new_conflicts", {})
        pending[activity.mechanism] = pending.get(activity.mechanism, 0) + 1
        doc: dict[str, Any] = {
            "id": f"C{live.conflict_count + pending[activity.mechanism]}",
            "activity": activity.id,
            "activity_version": activity.version,
            "activity_kind": activity.kind.value,
            "party": activity.party,
            "deadline": iso(now + timedelta(seconds=live.mechanism.rules.ack_deadline_s)),
        }
        others = sorted(live.mechanism.parties() - {activity.party})
        if isinstance(finding, SeparationFinding):
            doc |= {
                "kind": ConflictKind.SEPARATION.value,
                "other_activity": finding.other_activity,
                "other_party": finding.other_party,
                "parties": sorted({activity.party, finding.other_party}),
                "awaiting": [finding.other_party],
                "distance_m": round(finding.distance_m, 1),
                "separation_m": live.mechanism.rules.separation_m,
                "start": iso(finding.start),
                "end": iso(finding.end),
                "floor_m": finding.floor_m,
                "ceiling_m": finding.ceiling_m,
                "volume_pairs": [list(p) for p in finding.volume_pairs],
                "other_version": live.activities[finding.other_activity][3],
            }
            if live.mechanism.rules.disclosure is Disclosure.CONFLICTS_ONLY:
                doc["overlap_a"], doc["overlap_b"] = self._separation_overlaps(live, activity, projected, finding)
        elif isinstance(finding, ZoneFinding):
            zone = live.zones.get(finding.zone)
            awaiting = [finding.zone_owner] if finding.zone_owner != activity.party else others
            doc |= {
                "kind": ConflictKind.ZONE.value,
                "zone": finding.zone,
                "zone_kind": zone[0].kind.value if zone else None,
                "zone_owner": finding.zone_owner,
                "parties": sorted({activity.party, finding.zone_owner}),
                "awaiting": awaiting,
                "distance_m": 0.0,
                "start": iso(finding.start),
                "end": iso(finding.end),
                **_band_in_zone(activity, finding.volumes, zone[0] if zone else None),
                "volumes": list(finding.volumes),
            }
            if live.mechanism.rules.disclosure is Disclosure.CONFLICTS_ONLY:
                doc["overlap_a"] = self._zone_overlap(live, activity, projected, finding)
        else:
            doc |= {
                "kind": ConflictKind.SHORT_NOTICE.value,
                "parties": sorted({activity.party, *others}),
                "awaiting": others,
                "lead_time_s": round(finding.lead_time_s, 1),
                "min_notice_s": finding.min_notice_s,
                "start": iso(activity.start),
                "end": iso(activity.end),
                "floor_m": min(v.floor_m for v in activity.volumes),
                "ceiling_m": max(v.ceiling_m for v in activity.volumes),
            }
        inherited = (carried or {}).get(_situation(doc))
        if inherited is not None and inherited[1] < now + timedelta(seconds=live.mechanism.rules.ack_deadline_s):
            # the same situation, re-raised by an amendment before those awaited acknowledged it: the deadline
            # (and the ladder) run on from the first detection, so amending cannot hold an alert at its first rung
            doc["deadline"], doc["supersedes"] = iso(inherited[1]), inherited[0]
        seq = self._record(s, activity.mechanism, SYSTEM, "conflict.detected", doc, now)
        self._alert(s, live, activity, doc, now)
        return doc, seq

    def _alert(self, s: Session, live: _Live, activity: Activity, conflict: dict[str, Any], now: datetime) -> None:
        """The hotline messages of a new conflict, routed by role (docs/duty-loop.md).

        Each party in ``awaiting`` gets its own alert, which it must acknowledge (acknowledging the
        alert or the conflict settles both); the party whose notice caused the conflict gets an
        information copy; the facilitator gets a copy of every red-line breach.
        """
        kind = conflict["kind"]
        about = ("conflict", conflict["id"])
        common: dict[str, Any] = {"conflict": conflict["id"], "ref": activity.id}
        if kind in (ConflictKind.SEPARATION.value, ConflictKind.ZONE.value):
            common |= {
                "t1": parse_utc(conflict["start"], field="start"),
                "t2": parse_utc(conflict["end"], field="end"),
                "floor": round(conflict["floor_m"]),
                "ceiling": round(conflict["ceiling_m"]),
            }
        if kind == ConflictKind.SEPARATION.value:
            other = conflict["other_party"]
            distance = round(conflict["distance_m"])
            alert = {
                **common,
                "ref": conflict["other_activity"],
                "other_ref": activity.id,
                "party": activity.party,
                "distance": distance,
            }
            info = {**common, "other_ref": conflict["other_activity"], "party": other, "distance": distance}
            alerts, info_template, copies = ("separation_alert", alert), ("separation_info", info), []
        elif kind == ConflictKind.ZONE.value:
            zone = {"place": conflict["zone"], "owner": conflict["zone_owner"]}
            alert = {**common, **zone, "party": activity.party}
            alerts, info_template = ("zone_breach_alert", alert), ("zone_breach_info", {**common, **zone})
            red_line = conflict.get("zone_kind") == ZoneKind.RED_LINE.value
            copies = [("red_line_breach_copy", alert)] if red_line else []
        else:
            late = {
                **common,
                "t1": activity.notified_at,
                "t2": activity.start,
                "minutes": round(conflict["min_notice_s"] / 60),
            }
            alerts = ("late_notice_alert", {**late, "party": activity.party})
            info_template, copies = ("late_notice_info", late), []
        deadline = parse_utc(conflict["deadline"], field="deadline")
        for party in conflict["awaiting"]:
            self._post_standard(s, live, alerts[0], alerts[1], [party], about, now, deadline=deadline)
        if activity.party not in conflict["awaiting"]:
            self._post_standard(s, live, info_template[0], info_template[1], [activity.party], about, now)
        facilitators = sorted(
            {m.party for m in live.mechanism.members if m.role is Role.FACILITATOR} - set(conflict["awaiting"])
        )
        for template, params in copies:
            if facilitators:
                self._post_standard(s, live, template, params, facilitators, about, now)

    def _separation_overlaps(
        self, live: _Live, activity: Activity, projected: list[tuple[Any, float]], finding: SeparationFinding
    ) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
        """The parts of each activity's volumes within the separation minima of the other's."""
        rules = live.mechanism.rules
        mine = {v.id: (v, g, r) for v, (g, r) in zip(activity.volumes, projected, strict=True)}
        idx = live.index
        part_a, part_b = [], []
        for vid, other_vid in finding.volume_pairs:
            v, g, r = mine[vid]
            slot = idx.slot((finding.other_activity, other_vid))
            if slot is None:
                continue
            a = {"geom": g, "radius_m": r, "window": _window(v), "band": (v.floor_m, v.ceiling_m)}
            b = {
                "geom": idx.geoms[slot],
                "radius_m": float(idx.radii[slot]),
                "window": (float(idx.t0[slot]), float(idx.t1[slot])),
                "band": (float(idx.z0[slot]), float(idx.z1[slot])),
            }
            for part, me, near, volume_id in ((part_a, a, b, vid), (part_b, b, a, other_vid)):
                cut = overlap_part(
                    live.frame,
                    volume_id=volume_id,
                    **me,
                    near_geom=near["geom"],
                    near_radius_m=near["radius_m"],
                    near_window=near["window"],
                    near_band=near["band"],
                    separation_m=rules.separation_m,
                    vertical_separation_m=rules.vertical_separation_m,
                )
                if cut is not None:
                    part.append(cut)
        return part_a, part_b

    def _zone_overlap(
        self, live: _Live, activity: Activity, projected: list[tuple[Any, float]], finding: ZoneFinding
    ) -> list[dict[str, Any]]:
        """The parts of an activity's volumes inside a zone."""
        zone, zgeom, zradius = live.zones[finding.zone]
        window = (zone.valid_from.timestamp(), zone.valid_to.timestamp() if zone.valid_to else 1e12)
        parts = []
        for v, (g, r) in zip(activity.volumes, projected, strict=True):
            if v.id not in finding.volumes:
                continue
            cut = overlap_part(
                live.frame,
                volume_id=v.id,
                geom=g,
                radius_m=r,
                window=_window(v),
                band=(v.floor_m, v.ceiling_m),
                near_geom=zgeom,
                near_radius_m=zradius,
                near_window=window,
                near_band=(zone.floor_m, zone.ceiling_m),
            )
            if cut is not None:
                parts.append(cut)
        return parts

    def _close_conflicts(
        self,
        s: Session,
        mechanism_id: str,
        activity_id: str,
        now: datetime,
        how: Resolution,
        note: str,
        *,
        by: str,
        zone: bool = False,
    ) -> tuple[list[str], int]:
        """Resolve every open conflict of an activity (or, with ``zone``, about a zone) as ``how``."""
        about = (
            ConflictRow.zone == activity_id
            if zone
            else (ConflictRow.activity == activity_id) | (ConflictRow.other_activity == activity_id)
        )
        rows = s.scalars(
            select(ConflictRow).where(
                ConflictRow.mechanism_id == mechanism_id,
                ConflictRow.status != ConflictStatus.RESOLVED.value,
                ConflictRow.kind.not_in([k.value for k in TACTICAL_KINDS]),
                about,
            )
        ).all()
        closed, seq = [], 0
        for row in sorted(rows, key=lambda r: (r.detected_at, int(r.id[1:]) if r.id[1:].isdigit() else 0)):
            seq = self._record_resolution(s, mechanism_id, SYSTEM, row.id, how, note, now, by=by)
            closed.append(row.id)
        return closed, seq

    def _activities_in_zone(self, live: _Live, zone: Zone, zgeom: Any) -> list[Activity]:
        t1 = zone.valid_to.timestamp() if zone.valid_to else 1e12
        found = live.index.query(
            zgeom,
            zone.footprint.radius_m,
            zone.valid_from.timestamp(),
            t1,
            zone.floor_m,
            zone.ceiling_m,
            separation_m=0.0,
            vertical_separation_m=0.0,
        )
        ids = sorted({c.key[0] for c in found})
        out = []
        for aid in ids:
            party, kind, _, _ = live.activities[aid]
            probe = Activity(
                aid, zone.mechanism, party, kind, (), ActivityState.NOTIFIED, 0, zone.valid_from, zone.valid_from
            )
            if zone_applies(zone, probe):
                out.append(self.activity(zone.mechanism, aid))
        return out

    def _party_member(self, live: _Live, actor: str) -> Member:
        member = self._any_member(live, actor)
        if member.role is not Role.PARTY:
            article = "an" if member.role.value[0] in "aeiou" else "a"
            raise Forbidden(f"member {actor!r} is {article} {member.role.value}; only a party may do this")
        return member

    def _any_member(self, live: _Live, actor: str) -> Member:
        for m in live.mechanism.members:
            if m.id == actor:
                return m
        raise NotFound(f"member {actor!r} is not a member of mechanism {live.mechanism.id!r}", field="member")

    def _own_activity(self, mechanism_id: str, activity_id: str, member: Member) -> Activity:
        current = self.activity(mechanism_id, activity_id)
        if current.party != member.party:
            raise Forbidden(f"activity {activity_id!r} belongs to {current.party}; only its party may change it")
        if current.state not in LIVE_STATES:
            raise InvalidState(f"activity {activity_id!r} is {current.state.value} and can no longer change")
        return current

    @staticmethod
    def _check_version(current: Activity, seen_version: int) -> None:
        if seen_version != current.version:
            raise StaleVersion(
                f"version: activity {current.id!r} is at version {current.version}, but you changed version "
                f"{seen_version}; read the current version and amend that",
                field="version",
            )

    @staticmethod
    def _next_activity_id(live: _Live, party: str) -> str:
        candidate = live.party_counts[party] + 1
        while f"{party}-{candidate:04d}" in live.activity_ids:
            candidate += 1
        return f"{party}-{candidate:04d}"


FRESHNESS_S = 1.0
"""How often a write compares the stored head of the record with the in-memory picture."""
TOKEN_CACHE_S = 1.0
"""How long an answer about a token is reused (a revocation from another process waits this long)."""
TOKEN_PREFIX = "dcf_"
"""Every bearer token starts with this, so a leaked one is easy to recognise."""


TACTICAL_KINDS = (ConflictKind.TRACKS, ConflictKind.CONFORMANCE, ConflictKind.INTRUSION)
_CLEARED = {
    ConflictKind.TRACKS.value: "no loss of separation predicted any more (or a track left the picture)",
    ConflictKind.CONFORMANCE.value: "the track is back within its party's notified volumes (or left the picture)",
    ConflictKind.INTRUSION.value: "the track is out of the other party's volume (or left the picture)",
}


def _tactical_key(row: ConflictRow) -> tuple[str, ...]:
    """What situation an open tactical conflict stands for (see ``Service._tactical``)."""
    if row.kind == ConflictKind.CONFORMANCE.value:
        return (row.kind, row.activity)
    return (row.kind, row.activity, str(row.other_activity))


def _extrapolated(rows: list[TrackRow], now: datetime) -> list[tuple[float, float, float]]:
    """Each track's (lat, lon, altitude) at ``now``, flown on from its report at its ground speed and track."""
    if not rows:
        return []
    dt = np.array([(now - r.at).total_seconds() for r in rows])
    lon, lat, _ = WGS84.fwd(
        np.array([r.lon for r in rows]),
        np.array([r.lat for r in rows]),
        np.array([r.trk_deg for r in rows]),
        np.array([r.gs_mps for r in rows]) * dt,
    )
    alt = np.array([r.alt_m for r in rows]) + np.array([r.vs_mps for r in rows]) * dt
    return list(zip(np.asarray(lat).tolist(), np.asarray(lon).tolist(), alt.tolist(), strict=True))


def _stop_prepared(row: dict[str, Any]) -> tuple[str, str]:
    """The signer of a prepared run: hand the drafted entry back instead of appending it."""
    raise Prepared(ledger.entry_doc(LedgerEntry(**row)))


def _key_doc(row: KeyRow) -> dict[str, Any]:
    return {
        "key_id": row.key_id,
        "fingerprint": row.key_id,
        "owner": row.owner,
        "public_key": row.public_key,
        "custody": row.custody,
        "registered_seq": row.registered_seq,
        "registered_at": iso(row.registered_at),
        "revoked_seq": row.revoked_seq,
    }


def _token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def message_view(doc: dict[str, Any], *, seq: int, sender: str, sent_at: datetime, reader: Member) -> dict[str, Any]:
    """A message as ``reader`` sees it when it is sent: agreed wording in the reader's language,
    free text as written with its original language."""
    if doc.get("template"):
        rendered = hotline.render(doc["template"], reader.language, doc["params"])
        text, original, lang = rendered.display or rendered.text, None, reader.language
    else:
        text, original, lang = doc["text"], {"text": doc["text"], "lang": doc["lang"]}, doc["lang"]
    return {
        "id": doc["id"],
        "seq": seq,
        "type": doc["type"],
        "from": sender,
        "to": doc["to"],
        "template": doc.get("template"),
        "params": doc.get("params", {}),
        "text": text,
        "lang": lang,
        "rtl": hotline.is_rtl(lang),
        "free_text": original is not None,
        "original": original,
        "about": doc.get("about"),
        "needs_ack": doc["needs_ack"],
        "sent_at": iso(sent_at),
        "deadline": doc.get("deadline"),
        "acknowledged": {},
        "acknowledged_at": None,
        "escalation_steps": 0,
        "status": "awaiting" if doc["needs_ack"] else "info",
        "awaiting": list(doc["to"]) if doc["needs_ack"] else [],
        "closed_at": None,
        "closed_note": None,
        "closed_resolution": None,
    }


def _names_one_of(ref: str, live: _Live) -> bool:
    """Whether ``ref`` can name a conflict (C1…) or a message (M1…) of the mechanism: no store read otherwise."""
    counts = {"C": live.conflict_count, "M": live.message_count}
    number = ref[1:]
    return ref[:1] in counts and number.isdigit() and 1 <= int(number) <= counts[ref[:1]]


def _situation(doc: dict[str, Any]) -> tuple[str, ...]:
    """What a strategic conflict is about, whatever the versions: the pair of activities, the activity and the
    zone, or the late activity. An amendment that leaves the situation in place re-raises the same situation."""
    kind = doc["kind"]
    if kind == ConflictKind.SEPARATION.value:
        return (kind, *sorted((doc["activity"], doc["other_activity"])))
    if kind == ConflictKind.ZONE.value:
        return (kind, doc["activity"], doc["zone"])
    return (kind, doc["activity"])


def _carried_deadlines(s: Session, mechanism_id: str, activity_id: str) -> dict[tuple[str, ...], tuple[str, datetime]]:
    """The open conflicts of an activity about to be superseded that a party they await has not acknowledged:
    situation → (conflict id, deadline). Read before they are closed."""
    rows = s.scalars(
        select(ConflictRow).where(
            ConflictRow.mechanism_id == mechanism_id,
            ConflictRow.status == ConflictStatus.OPEN.value,
            ConflictRow.kind.not_in([k.value for k in TACTICAL_KINDS]),
            (ConflictRow.activity == activity_id) | (ConflictRow.other_activity == activity_id),
        )
    )
    return {_situation(r.doc): (r.id, r.deadline) for r in rows}


def _check_not_ended(vols: tuple[Volume, ...], now: datetime) -> None:
    """Refuse a notice whose every window has already ended: a notice is of activity to come or under way."""
    ends = [v.end for v in vols if v.end is not None]
    if ends and len(ends) == len(vols) and max(ends) <= now:
        n = max(range(len(vols)), key=lambda i: ends[i])
        raise InvalidInput(
            f"volume {n + 1} end: every window of this notice has already ended (the latest ended at {iso(max(ends))} "
            f"UTC, now is {iso(now)} UTC); notify activity still to come or under way",
            field="end",
        )


def _band_in_zone(activity: Activity, volume_ids: Any, zone: Zone | None) -> dict[str, float]:
    """The altitude band of an activity's volumes inside a zone, clipped to the zone's own band."""
    vols = [v for v in activity.volumes if v.id in set(volume_ids)] or list(activity.volumes)
    floor, ceiling = min(v.floor_m for v in vols), max(v.ceiling_m for v in vols)
    if zone is not None:
        floor, ceiling = max(floor, zone.floor_m), min(ceiling, zone.ceiling_m)
    return {"floor_m": floor, "ceiling_m": ceiling}


def _heard_since(s: Session, live: _Live, party: str, check: MessageRow | None) -> datetime | None:
    """The time of the party's latest entry on the record after a line check was sent (None: silence)."""
    if check is None:
        return None
    members = [m.id for m in live.mechanism.members if m.party == party]
    return s.scalar(
        select(func.max(LedgerEntry.at)).where(
            LedgerEntry.mechanism_id == live.mechanism.id,
            LedgerEntry.seq > check.seq,
            LedgerEntry.actor.in_(members),
        )
    )


def _unanswered(mechanism_id: str) -> tuple[Any, ...]:
    """Where-clauses of the messages still waiting for an answer: they need one, have it not from every
    recipient, and were not closed with their conflict (what climbs, what waits, what an answer settles)."""
    return (
        MessageRow.mechanism_id == mechanism_id,
        MessageRow.needs_ack.is_(True),
        MessageRow.acknowledged_at.is_(None),
        MessageRow.closed_at.is_(None),
    )


def _awaits(c: ConflictRow | None, party: str) -> bool:
    """Whether an unresolved conflict still waits for ``party``'s acknowledgement."""
    return (
        c is not None
        and c.status != ConflictStatus.RESOLVED.value
        and party in c.doc.get("awaiting", ())
        and party not in c.acknowledged
    )


def _open_alerts(s: Session, mechanism_id: str, conflict_id: str, party: str | None = None) -> list[str]:
    """Ids of the alerts about a conflict still awaiting an acknowledgement (from ``party``, when given)."""
    rows = s.execute(
        select(MessageRow.id, MessageRow.recipients, MessageRow.acknowledged)
        .where(*_unanswered(mechanism_id), MessageRow.about_kind == "conflict", MessageRow.about_id == conflict_id)
        .order_by(MessageRow.seq)
    ).all()
    return [r.id for r in rows if party is None or (party in r.recipients and party not in r.acknowledged)]


def _answering(live: _Live) -> set[str]:
    """Parties and facilitators: the members who answer the hotline (observers only read it)."""
    return {m.party for m in live.mechanism.members if m.role is not Role.OBSERVER}


def _window(v: Volume) -> tuple[float, float]:
    assert v.start is not None and v.end is not None
    return v.start.timestamp(), v.end.timestamp()


def _member_doc(m: Member) -> dict[str, Any]:
    return {"id": m.id, "name": m.name, "role": m.role.value, "party": m.party, "language": m.language}


def _title(value: str | None) -> str:
    if value is None:
        return ""
    if not isinstance(value, str):
        raise InvalidInput("title: expected text", field="title")
    if len(value) > 500:
        raise InvalidInput("title: longer than 500 characters", field="title")
    return value.strip()


def _conflict_public(row: ConflictRow) -> dict[str, Any]:
    return conflict_public(
        row.doc,
        status=row.status,
        resolution=row.resolution,
        detected_at=iso(row.detected_at),
        acknowledged=row.acknowledged,
        resolved_at=iso(row.resolved_at) if row.resolved_at else None,
        resolved_by=row.resolved_by,
    )


def conflict_public(
    doc: dict[str, Any],
    *,
    status: str,
    resolution: str | None,
    detected_at: str,
    acknowledged: dict[str, Any],
    resolved_at: str | None,
    resolved_by: str | None,
) -> dict[str, Any]:
    """A conflict as members read it: what was detected, and where it stands (live or replayed)."""
    return {
        **doc,
        "status": status,
        "resolution": resolution,
        "detected_at": detected_at,
        "acknowledged": acknowledged,
        "resolved_at": resolved_at,
        "resolved_by": resolved_by,
    }


def message_status_view(
    doc: dict[str, Any],
    *,
    seq: int,
    sender: str,
    sent_at: datetime,
    acknowledged: dict[str, Any],
    acknowledged_at: str | None,
    steps: int,
    reader: Member,
    closed_at: str | None = None,
    closed_note: str | None = None,
) -> dict[str, Any]:
    """A message worded for its reader, with where it stands (live or replayed).

    ``status``: ``info`` (needs no acknowledgement), ``awaiting`` (some recipient must still
    acknowledge: ``awaiting`` lists them), ``acknowledged``, or ``closed`` (the conflict it alerted
    to was resolved first: it stopped climbing; ``closed_note`` says why).
    """
    view = message_view(doc, seq=seq, sender=sender, sent_at=sent_at, reader=reader)
    view["acknowledged"] = acknowledged
    view["acknowledged_at"] = acknowledged_at
    view["escalation_steps"] = steps
    view["closed_at"], view["closed_note"] = closed_at, closed_note
    closed = re.fullmatch(r"conflict (\S+) resolved \((\w+)\)", closed_note or "")
    view["closed_resolution"] = closed.group(2) if closed else None
    if not doc["needs_ack"]:
        view["status"], view["awaiting"] = "info", []
    elif acknowledged_at is not None:
        view["status"], view["awaiting"] = "acknowledged", []
    elif closed_at is not None:
        view["status"], view["awaiting"] = "closed", []
    else:
        view["status"], view["awaiting"] = "awaiting", [p for p in doc["to"] if p not in acknowledged]
    return view
