"""One unit of work on a mechanism's record: each entry is signed, appended and applied to the tables in
one transaction; nothing is written when anything fails. After the commit, and only then, the picture
moves on (head, counters, activity ids); once the commit is on the disk (:mod:`deconflict.store.durable`),
the listeners hear of its entries.

Time never goes backwards in the record: when the clock has stepped back below the last entry's time
(a restart with a skewed clock, an NTP step), the entry is stamped with the last entry's time instead
and a warning says by how much the clock stepped back. Every entry is held to the record's authority
rules before it is appended (:mod:`deconflict.service.rules`): the service never writes what a verifier
would refuse.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from contextlib import AbstractContextManager, ExitStack
from datetime import datetime
from types import TracebackType
from typing import Any

from sqlalchemy import bindparam, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from deconflict.clock import iso
from deconflict.errors import DeconflictError
from deconflict.record import authority, chain, salt
from deconflict.record.chain import EntryType
from deconflict.service import rules
from deconflict.service.context import IMMEDIATE, Context, SignatureMode, StaleRecord
from deconflict.service.picture import Picture
from deconflict.store import direct, follow, ledger, projection
from deconflict.store.schema import CheckpointRow, LedgerEntry

__all__ = ["RecordWriter", "last_entry_at", "newest_checkpoint_at", "not_before", "record_now", "time_floor"]

log = logging.getLogger(__name__)


_ENTRY_AT = select(LedgerEntry.at).where(
    LedgerEntry.mechanism_id == bindparam("mechanism"), LedgerEntry.seq == bindparam("seq")
)
_NEWEST_CHECKPOINT_AT = (
    select(CheckpointRow.at)
    .where(CheckpointRow.mechanism_id == bindparam("mechanism"))
    .order_by(CheckpointRow.seq.desc())
    .limit(1)
)
"""The writer's reads, built once and run on the transaction's connection (Core): building a statement and
running it through the ORM session cost several times the query itself here."""


def last_entry_at(s: Session, mechanism_id: str, seq: int) -> datetime | None:
    """The time of entry ``seq`` of a mechanism's record (None: no such entry, e.g. seq 0)."""
    if seq <= 0:
        return None
    found = direct.rows(ledger.connection_of(s), _ENTRY_AT, {"mechanism": mechanism_id, "seq": seq})
    at: datetime | None = found[0][0] if found else None
    return at


def newest_checkpoint_at(s: Session, mechanism_id: str) -> datetime | None:
    """The time of the newest signed checkpoint of a mechanism's record (None: none yet)."""
    found = direct.rows(ledger.connection_of(s), _NEWEST_CHECKPOINT_AT, {"mechanism": mechanism_id})
    at: datetime | None = found[0][0] if found else None
    return at


def time_floor(s: Session, mechanism_id: str, seq: int) -> datetime | None:
    """The earliest time the record's next entry may carry: entry ``seq``'s time, or the newest checkpoint's
    when later (a checkpoint says the record held only its entries at its time, so what follows is later)."""
    last = last_entry_at(s, mechanism_id, seq)
    signed = newest_checkpoint_at(s, mechanism_id)
    if signed is None or (last is not None and last >= signed):
        return last
    return signed


def not_before(at: datetime, last: datetime | None, *, what: str) -> datetime:
    """``at``, or ``last`` when the clock has stepped back below it (and a warning saying by how much)."""
    if last is None or at >= last:
        return at
    log.warning(
        "clock stepped back %.3f s: %s stamped %s (the last entry's time) instead of the clock's %s; "
        "the record's times never go backwards (check the host's clock and NTP)",
        (last - at).total_seconds(),
        what,
        iso(last),
        iso(at),
    )
    return last


def record_now(ctx: Context, picture: Picture, mode: SignatureMode) -> datetime:
    """The instant a use case runs at: the signed entry's own time, or the clock's, but never before the
    record's last entry (the clock may have stepped back: a warning says by how much). The times a payload
    carries (when a notice was given, its lead time, its deadlines) start from it."""
    at = mode.now(ctx.clock)
    if mode.signed is not None:
        return at
    return not_before(at, picture.last_at, what=f"{picture.id} entry {picture.head.seq + 1}")


class RecordWriter:
    """A transaction that appends entries to one mechanism's record.

    ``picture`` numbers the conflicts and messages the transaction creates (the writer counts them);
    ``mode`` signs the first entry a member appends in it (later ones are signed with a key the service
    holds). Use it as a context manager::

        with RecordWriter(ctx, mechanism_id, picture=picture, mode=mode) as w:
            seq = w.append(actor, EntryType.ACTIVITY_NOTIFIED, doc, now)

    Raises (on leaving):
        StaleRecord: another process appended to the record first (every picture is dropped).
    """

    _gathered: direct.Gathered | None = None
    """With ``gather``, on SQLite: the rows of entries that only add rows (:func:`_adds_rows_only`), each
    table's inserted together at the end (:func:`deconflict.store.direct.gathered`); anything else written,
    and any read through :attr:`session`, runs after them. (A class default:
    :class:`~deconflict.service.dry.DryWriter` sets up its own fields.)"""

    def __init__(
        self,
        ctx: Context,
        mechanism_id: str,
        *,
        picture: Picture | None = None,
        mode: SignatureMode = IMMEDIATE,
        gather: bool = False,
    ) -> None:
        self._ctx = ctx
        self.mechanism_id = mechanism_id
        self._picture = picture
        self._mode: SignatureMode | None = None if mode.immediate else mode
        self._tx: AbstractContextManager[Session] | None = None
        self._session: Session | None = None
        self._head: chain.Head | None = None
        self._last_at: datetime | None = None
        """The time of the last entry (read at the first append, then kept)."""
        self.new_conflicts = 0
        """Conflicts detected in this transaction (numbered after the picture's count)."""
        self.new_messages = 0
        """Messages sent in this transaction (numbered after the picture's count)."""
        self.new_activities: dict[str, str] = {}
        """Activities first notified in this transaction: id → party."""
        self._rows: list[dict[str, Any]] | None = [] if ctx.entry_listeners else None
        """The rows appended, for the entry listeners (None: nobody listens)."""
        self._reads: list[Any] = []
        """Each row's payload as the append read it from its canonical text (:func:`chain.canonical_read`)."""
        self._gather = gather
        self._stack = ExitStack()

    @property
    def session(self) -> Session:
        """The transaction's session (for the reads and table changes a use case makes beside its entries):
        the rows appended so far are in its tables."""
        assert self._session is not None, "use RecordWriter as a context manager"
        if self._gathered is not None:
            self._gathered.flush()
        return self._session

    def flush(self) -> None:
        """Insert the rows gathered so far: a row the database refuses is refused here, while the use case
        still runs, and not at the commit (where it would be the commit's failure, every notice's)."""
        if self._gathered is not None:
            self._gathered.flush()

    @property
    def last_seq(self) -> int:
        """Sequence number of the last entry appended (0: none yet)."""
        return self._head.seq if self._head is not None else 0

    def __enter__(self) -> RecordWriter:
        self._tx = self._ctx.store.transaction()
        self._session = self._tx.__enter__()
        if self._gather:
            try:
                self._gathered = self._stack.enter_context(direct.gathered(ledger.connection_of(self._session)))
            except BaseException as e:
                self._tx.__exit__(type(e), e, e.__traceback__)
                raise
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        assert self._tx is not None
        gathered, self._gathered = self._gathered, None
        self._stack.close()  # gathering ends; what it holds is inserted below, before the commit
        if exc is None and self._head is not None:
            try:  # every process hears of the commit (PostgreSQL's NOTIFY goes out when it commits)
                if gathered is not None:
                    gathered.flush()
                follow.announce(self.session, self.mechanism_id, self._head.seq)
            except BaseException as e:
                self._tx.__exit__(type(e), e, e.__traceback__)  # rolls back
                self._rolled_back()
                if isinstance(e, IntegrityError):  # a gathered entry refused by the ledger's key, as at commit
                    self._stale(e)
                raise
        try:
            self._tx.__exit__(exc_type, exc, tb)  # commits, or rolls back when the body raised
        except IntegrityError as e:
            self._rolled_back()
            self._stale(e)
        except BaseException:
            self._rolled_back()
            raise
        if exc is not None:
            self._rolled_back()
            if isinstance(exc, IntegrityError):
                self._stale(exc)
            return
        self._committed()

    def _rolled_back(self) -> None:
        if self._head is not None:  # the rules' state moved on with entries that were rolled back
            rules.forget(self._ctx, self.mechanism_id)

    def _stale(self, e: IntegrityError) -> None:
        if "ledger" not in str(e):
            raise e
        self._ctx.pictures.clear()  # another process appended: every picture is suspect
        raise StaleRecord() from e

    def _committed(self) -> None:
        mid = self.mechanism_id
        if self._head is None:
            return
        if self._last_at is not None:
            self._ctx.entry_times[mid] = (self._head, self._last_at)
        picture = self._ctx.pictures.peek(mid)
        if picture is not None:
            picture.head = self._head
            picture.last_at = self._last_at
            picture.conflict_count += self.new_conflicts
            picture.message_count += self.new_messages
            picture.activity_ids.update(self.new_activities)
            picture.party_counts.update(self.new_activities.values())
        if self._rows or self._ctx.listeners:
            self._ctx.store.durable.then(self._tell(mid, self._head.seq, self._rows, self._reads))

    def _tell(self, mid: str, seq: int, rows: list[dict[str, Any]] | None, reads: list[Any]) -> Callable[[], None]:
        """What the listeners hear of this commit, once it is on the disk (nothing leaves the process before):
        the entries' documents, their payloads those the append read from their canonical text (as a read of
        the stored rows would give them, without parsing each again)."""
        ctx = self._ctx

        def tell() -> None:
            if rows:
                docs = [ledger.row_doc(row, read) for row, read in zip(rows, reads, strict=True)]
                for entry_listener in ctx.entry_listeners:
                    entry_listener(mid, docs)
            for listener in ctx.listeners:
                listener(mid, seq)

        return tell

    def _verified(self, picture: Picture) -> bool:
        """Whether ``picture``'s head was compared with the stored head after this thread took the record's
        gate (``retrying`` expires the picture once the gate is held, and the use case's first look reads the
        stored head): then no writer that passes the gate can have appended since, and the head need not be
        read again under the record's lock. A writer that came in without the gate still cannot fork the
        chain: the ledger's primary key refuses its second entry at the same place (:class:`StaleRecord`)."""
        since = self._ctx.store.gate.held_since(self.mechanism_id)
        return since is not None and picture.checked_at >= since

    def _entry_at(self, head: chain.Head) -> datetime | None:
        """The time of the record's entry ``head`` (None: no entry yet), remembered from the last commit: an
        entry's hash covers its time, so the time kept for the same (seq, hash) is the stored one."""
        kept = self._ctx.entry_times.get(self.mechanism_id)
        if kept is not None and kept[0] == head:
            return kept[1]
        at = last_entry_at(self.session, self.mechanism_id, head.seq)
        if at is not None:
            self._ctx.entry_times[self.mechanism_id] = (head, at)
        return at

    def _time_floor(self, head: chain.Head) -> datetime | None:
        """:func:`time_floor` after ``head``, the head entry's time taken from :meth:`_entry_at`."""
        last = self._entry_at(head)
        signed = newest_checkpoint_at(self.session, self.mechanism_id)
        if signed is None or (last is not None and last >= signed):
            return last
        return signed

    def floor(self, at: datetime) -> datetime:
        """The time an entry appended now at ``at`` is stamped with: ``at``, or the last entry's time when the
        clock has stepped back below it. Times a payload derives from the clock (deadlines) start from it, so
        a deadline never lies before the entry that sets it (:meth:`append` logs the step back)."""
        if self._head is None and self._last_at is None:
            s = self.session
            cached = self._ctx.pictures.peek(self.mechanism_id)
            head = cached.head if cached is not None else ledger.read_head(s, self.mechanism_id)
            last = self._entry_at(head)
            return at if last is None or at >= last else last
        return at if self._last_at is None or at >= self._last_at else self._last_at

    def append(self, actor: str, type: EntryType, payload: Any, at: datetime) -> int:
        """Sign, append and apply one entry; returns its sequence number.

        ``at`` is clamped to the last entry's time when the clock has stepped back below it (logged).

        Raises:
            Prepared: a prepared run reached the member's entry (nothing is written).
            StaleVersion, Forbidden: the party's signature does not fit the entry.
        """
        assert self._session is not None, "use RecordWriter as a context manager"
        s = self._session
        gathered = self._gathered
        if gathered is not None and not _adds_rows_only(type, payload):
            gathered.flush()  # this entry's projection may read or change what was gathered
            gathered = None
        mid = self.mechanism_id
        ledger.lock_record(s, mid)  # appends to this record serialised in the database, before reading its head
        cached = self._ctx.pictures.peek(mid)
        if self._head is None and cached is not None and not self._verified(cached):
            if ledger.read_head(s, mid) != cached.head:
                # another process appended since this picture was built: what the use case worked out from it
                # may be stale (findings, numbering), so it runs again on a fresh picture, now that the lock is
                # ours
                self._ctx.pictures.clear()
                raise StaleRecord()
        after = self._head or (cached.head if cached is not None else None)
        if after is None:
            after = ledger.read_head(s, mid)
        if self._head is None:
            self._last_at = self._time_floor(after)
        kind = type.value
        if self._last_at is not None and at < self._last_at:  # (the words only when the clock stepped back)
            at = not_before(at, self._last_at, what=f"{mid} entry {after.seq + 1} ({kind})")
        state = rules.state_after(self._ctx, s, mid, after)
        seq = after.seq + 1
        if salt.salted(kind, at):  # its hash must not be readable by guessing (record/salt.py)
            made = self._ctx.signers.salter.salt(
                mechanism=mid, seq=seq, at=at, actor=actor, type=kind, prev_hash=after.hash
            )
            body, read = chain.canonical_read({**payload, salt.FIELD: made})
        else:
            body, read = chain.canonical_read(payload)
        doc = rules.admit(state, mechanism=mid, seq=seq, at=at, actor=actor, type=kind, payload=read)
        mode = None
        if actor not in chain.SERVICE_ACTORS:
            mode, self._mode = self._mode, None
        sign = self._ctx.signers.signer(s, cached, mid, actor, mode)
        head = ledger.append(
            s,
            mechanism=mid,
            actor=actor,
            type=kind,
            payload=payload,
            at=at,
            after=after,
            sign=sign,
            rows=self._rows,
            body=body,
        )
        if self._rows is not None:
            self._reads.append(read)
        self._head = head
        self._last_at = at
        authority.apply(doc, state)
        self._ctx.authority[mid] = (head.seq, state)
        projection.apply(s, mechanism=mid, type=kind, payload=payload, at=at, seq=head.seq, actor=actor)
        if gathered is None and self._gathered is not None:
            self._gathered.flush()
        if type is EntryType.ACTIVITY_NOTIFIED:
            self.new_activities[payload["id"]] = payload["party"]
        return head.seq

    def refusal(self, actor: str) -> DeconflictError | None:
        """Why an entry of ``actor``'s appended now, signed by a key the service holds, would be refused at its
        signature (a party that signs its own entries), read in this transaction as :meth:`append` reads it;
        None: the service can sign it. Asked before appending, so that a refusal costs no entry rolled back
        (and no rebuild of the rules' state)."""
        try:
            self._ctx.signers.signer(
                self.session, self._ctx.pictures.peek(self.mechanism_id), self.mechanism_id, actor, None
            )
        except DeconflictError as e:
            return e
        return None

    def _numbering(self) -> Picture:
        assert self._picture is not None, "numbering conflicts and messages needs the picture"
        return self._picture

    def next_conflict_id(self) -> str:
        """The id of the next conflict detected in this transaction (C1, C2 …)."""
        self.new_conflicts += 1
        return f"C{self._numbering().conflict_count + self.new_conflicts}"

    def next_message_id(self) -> str:
        """The id of the next message sent in this transaction (M1, M2 …)."""
        self.new_messages += 1
        return f"M{self._numbering().message_count + self.new_messages}"


def _adds_rows_only(type: EntryType, payload: Any) -> bool:
    """Whether an entry's projection only inserts rows (a message that settles nothing, a conflict
    detected, an activity's first version): then its rows may wait to be inserted with the others
    (:func:`deconflict.store.direct.gathered`)."""
    if type is EntryType.MESSAGE_SENT:
        return not payload.get("settles")
    if type is EntryType.ACTIVITY_NOTIFIED:
        return bool(payload.get("version") == 1)
    return type is EntryType.CONFLICT_DETECTED
