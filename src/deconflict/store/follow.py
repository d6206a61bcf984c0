"""Hear of the commits other processes make to the records, as soon as they are made.

Several server processes may serve one database. Each keeps a live picture of every mechanism and wakes
its event streams when a record grows; a commit made by another process must do both here too. The
writer announces each commit (:func:`announce`, in the committing transaction) and a :class:`Follower`
thread in every process hears it and calls back with (mechanism, head sequence number):

- PostgreSQL: ``NOTIFY deconflict_record`` with the mechanism and its new head, delivered by the server
  to every connection that ``LISTEN`` s, when (and only if) the transaction commits. The follower listens
  on a connection of its own; when it is cut (a restart, a failover), it connects again (the store's URL
  may name several hosts: it finds the new primary) and then reads every record's head, so that a
  commit announced while it was away is not missed.
- SQLite (several processes on one machine): no notifications; the follower asks ``PRAGMA data_version``
  a few times a second (it changes when another connection commits), and reads the records' heads when
  it changed.

A callback may come for a commit this process made itself, or twice for one commit: it says only that
the record's head is at least that far; the callee compares with what it knows.
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Callable
from typing import Any

from sqlalchemy import Engine, select, text
from sqlalchemy.orm import Session

from deconflict.store import ledger
from deconflict.store.schema import MechanismRow

__all__ = ["CHANNEL", "Follower", "announce"]

CHANNEL = "deconflict_record"
"""The PostgreSQL notification channel of the records' commits."""

log = logging.getLogger(__name__)

Heard = Callable[[str, int], None]
"""Called with (mechanism id, its head's sequence number) from the follower's thread."""


def announce(session: Session, mechanism: str, seq: int) -> None:
    """Tell every process that ``mechanism``'s record reaches ``seq`` once this transaction commits
    (PostgreSQL; on SQLite the followers see the commit for themselves)."""
    if session.get_bind().dialect.name == "postgresql":
        session.execute(
            text("SELECT pg_notify(:channel, :payload)"), {"channel": CHANNEL, "payload": json.dumps([mechanism, seq])}
        )


class Follower:
    """A thread that hears of commits to the records and calls ``heard`` for each."""

    def __init__(self, engine: Engine, heard: Heard, *, poll_s: float = 0.2, retry_s: float = 1.0) -> None:
        self._engine = engine
        self._heard = heard
        self._poll_s = poll_s
        self._retry_s = retry_s
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._failing = False
        self.connected = threading.Event()
        """Set while the follower is listening (tests wait for it; /readyz may show it)."""

    def start(self) -> None:
        """Start following (a daemon thread; :meth:`stop` ends it)."""
        if self._thread is not None:
            return
        self._thread = threading.Thread(target=self._run, name="deconflict-follower", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        """Stop following and wait for the thread to end."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None

    def _run(self) -> None:
        while not self._stop.is_set():
            raw: Any = None
            try:
                pooled = self._engine.raw_connection()
                raw = pooled.driver_connection
                pooled.detach()  # ours for good: never back to the pool with LISTEN on it
                if self._engine.dialect.name == "postgresql":
                    self._listen(raw)
                else:
                    self._poll(raw)
            except Exception as exc:  # noqa: BLE001 - the database went away: connect again shortly
                if not self._stop.is_set():  # one warning an outage, not one a second
                    level = logging.DEBUG if self._failing else logging.WARNING
                    log.log(
                        level, "following the records' commits: %s; connecting again every %g s", exc, self._retry_s
                    )
                    self._failing = True
            finally:
                self.connected.clear()
                if raw is not None:
                    try:
                        raw.close()
                    except Exception:  # noqa: BLE001, S110 - a broken connection may fail to close
                        pass
            self._stop.wait(self._retry_s)

    def _listen(self, conn: Any) -> None:
        conn.rollback()
        conn.autocommit = True
        conn.execute(f"LISTEN {CHANNEL}")
        self._connected()
        self._catch_up()  # what was announced before LISTEN (a start, a reconnection) is not missed
        while not self._stop.is_set():
            for note in conn.notifies(timeout=self._poll_s):
                self._deliver(note.payload)
            if self._stop.is_set():
                return

    def _poll(self, conn: Any) -> None:
        version = conn.execute("PRAGMA data_version").fetchone()[0]
        self._connected()
        while not self._stop.wait(self._poll_s):
            now = conn.execute("PRAGMA data_version").fetchone()[0]
            if now != version:
                version = now
                self._catch_up()

    def _connected(self) -> None:
        if self._failing:
            log.warning("following the records' commits again")
            self._failing = False
        self.connected.set()

    def _catch_up(self) -> None:
        with Session(self._engine) as s:
            heads = [(mid, ledger.read_head(s, mid).seq) for mid in s.scalars(select(MechanismRow.id))]
        for mid, seq in heads:
            if seq:
                self._call(mid, seq)

    def _deliver(self, payload: str) -> None:
        try:
            mechanism, seq = json.loads(payload)
            self._call(str(mechanism), int(seq))
        except (ValueError, TypeError):
            log.warning("a record's commit announced in a form not understood: %r", payload[:200])

    def _call(self, mechanism: str, seq: int) -> None:
        try:
            self._heard(mechanism, seq)
        except Exception:  # noqa: BLE001 - a listener's failure must not end the following
            log.exception("a listener failed on %s's commit %d", mechanism, seq)
