"""Tables: the record (``ledger``) and the projections rebuilt from it.

Portable SQL only (SQLite by default, PostgreSQL by URL). Times are stored as
timezone-aware UTC and always come back aware.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    DateTime,
    Float,
    ForeignKeyConstraint,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    PrimaryKeyConstraint,
    String,
    Text,
    TypeDecorator,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column


class UTCDateTime(TypeDecorator[datetime]):
    """An aware UTC datetime in, an aware UTC datetime out, whatever the database keeps."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to the store; use aware UTC")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


Seq = Integer().with_variant(BigInteger(), "postgresql")
"""A record's sequence number: 64-bit on both stores (SQLite's INTEGER is; PostgreSQL's BIGINT), since callers
may ask for entries after any number up to 2**62 (migration 0009)."""

NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)
    type_annotation_map = {datetime: UTCDateTime(), dict[str, Any]: JSON(), list[Any]: JSON()}


class LedgerEntry(Base):
    """One appended, hash-chained entry of a mechanism's record."""

    __tablename__ = "ledger"
    mechanism_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    seq: Mapped[int] = mapped_column(Seq, primary_key=True, autoincrement=False)
    at: Mapped[datetime]
    actor: Mapped[str] = mapped_column(String(64))
    type: Mapped[str] = mapped_column(String(64))
    payload: Mapped[str] = mapped_column(Text)
    """Canonical JSON of the payload."""
    payload_hash: Mapped[str] = mapped_column(String(64))
    prev_hash: Mapped[str] = mapped_column(String(64))
    hash: Mapped[str] = mapped_column(String(64))
    key_id: Mapped[str | None] = mapped_column(String(128))
    signature: Mapped[str | None] = mapped_column(String(256))


class MechanismRow(Base):
    __tablename__ = "mechanisms"
    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    doc: Mapped[dict[str, Any]]
    """The mechanism's recorded definition (area, rules, members at declaration)."""
    declared_at: Mapped[datetime]


class MemberRow(Base):
    __tablename__ = "members"
    mechanism_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    role: Mapped[str] = mapped_column(String(16))
    party: Mapped[str] = mapped_column(String(64))
    language: Mapped[str] = mapped_column(String(8))
    added_at: Mapped[datetime]
    __table_args__ = (ForeignKeyConstraint(["mechanism_id"], ["mechanisms.id"]),)


class ActivityRow(Base):
    """The current version of each activity."""

    __tablename__ = "activities"
    mechanism_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    party: Mapped[str] = mapped_column(String(64))
    kind: Mapped[str] = mapped_column(String(32))
    state: Mapped[str] = mapped_column(String(16))
    version: Mapped[int] = mapped_column(Integer)
    start: Mapped[datetime]
    end: Mapped[datetime]
    notified_at: Mapped[datetime]
    doc: Mapped[dict[str, Any]]
    __table_args__ = (
        ForeignKeyConstraint(["mechanism_id"], ["mechanisms.id"]),
        Index("ix_activities_window", "mechanism_id", "start", "end"),
    )


class ActivityVersionRow(Base):
    """Every version of every activity, never overwritten."""

    __tablename__ = "activity_versions"
    mechanism_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    activity_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    version: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    seq: Mapped[int] = mapped_column(Seq)
    """The ledger entry that made this version."""
    at: Mapped[datetime]
    actor: Mapped[str] = mapped_column(String(64))
    doc: Mapped[dict[str, Any]]
    __table_args__ = (
        ForeignKeyConstraint(["mechanism_id", "activity_id"], ["activities.mechanism_id", "activities.id"]),
    )


class ZoneRow(Base):
    __tablename__ = "zones"
    mechanism_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    owner: Mapped[str] = mapped_column(String(64))
    kind: Mapped[str] = mapped_column(String(16))
    declared_at: Mapped[datetime]
    withdrawn_at: Mapped[datetime | None]
    doc: Mapped[dict[str, Any]]
    __table_args__ = (ForeignKeyConstraint(["mechanism_id"], ["mechanisms.id"]),)


class ConflictRow(Base):
    __tablename__ = "conflicts"
    mechanism_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    kind: Mapped[str] = mapped_column(String(16))
    status: Mapped[str] = mapped_column(String(16))
    resolution: Mapped[str | None] = mapped_column(String(16))
    activity: Mapped[str] = mapped_column(String(64))
    """The activity whose notice raised it."""
    other_activity: Mapped[str | None] = mapped_column(String(64))
    zone: Mapped[str | None] = mapped_column(String(64))
    parties: Mapped[list[Any]]
    """Parties concerned: who must acknowledge."""
    distance_m: Mapped[float | None] = mapped_column(Float)
    detected_at: Mapped[datetime]
    deadline: Mapped[datetime]
    """When acknowledgement is due."""
    acknowledged: Mapped[dict[str, Any]]
    """Party → {member, at} of each acknowledgement."""
    resolved_at: Mapped[datetime | None]
    resolved_by: Mapped[str | None] = mapped_column(String(64))
    doc: Mapped[dict[str, Any]]
    __table_args__ = (
        ForeignKeyConstraint(["mechanism_id"], ["mechanisms.id"]),
        Index("ix_conflicts_status", "mechanism_id", "status"),
    )


class TokenRow(Base):
    """A member's bearer token, kept only as its SHA-256 hash. Credentials, not record: not in the ledger."""

    __tablename__ = "tokens"
    token_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    mechanism_id: Mapped[str] = mapped_column(String(64))
    member_id: Mapped[str] = mapped_column(String(64))
    label: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[datetime]
    revoked_at: Mapped[datetime | None]
    __table_args__ = (
        ForeignKeyConstraint(["mechanism_id", "member_id"], ["members.mechanism_id", "members.id"]),
        Index("ix_tokens_member", "mechanism_id", "member_id"),
    )


class MessageRow(Base):
    """A hotline message in a mechanism's channel, with its acknowledgements and escalation steps."""

    __tablename__ = "messages"
    mechanism_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    seq: Mapped[int] = mapped_column(Seq)
    """The record entry that sent it."""
    type: Mapped[str] = mapped_column(String(16))
    sender: Mapped[str] = mapped_column(String(64))
    """Member id, or 'system' for alerts, line checks and escalations."""
    recipients: Mapped[list[Any]]
    """Party codes (parties, facilitator, observer) the message is addressed to."""
    needs_ack: Mapped[bool]
    sent_at: Mapped[datetime]
    deadline: Mapped[datetime | None]
    acknowledged: Mapped[dict[str, Any]]
    """Party → {member, at}."""
    acknowledged_at: Mapped[datetime | None]
    """When the last recipient acknowledged (the climb stops)."""
    steps: Mapped[int] = mapped_column(Integer)
    """Escalation steps recorded so far."""
    closed_at: Mapped[datetime | None] = mapped_column(default=None)
    """When the conflict it alerted to was resolved before every recipient acknowledged (the climb stops)."""
    closed_note: Mapped[str | None] = mapped_column(String(200), default=None)
    """Why it was closed, e.g. 'conflict C5 resolved (amended)'."""
    about_kind: Mapped[str | None] = mapped_column(String(16))
    about_id: Mapped[str | None] = mapped_column(String(64))
    doc: Mapped[dict[str, Any]]
    __table_args__ = (
        ForeignKeyConstraint(["mechanism_id"], ["mechanisms.id"]),
        Index("ix_messages_open", "mechanism_id", "needs_ack", "acknowledged_at"),
        Index("ix_messages_about", "mechanism_id", "about_id", "type", "seq"),
        Index("ix_messages_seq", "mechanism_id", "seq"),
    )
    """``ix_messages_about``: what the duty loop asks every second, for each party (the latest line check sent
    to it; whether its line was announced down after that check), found without reading the channel's
    other messages (migration 0014). ``ix_messages_seq``: the channel read in the record's order from a
    sequence number on, a page at a time (``GET .../messages``; migration 0015)."""


class KeyRow(Base):
    """A public key of a mechanism, as its record registered it (projection of key entries)."""

    __tablename__ = "keys"
    mechanism_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    key_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    owner: Mapped[str] = mapped_column(String(64))
    """The party code whose members' entries it signs, or 'service'."""
    public_key: Mapped[str] = mapped_column(String(64))
    custody: Mapped[str] = mapped_column(String(32))
    """'party' (only the party holds the private key) or 'service (demo only)'."""
    registered_seq: Mapped[int] = mapped_column(Seq)
    registered_at: Mapped[datetime]
    revoked_seq: Mapped[int | None] = mapped_column(Seq)
    __table_args__ = (ForeignKeyConstraint(["mechanism_id"], ["mechanisms.id"]),)


class CustodyKeyRow(Base):
    """A private key the service holds: its own, and parties' keys in the demo only. Not part of the record."""

    __tablename__ = "custody_keys"
    owner: Mapped[str] = mapped_column(String(140), primary_key=True)
    """'service', or '<mechanism>/<party>' for a demo party key."""
    key_id: Mapped[str] = mapped_column(String(64))
    seed: Mapped[str] = mapped_column(String(64))
    note: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[datetime]


class CheckpointRow(Base):
    """A chain's head (sequence number and hash) at a time, signed by the service and sent to every member."""

    __tablename__ = "checkpoints"
    mechanism_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    seq: Mapped[int] = mapped_column(Seq, primary_key=True, autoincrement=False)
    hash: Mapped[str] = mapped_column(String(64))
    at: Mapped[datetime]
    key_id: Mapped[str] = mapped_column(String(64))
    signature: Mapped[str] = mapped_column(String(128))
    note: Mapped[str | None] = mapped_column(Text)
    """The same head as a C2SP checkpoint note over the Merkle root of entries 1..seq, signed by the service
    (None for checkpoints signed before notes existed)."""


class CosignatureRow(Base):
    """A party's cosignature (C2SP ``cosignature/v1``) of a checkpoint note: its side checked that the note
    extends the last one it cosigned. One per party and checkpoint; the first one received is kept."""

    __tablename__ = "cosignatures"
    mechanism_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    seq: Mapped[int] = mapped_column(Seq, primary_key=True, autoincrement=False)
    party: Mapped[str] = mapped_column(String(64), primary_key=True)
    key_id: Mapped[str] = mapped_column(String(64))
    """The party's record key (registered in the record) that made the cosignature."""
    line: Mapped[str] = mapped_column(String(400))
    """The signature line as it goes under the note: ``— <name> <base64>``."""
    received_at: Mapped[datetime]
    __table_args__ = (ForeignKeyConstraint(["mechanism_id", "seq"], ["checkpoints.mechanism_id", "checkpoints.seq"]),)


class TrackRow(Base):
    """The latest reported state of each track (the tactical picture). Reports are not record entries;
    the conflicts they raise are."""

    __tablename__ = "tracks"
    mechanism_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    party: Mapped[str] = mapped_column(String(64), primary_key=True)
    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    at: Mapped[datetime]
    """When the state was measured."""
    lat: Mapped[float] = mapped_column(Float)
    lon: Mapped[float] = mapped_column(Float)
    alt_m: Mapped[float] = mapped_column(Float)
    gs_mps: Mapped[float] = mapped_column(Float)
    trk_deg: Mapped[float] = mapped_column(Float)
    vs_mps: Mapped[float] = mapped_column(Float)
    received_at: Mapped[datetime]
    __table_args__ = (
        ForeignKeyConstraint(["mechanism_id"], ["mechanisms.id"]),
        Index("ix_tracks_at", "mechanism_id", "at"),
    )


class TrackReportRow(Base):
    """Every position report received: the tracks' history, keyed time first (reports arrive in time
    order, so a new one goes at the end of the key's index: migration 0013)."""

    __tablename__ = "track_reports"
    mechanism_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    party: Mapped[str] = mapped_column(String(64), primary_key=True)
    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    at: Mapped[datetime] = mapped_column(primary_key=True)
    lat: Mapped[float] = mapped_column(Float)
    lon: Mapped[float] = mapped_column(Float)
    alt_m: Mapped[float] = mapped_column(Float)
    gs_mps: Mapped[float] = mapped_column(Float)
    trk_deg: Mapped[float] = mapped_column(Float)
    vs_mps: Mapped[float] = mapped_column(Float)
    __table_args__ = (
        PrimaryKeyConstraint("mechanism_id", "at", "party", "id"),
        ForeignKeyConstraint(["mechanism_id"], ["mechanisms.id"]),
    )


class TickerLease(Base):
    """Which process runs the duty loop (deadlines, escalations, line checks, checkpoints) until when.

    Several server processes may share one database; exactly one of them ticks. It holds this lease and
    renews it at each tick; when it dies, the lease runs out and the next process to try takes it."""

    __tablename__ = "ticker_lease"
    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    holder: Mapped[str] = mapped_column(String(200))
    """The process that holds it: host, process id and a random tag (a restarted process is a new holder)."""
    expires_at: Mapped[datetime]
    """When the lease runs out unless renewed (the holder's clock)."""


class PreviewTally(Base):
    """How many previews a member asked for (``reached_party`` empty), and how many of them reached each
    other party's notices and when last (``reached_party`` that party): the counts ``GET .../previews``
    reads, kept across processes and restarts (:mod:`deconflict.service.previews`)."""

    __tablename__ = "preview_tallies"
    mechanism_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    member_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    reached_party: Mapped[str] = mapped_column(String(64), primary_key=True)
    """The party whose notices the member's previews reached; empty for the member's own total."""
    party: Mapped[str] = mapped_column(String(64))
    """The member's own party."""
    count: Mapped[int] = mapped_column(Seq)
    last_at: Mapped[datetime | None]
    """When the last counted preview was asked for."""
    __table_args__ = (ForeignKeyConstraint(["mechanism_id"], ["mechanisms.id"]),)


class PreviewAdmission(Base):
    """One preview admitted in the last hour, by member: what the rate limit (``previews_per_hour``)
    counts; rows older than an hour are pruned at the member's next preview."""

    __tablename__ = "preview_admissions"
    mechanism_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    member_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    n: Mapped[int] = mapped_column(Seq, primary_key=True, autoincrement=False)
    """The member's preview number (its total once this one was counted)."""
    at: Mapped[datetime]
    __table_args__ = (ForeignKeyConstraint(["mechanism_id"], ["mechanisms.id"]),)


class ReplaySnapshot(Base):
    """A mechanism's projected state just after entry ``seq`` of its record, kept so that replay at a
    later instant applies only the entries after it (:mod:`deconflict.store.snapshots`).

    Derived from the record and never trusted blindly: ``hash`` is the chain's hash of entry ``seq``,
    held against the record whenever the snapshot is used, and ``content_hash`` the SHA-256 of the
    canonical JSON that ``body`` compresses, checked on every load (a snapshot stored as a delta has its own hash
    checked, and its base's, down to a full one); ``deconflict replay
    --check-snapshots`` rebuilds each one from entry 1 and compares."""

    __tablename__ = "replay_snapshots"
    mechanism_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    seq: Mapped[int] = mapped_column(Seq, primary_key=True, autoincrement=False)
    hash: Mapped[str] = mapped_column(String(64))
    """The hash of entry ``seq`` (the head the snapshot was taken at)."""
    at: Mapped[datetime]
    """The time of entry ``seq``."""
    content_hash: Mapped[str | None] = mapped_column(String(64))
    """SHA-256 (hex) of the canonical JSON of the state (before compression); None in a live piece alone."""
    rows: Mapped[int] = mapped_column(Seq)
    """Rows in the state, all tables together (0 in a live piece alone)."""
    size: Mapped[int] = mapped_column(Seq)
    """Bytes of the canonical JSON before compression (0 in a live piece alone)."""
    body: Mapped[bytes | None] = mapped_column(LargeBinary)
    """The canonical JSON of the state, zlib-compressed; None in a live piece alone (written between two
    whole snapshots, migration 0012)."""
    made_at: Mapped[datetime]
    """When it was written (the service's clock)."""
    live_body: Mapped[bytes | None] = mapped_column(LargeBinary, default=None)
    """The live piece (:func:`deconflict.store.replay.live` at ``at``, cut with ``keep_s``) as canonical
    JSON ``{"keep_s", "rows"}``, zlib-compressed: what replay around a later instant reads instead of
    ``body``. None in snapshots written before migration 0012 (replay around an instant skips those)."""
    live_hash: Mapped[str | None] = mapped_column(String(64), default=None)
    """SHA-256 (hex) of the live piece's canonical JSON."""
    live_rows: Mapped[int | None] = mapped_column(Seq, default=None)
    """Rows in the live piece."""
    delta_body: Mapped[bytes | None] = mapped_column(LargeBinary, default=None)
    """The whole state as what changed since the whole snapshot at an earlier entry (its base): canonical JSON
    ``{"base", "base_hash", "rows", "gone"}``, zlib-compressed, with ``body`` None (migration 0016). The
    state it stands for is the base's, resolved the same way, with ``rows`` (per table, the rows changed or
    added) put in and the rows whose keys ``gone`` lists taken out; ``content_hash`` is that state's."""
    delta_hash: Mapped[str | None] = mapped_column(String(64), default=None)
    """SHA-256 (hex) of the delta's canonical JSON, checked on every load."""
    __table_args__ = (ForeignKeyConstraint(["mechanism_id"], ["mechanisms.id"]),)
