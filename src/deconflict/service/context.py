"""What every use case is given: the context (store, clock, lock, pictures, signers, listeners), how the
entry it appends is signed (:class:`SignatureMode`, passed explicitly), and what it returns (:class:`Outcome`).

A party that holds its own key runs a use case twice: once *prepared* (the use case stops at the entry it
would append and raises :class:`Prepared` with it, unsigned, writing nothing), then *signed*, carrying the
signature the party made over that entry's hash (the use case runs again at the prepared instant).
"""

from __future__ import annotations

import functools
import threading
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, ParamSpec, TypeVar

from deconflict.clock import Clock
from deconflict.errors import InvalidInput, StaleVersion
from deconflict.model import Activity, ActivityState, Member
from deconflict.store import Store
from deconflict.store.gate import GateTimeout

if TYPE_CHECKING:
    from deconflict.record.authority import AuthorityState
    from deconflict.record.chain import Head
    from deconflict.service.picture import Picture, Pictures
    from deconflict.service.signers import Signers

__all__ = [
    "CLOCK_SKEW_S",
    "IMMEDIATE",
    "LIVE_STATES",
    "OPERATOR",
    "PREPARED_TTL_S",
    "SYSTEM",
    "Context",
    "Listener",
    "CheckpointListener",
    "EntryListener",
    "Outcome",
    "Prepared",
    "SignatureMode",
    "Signed",
    "StaleRecord",
    "each_alone",
    "retrying",
]

SYSTEM = "system"
"""Actor of entries the service makes itself (detected conflicts, automatic resolutions)."""
OPERATOR = "operator"
"""Actor of entries made by the installation's operator (declaring a mechanism)."""
LIVE_STATES = (ActivityState.NOTIFIED, ActivityState.ACKNOWLEDGED, ActivityState.ACTIVE)
"""States of an activity that is still in force or to come."""

PREPARED_TTL_S = 120.0
"""How long a prepared entry may wait for its signature."""
CLOCK_SKEW_S = 5.0
"""How far in the future a signed time may lie (clocks of the two sides differ a little)."""

Listener = Callable[[str, int], None]
"""Called with (mechanism id, last sequence number) after each committed change."""
CheckpointListener = Callable[[str, dict[str, Any]], None]
"""Called with (mechanism id, checkpoint document) after each signed checkpoint."""
EntryListener = Callable[[str, list[dict[str, Any]]], None]
"""Called with (mechanism id, the entry documents a transaction appended, in order) after it commits, before
the :data:`Listener` s hear of its last entry."""


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


@dataclass(frozen=True)
class SignatureMode:
    """How the first entry a member's use case appends is signed.

    Immediately (the default: by a key the service holds for the party), *prepared* (the use case
    stops at that entry and raises :class:`Prepared`), or with the party's ``signed`` signature of it.
    """

    prepare: bool = False
    signed: Signed | None = None

    @property
    def immediate(self) -> bool:
        """Whether the service signs at once (neither prepared nor carrying a signature)."""
        return not self.prepare and self.signed is None

    def now(self, clock: Clock) -> datetime:
        """The instant the use case runs at: the prepared entry's time when signed, else the clock's."""
        return self.signed.at if self.signed is not None else clock()

    def check(self, clock: Clock) -> None:
        """Refuse a signature made over an entry prepared too long ago, or dated in the future.

        Raises:
            InvalidInput: the signed time lies in the future.
            StaleVersion: the prepared entry is older than PREPARED_TTL_S.
        """
        if self.signed is None:
            return
        now = clock()
        if self.signed.at > now + timedelta(seconds=CLOCK_SKEW_S):
            raise InvalidInput("signed_at: lies in the future; prepare the request again", field="signed_at")
        if self.signed.at < now - timedelta(seconds=PREPARED_TTL_S):
            raise StaleVersion(
                f"signed_at: the prepared entry is more than {PREPARED_TTL_S:g} s old; prepare and sign again",
                field="signed_at",
            )


IMMEDIATE = SignatureMode()
"""Sign at once, with the service's key or a key it holds for the party."""


class StaleRecord(Exception):
    """The record grew in another process since the in-memory picture was built."""


P = ParamSpec("P")
R = TypeVar("R")


RETRIES = 5
"""How many times a write is run again on a fresh picture when other processes keep getting there first."""


def retrying(fn: Callable[P, R]) -> Callable[P, R]:
    """A write use case ``fn(ctx, mechanism_id, ...)`` (or ``mechanism_id=`` by keyword) run through the
    record's gate: this process's lock, then the gate every process on the database passes
    (:mod:`deconflict.store.gate`), so that no other process appends while it works out what to write.
    Its picture is checked against the stored head on the way in; should it still find the record moved
    (a writer that came in without the gate), it runs again on a fresh picture, up to :data:`RETRIES`
    times; then :class:`StaleRecord` is raised (the API answers 503, retry later), as it is when another
    process held the gate for longer than a write may wait."""

    @functools.wraps(fn)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        ctx = args[0]
        assert isinstance(ctx, Context), f"{fn.__name__}: a use case takes the context first"
        mechanism_id = kwargs["mechanism_id"] if "mechanism_id" in kwargs else args[1]
        assert isinstance(mechanism_id, str), f"{fn.__name__}: a write names its mechanism"
        try:
            # the disk is waited for after the lock is let go: the next write works out its entries meanwhile
            with ctx.store.durable.deferred(), ctx.lock, ctx.store.gate.hold(mechanism_id):
                ctx.pictures.expire(mechanism_id)  # held: the next look at the picture reads the stored head
                for _ in range(RETRIES):
                    try:
                        return fn(*args, **kwargs)
                    except StaleRecord:
                        ctx.reruns += 1
                        continue
                return fn(*args, **kwargs)
        except GateTimeout as e:  # another process held the record too long: busy, retry later (503)
            raise StaleRecord(str(e)) from e

    return wrapper


def each_alone(ctx: Context, places: Iterable[int], send: Callable[[int], R]) -> list[tuple[int, R | Exception]]:
    """The writes of a batch that go on their own (``send(i)`` for each place ``i``, in order): each one's answer,
    or the error it raised (the others are written all the same), with one wait for the disk for all of them,
    once the last is written."""
    answers: list[tuple[int, R | Exception]] = []
    with ctx.store.durable.deferred():
        for i in places:
            try:
                answers.append((i, send(i)))
            except Exception as e:  # noqa: BLE001 - this write's own answer; the others are written
                answers.append((i, e))
    return answers


@dataclass
class Context:
    """The dependencies of every use case over one store, and the per-process state they share."""

    store: Store
    clock: Clock
    lock: threading.RLock
    """Serialises the use cases of this process (the pictures must not change under a query)."""
    pictures: Pictures
    signers: Signers
    checkpoint_interval_s: float = 60.0
    """Every this many seconds (at a tick), a chain that has grown gets a signed checkpoint."""
    listeners: list[Listener] = field(default_factory=list)
    checkpoint_listeners: list[CheckpointListener] = field(default_factory=list)
    entry_listeners: list[EntryListener] = field(default_factory=list)
    """Hear the entries each of this process's writes committed (the event streams keep them)."""
    authority: dict[str, tuple[int, AuthorityState]] = field(default_factory=dict)
    """mechanism → (sequence number, the authority rules' state after that entry), as the writer keeps it."""
    entry_times: dict[str, tuple[Head, datetime]] = field(default_factory=dict)
    """mechanism → (a head of its record, the time of that entry), as the writer last committed or read it:
    an entry's hash covers its time, so the head names the time exactly (no query to read it back)."""
    heard: dict[tuple[str, str], Any] = field(default_factory=dict)
    """(mechanism, party) → what the line checks last found of the party (``queries.Heard``): where the record
    was read up to, and its first entry since its latest check."""
    audiences: dict[str, dict[tuple[str, str], Any]] = field(default_factory=dict)
    """mechanism → (``"conflict"`` or ``"message"``, id) → who may see it (``disclosure.Audience``), as the
    entries that recorded them were read (:func:`deconflict.service.queries.audiences`): it never changes."""
    checkpoint_seq: dict[str, int] = field(default_factory=dict)
    """mechanism → sequence number of its newest signed checkpoint, as this process last saw it."""
    tokens: dict[str, tuple[float, tuple[str, Member] | None]] = field(default_factory=dict)
    """token → (valid until, monotonic seconds; the answer): recent answers about bearer tokens."""
    snapshot_after: dict[str, float] = field(default_factory=dict)
    """mechanism → the monotonic second before which the duty loop writes no replay snapshot (:mod:`duty`)."""
    reruns: int = 0
    """Writes this process ran again because the record had moved under them (the metrics show it; with
    every writer passing the gate, it stays 0)."""
    holder: str = ""
    """This process's name as holder of the duty lease (:mod:`deconflict.service.ticker`)."""
    duty_held: bool = False
    """Whether this process held the duty lease at its last tick (it alone writes replay snapshots)."""

    @contextmanager
    def exclusive(self, mechanism_id: str) -> Iterator[Picture]:
        """Hold the lock and yield the mechanism's picture, rebuilt if another process wrote since (what is read
        is on the disk when the block ends: waited for after the lock is let go)."""
        with self.store.durable.deferred(), self.lock:
            yield self.pictures.fresh(mechanism_id)
