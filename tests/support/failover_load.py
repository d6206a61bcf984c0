"""The clients of a failover drill (``support.pg_pair``): threads writing hotline messages over HTTP to a
server whose database fails over, keeping every acknowledged write and every refusal with its time; the
refused window worked out from them; and the check of the outcome, every acknowledged write looked for in
the record on the new primary. ``tests/store/test_failover.py`` and ``bench/failover.py`` both use them.
"""

from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass
from typing import Any

import httpx
from sqlalchemy import select

from deconflict.record.chain import EntryType
from deconflict.store import open_store
from deconflict.store.schema import LedgerEntry

__all__ = ["Ack", "Refusal", "WriteLoad", "lost_writes"]


@dataclass(frozen=True)
class Ack:
    """A write the service acknowledged (2xx): the message's id and text, and when the answer came
    (``time.monotonic()``)."""

    id: str
    text: str
    at: float


@dataclass(frozen=True)
class Refusal:
    """A write the service did not take: its status (0: no HTTP answer), the answer's body and
    ``Retry-After`` header, and when it came (``time.monotonic()``)."""

    status: int
    body: str
    retry_after: str | None
    at: float


class WriteLoad:
    """Client threads sending hotline messages over HTTP as fast as they are answered, as the members whose
    ``tokens`` are given (member → bearer token), each message's text unique. A 2xx is kept as an
    :class:`Ack`; anything else as a :class:`Refusal`, after which the thread waits ``retry_s`` and sends
    a new message (so refusals are counted ``retry_s`` apart at most; a client honouring ``Retry-After``
    would come back later).
    """

    def __init__(self, base: str, tokens: dict[str, str], *, threads: int = 4, retry_s: float = 0.05) -> None:
        self.base = base
        self._tokens = list(tokens.items())
        self._threads = [threading.Thread(target=self._send, args=(n,), daemon=True) for n in range(threads)]
        self._retry_s = retry_s
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._acks: list[Ack] = []
        self._refusals: list[Refusal] = []

    def start(self) -> WriteLoad:
        for t in self._threads:
            t.start()
        return self

    def stop(self) -> None:
        """Stop sending; waits for each thread's request in flight."""
        self._stop.set()
        for t in self._threads:
            t.join(timeout=60)

    @property
    def acks(self) -> list[Ack]:
        with self._lock:
            return list(self._acks)

    @property
    def refusals(self) -> list[Refusal]:
        with self._lock:
            return list(self._refusals)

    def acks_after(self, t: float) -> int:
        """How many writes were acknowledged after ``t`` (``time.monotonic()``)."""
        with self._lock:
            return sum(1 for a in self._acks if a.at > t)

    def refusals_after(self, t: float) -> int:
        with self._lock:
            return sum(1 for r in self._refusals if r.at > t)

    def _send(self, n: int) -> None:
        member, token = self._tokens[n % len(self._tokens)]
        count = 0
        with httpx.Client(headers={"Authorization": f"Bearer {token}"}, timeout=60) as client:
            while not self._stop.is_set():
                count += 1
                text = f"{member} client {n} message {count}"
                try:
                    r = client.post(f"{self.base}/messages", json={"text": text})
                except httpx.TransportError as e:
                    refusal = Refusal(0, f"{type(e).__name__}: {e}", None, time.monotonic())
                else:
                    if 200 <= r.status_code < 300:
                        with self._lock:
                            self._acks.append(Ack(str(r.json()["id"]), text, time.monotonic()))
                        continue
                    refusal = Refusal(r.status_code, r.text, r.headers.get("retry-after"), time.monotonic())
                with self._lock:
                    self._refusals.append(refusal)
                self._stop.wait(self._retry_s)

    def window(self, killed_at: float, promoted_at: float) -> dict[str, Any]:
        """The refused window of a failover whose primary was killed at ``killed_at`` and whose standby was
        promoted (the promotion returned) at ``promoted_at`` (``time.monotonic()``): from the first refusal
        after the kill to the first write acknowledged after the promotion, in seconds, with the refusals
        counted in it and after it, and how long after the promotion the service took writes again.

        Raises:
            ValueError: no refusal after the kill, or no write acknowledged after the promotion.
        """
        acks, refusals = self.acks, self.refusals
        refused = [r.at for r in refusals if r.at >= killed_at]
        if not refused:
            raise ValueError("no request was refused after the primary was killed")
        first_refusal = min(refused)
        back = [a.at for a in acks if a.at > max(first_refusal, promoted_at)]
        if not back:
            raise ValueError("no write was acknowledged after the standby was promoted")
        recovered = min(back)
        return {
            "refused_window_s": round(recovered - first_refusal, 3),
            "kill_to_first_refusal_s": round(first_refusal - killed_at, 3),
            "kill_to_promoted_s": round(promoted_at - killed_at, 3),
            "promoted_to_first_ack_s": round(recovered - promoted_at, 3),
            "requests_refused": sum(1 for t in refused if t <= recovered),
            "refused_after_recovery": sum(1 for t in refused if t > recovered),
            "acks_during_window": sum(1 for a in acks if first_refusal < a.at < recovered),
        }


def lost_writes(url: str, mechanism: str, acks: list[Ack]) -> list[Ack]:
    """The acknowledged writes the record at ``url`` does not hold as they were acknowledged: no message
    with the ack's id, or one with another text (an id given twice). Read from the record's entries
    themselves, not from the tables projected from them."""
    store = open_store(url, migrate=False)
    try:
        with store.read() as s:
            payloads = s.scalars(
                select(LedgerEntry.payload).where(
                    LedgerEntry.mechanism_id == mechanism, LedgerEntry.type == EntryType.MESSAGE_SENT.value
                )
            ).all()
    finally:
        store.close()
    texts = {m["id"]: m.get("text") for m in map(json.loads, payloads)}  # the duty loop's phrases carry no text
    return [a for a in acks if texts.get(a.id) != a.text]
