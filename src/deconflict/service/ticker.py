"""Exactly one process runs the duty loop: a lease in the database, taken and renewed at each tick.

Several server processes may serve one database (PostgreSQL, or SQLite on one machine). Each runs a
tick every second; before doing anything, a tick takes or renews the lease named ``duty``: one
conditional ``UPDATE`` (the row is ours, or it has run out) or, the first time, an ``INSERT``. Both are
atomic in the database, so at any instant one process holds it, and the others' ticks do nothing. When
the holder dies, its lease runs out ``LEASE_S`` seconds after its last tick and the next process to tick
takes it: the duty loop resumes within a few seconds, and since every step it records is worked out
from stored instants (:mod:`deconflict.service.duty`), nothing due meanwhile is missed, and nothing is
recorded twice (a step already stored is not due again; two writers of one entry meet on the record's
primary key).

The lease runs on each process's own clock: hosts must keep their clocks in step (NTP), as the record's
times already require.
"""

from __future__ import annotations

import os
import secrets
import socket
from datetime import datetime, timedelta
from typing import Any, cast

from sqlalchemy import CursorResult, or_, update
from sqlalchemy.exc import IntegrityError

from deconflict.store import Store
from deconflict.store.schema import TickerLease

__all__ = ["LEASE", "LEASE_S", "holder_name", "hold", "lease", "release"]

LEASE = "duty"
LEASE_S = 5.0
"""How long a lease lasts after its holder's last tick: how soon another process takes over."""


def holder_name() -> str:
    """This process's name as a lease holder: host, process id and a random tag (each start is new)."""
    return f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(4)}"


def hold(store: Store, holder: str, now: datetime, lease_s: float = LEASE_S) -> bool:
    """Take or renew the duty lease for ``holder`` at ``now``; True when ``holder`` holds it until
    ``now + lease_s``."""
    until = now + timedelta(seconds=lease_s)
    with store.transaction() as s:
        renewed = s.execute(
            update(TickerLease)
            .where(TickerLease.name == LEASE, or_(TickerLease.holder == holder, TickerLease.expires_at <= now))
            .values(holder=holder, expires_at=until)
            .execution_options(synchronize_session=False)
        )
        if cast(CursorResult[Any], renewed).rowcount == 1:
            return True
        if s.get(TickerLease, LEASE) is not None:
            return False  # another process holds it, and it has not run out
        try:
            with s.begin_nested():
                s.add(TickerLease(name=LEASE, holder=holder, expires_at=until))
        except IntegrityError:
            return False  # another process took it first
        return True


def release(store: Store, holder: str, now: datetime) -> bool:
    """Give up the duty lease, if ``holder`` holds it, as of ``now``: a process stopping cleanly lets the next
    one take over at its next tick instead of ``LEASE_S`` later (meanwhile nothing was ticked, and ``/readyz``
    said so). True when it was ``holder``'s."""
    with store.transaction() as s:
        given = s.execute(
            update(TickerLease)
            .where(TickerLease.name == LEASE, TickerLease.holder == holder, TickerLease.expires_at > now)
            .values(expires_at=now)
            .execution_options(synchronize_session=False)
        )
        return cast(CursorResult[Any], given).rowcount == 1


def lease(store: Store) -> tuple[str, datetime] | None:
    """Who holds the duty lease and until when (None: nobody ever took it)."""
    with store.read() as s:
        row = s.get(TickerLease, LEASE)
        return None if row is None else (row.holder, row.expires_at)
