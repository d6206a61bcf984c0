"""A salt in every payload a copy may withhold, so that its hash cannot be read by guessing.

A copy of the record withholds the payloads its reader may not see and keeps their ``payload_hash``
(the chain covers the hash, not the payload: :mod:`deconflict.record.chain`). That hash is SHA-256 over
the payload's canonical JSON, and many payloads are few enough to try them all: a standard phrase from
one party to another, an acknowledgement, a line check. Hashing every candidate until one matches reads
a withheld entry (a hostile party's test read "holding C4, to AZ" in 9 s). So from :data:`SALTED_SINCE`
every payload of a type a copy may withhold carries ``salt``: 128 bits, written as 22 characters of
URL-safe base64, that nobody without the service's key can work out. Guessing the rest of the payload no
longer finds its hash.

The salt is derived, not drawn: keyed BLAKE2b (a MAC, 128 bits out) under a key derived from the service's
own key, over the mechanism, the entry's number, its time, its actor, its type and the hash of the entry
before it. The same entry drafted twice gets the same salt, so a party that prepares an entry, signs it
and sends the signature finds the service drafting exactly what it signed. Since the actor is in it,
preparing an entry of one's own and never sending it tells the salt of nobody else's entry at that
number; since the time and the entry before are in it, a number written again after a restore or a
failover does not reuse a salt a party read there before (:meth:`Salter.salt`). Made before the
payload's canonical JSON, it costs one keyed hash an entry (under a microsecond) and no second
serialisation.

A salt only stops guessing. The payload's hash is still in every copy, and what a withheld entry's type,
time and number say (that an entry was written, and when) is as before (docs/disclosure.md §2).

Checked by the authority rules (:mod:`deconflict.record.authority`), so ``deconflict ledger verify``
names an entry written from :data:`SALTED_SINCE` that a copy could withhold and that has no salt. The
service's own views never show it (:func:`without`), and ``ledger verify``'s recomputation of the
service's entries does not compare it (nobody but the service can).
"""

from __future__ import annotations

import binascii
import hashlib
from datetime import UTC, datetime
from typing import Any

from deconflict.record.rules import NEVER_WITHHELD

__all__ = ["FIELD", "SALTED_SINCE", "Salter", "problem", "salted", "without"]

FIELD = "salt"
"""The payload field that holds the salt."""
SALTED_SINCE = datetime(2026, 12, 6, 17, 0, tzinfo=UTC)
"""Entries written from this instant on carry a salt when a copy may withhold them; earlier ones do not
(the record keeps them as written, and their hashes can still be guessed)."""
_SALTED_SINCE_ISO = "2026-12-06T17:00:00Z"
_LENGTH = 22
"""128 bits in URL-safe base64, without padding."""
_URL_SAFE = bytes.maketrans(b"+/", b"-_")
"""Standard base64 to its URL-safe alphabet."""
_ALPHABET = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_")
_NEVER = frozenset(t.value for t in NEVER_WITHHELD)


def salted(type: str, at: datetime) -> bool:
    """Whether an entry of ``type`` written at ``at`` carries a salt.

    >>> later = datetime(2026, 12, 7, tzinfo=UTC)
    >>> salted("message.sent", later), salted("key.registered", later)
    (True, False)
    >>> salted("message.sent", datetime(2025, 6, 1, tzinfo=UTC))
    False
    """
    return type not in _NEVER and at >= SALTED_SINCE


class Salter:
    """Makes the salts of the entries the service drafts, under a key derived from the service's own seed."""

    def __init__(self, seed: bytes) -> None:  # noqa: D107
        self._key = hashlib.blake2b(b"deconflict payload salt v1", key=seed, digest_size=32).digest()

    def salt(self, *, mechanism: str, seq: int, at: datetime, actor: str, type: str, prev_hash: str) -> str:
        """The salt of entry ``seq`` of ``mechanism``, written at ``at`` by ``actor``, of ``type``, after the
        entry whose hash is ``prev_hash``.

        A salt is told only with the entry it is in. A member that prepares an entry and never signs it learns
        the salt of its own entry at that number, never another actor's (the actor is in it). A record holds
        one entry a number, but a restore or a failover to a copy that lacked the last entries writes the
        numbers after its head again: the time and the entry before are in it too, so an entry written there
        again does not get the salt a party read at that number before (a party's mirror keeps the copy it
        read before the rewind).

        >>> s = Salter(bytes(32))
        >>> t = datetime(2027, 1, 1, 6, 0, tzinfo=UTC)
        >>> ack = dict(mechanism="m", seq=7, type="message.acknowledged", prev_hash="ab" * 32)
        >>> one = s.salt(actor="il-duty", at=t, **ack)
        >>> len(one), one == s.salt(actor="il-duty", at=t, **ack), one == s.salt(actor="tr-duty", at=t, **ack)
        (22, True, False)
        >>> from datetime import timedelta
        >>> one == s.salt(actor="il-duty", at=t + timedelta(microseconds=1), **ack)
        False
        >>> one == s.salt(actor="il-duty", at=t, **{**ack, "prev_hash": "cd" * 32})
        False
        """
        head = f"{mechanism}\n{seq}\n{at.isoformat()}\n{actor}\n{type}\n{prev_hash}".encode()
        digest = hashlib.blake2b(head, key=self._key, digest_size=16)
        return binascii.b2a_base64(digest.digest(), newline=False)[:_LENGTH].translate(_URL_SAFE).decode()


def problem(kind: str, at: Any, payload: dict[str, Any]) -> str | None:
    """What is wrong with a payload's salt (``at``: the entry's time, a datetime or its ISO text), or None.

    >>> problem("message.sent", "2026-12-07T00:00:00Z", {"id": "M1"})[:57]
    'no salt in its payload: written from 2026-12-06T17:00:00Z'
    >>> problem("message.sent", "2025-06-01T00:00:00Z", {"id": "M1"}) is None
    True
    >>> problem("message.sent", "2026-12-07T00:00:00Z", {"id": "M1", "salt": "short"})
    'its salt is not 128 bits in URL-safe base64 (22 characters of A-Z, a-z, 0-9, - and _)'
    """
    value = payload.get(FIELD)
    if value is None:
        if kind in _NEVER or not _from_rule(at):
            return None
        return (
            f"no salt in its payload: written from {_SALTED_SINCE_ISO}, a copy may withhold it, and its hash "
            "could then be read by guessing"
        )
    if not isinstance(value, str) or len(value) != _LENGTH or not _ALPHABET.issuperset(value) or value[-1] not in _LAST:
        return "its salt is not 128 bits in URL-safe base64 (22 characters of A-Z, a-z, 0-9, - and _)"
    return None


_LAST = frozenset("AQgw")
"""The last of 22 base64 characters holds two bits of the 128 and four zero bits."""


def _from_rule(at: Any) -> bool:
    if isinstance(at, datetime):
        return at >= SALTED_SINCE
    # an entry's time as the record writes it (ISO UTC with a Z): text of the same form compares as time does
    return isinstance(at, str) and at[:19] >= _SALTED_SINCE_ISO[:19]


def without(payload: Any) -> Any:
    """The payload without its salt (the same object when it has none).

    >>> without({"id": "M1", "salt": "x"}), without({"id": "M1"})
    ({'id': 'M1'}, {'id': 'M1'})
    """
    if isinstance(payload, dict) and FIELD in payload:
        return {k: v for k, v in payload.items() if k != FIELD}
    return payload
