"""What one entry says about itself, worked out without any other entry, so in any process.

:func:`entry_facts` recomputes an entry document's hash and payload hash (and checks its signature
when its key is given in advance); :func:`line_facts` does the same for a bundle's numbered JSON
lines, read strictly (:func:`read_line`; a line that cannot be read is :func:`unreadable`). The
sequential checks (:mod:`deconflict.record.verify`) take it from there.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, NamedTuple

from deconflict.clock import parse_utc
from deconflict.record import signing
from deconflict.record.chain import EntryType, canonical, entry_hash, sha256_hex
from deconflict.record.strict_json import Refused, load_json

__all__ = ["BRIEF_FIELDS", "RING_TYPES", "Facts", "entry_facts", "line_facts", "read_line", "unreadable"]


RING_TYPES = frozenset(
    {EntryType.MECHANISM_DECLARED, EntryType.MEMBER_ADDED, EntryType.KEY_REGISTERED, EntryType.KEY_REVOKED}
)
"""Entry types whose payload tells the key ring who may sign (kept whole for the sequential pass)."""


class Facts(NamedTuple):
    """What one entry says about itself, worked out without any other entry (so in any process)."""

    seq: Any
    actor: str
    key_id: str | None
    signature: str | None
    prev_hash: Any
    digest: str
    payload_changed: bool
    problem: str | None
    """An unreadable field, or a hash that does not match the entry's contents."""
    signature_ok: bool | None
    """Checked against the key given in advance for its key id; None when none was given."""
    doc: dict[str, Any] | None
    """What the sequential checks need: the whole entry for entries the key ring learns from, else its
    seq, actor, type and the payload fields the authority rules read (no ``payload``: withheld)."""
    unreadable: bool = False
    """The line could not be read at all (``problem`` says which)."""
    at: datetime | None = None


BRIEF_FIELDS = (
    "id",
    "party",
    "owner",
    "from_party",
    "awaiting",
    "resolution",
    "template",
    "to",
    "settles",
    "key_id",
    "public_key",
    "role",
)
"""The payload fields the authority rules read (only these cross to the sequential pass)."""


_NOTICE_TYPES = frozenset(
    {EntryType.ACTIVITY_NOTIFIED.value, EntryType.ACTIVITY_AMENDED.value, EntryType.ACTIVITY_CANCELLED.value}
)


def _notice_time(seq: Any, doc: dict[str, Any], at: datetime | None) -> str | None:
    """A version of a notice is given when it is recorded: its ``notified_at`` is the entry's own time (lead
    times and deadlines are counted from it, so a backdated one would shift them)."""
    p = doc["payload"]
    if not isinstance(p, dict):
        return None  # the authority rules name a payload that is not an object
    stated = p.get("notified_at")
    if at is not None and stated == doc.get("at"):
        return None  # the very text the entry's time was read from (read once)
    try:
        same = at is not None and parse_utc(stated, field="notified_at") == at
    except Exception:  # noqa: BLE001 - an unreadable time is simply not the entry's
        same = False
    if same:
        return None
    return (
        f"entry {seq}: the notice says it was given at {stated!r}, but its entry is at {doc.get('at')!r}; "
        "a notice is given when it is recorded"
    )


def entry_facts(
    mechanism: str, doc: dict[str, Any], known_keys: dict[str, str], payload_text: bytes | None = None
) -> Facts:
    """What ``doc`` says about itself: its hash recomputed, its payload hash checked, and its signature
    checked when ``known_keys`` gives the key for its key id in advance. ``payload_text``: the payload's
    canonical JSON when the reader already has it (:func:`~deconflict.record.strict_json.load_entry_line`)."""
    seq = doc.get("seq")
    digest, problem, at = "", None, None
    withheld = "payload" not in doc
    try:
        if withheld:
            payload_changed = False
        else:
            text = payload_text if payload_text is not None else canonical(doc["payload"])
            payload_changed = sha256_hex(text) != doc.get("payload_hash")
    except (ValueError, TypeError):  # a number that is not finite: JSON has none, so no hash covers it
        payload_changed = False
        problem = f"entry {seq}: its payload holds a number that is not finite (1e999, NaN or Infinity)"
    if problem is None and not payload_changed:
        try:
            if type(seq) is not int:
                raise ValueError(f"seq {seq!r} is not a whole number")
            if doc.get("mechanism", mechanism) != mechanism:
                raise ValueError(
                    f"it is an entry of mechanism {doc.get('mechanism')!r}, but this record is of {mechanism!r} "
                    "(its header or the entry was changed)"
                )
            at = parse_utc(doc.get("at"), field="at")
            digest = entry_hash(
                mechanism=mechanism,
                seq=seq,
                at=at,
                actor=str(doc.get("actor")),
                type=str(doc.get("type")),
                payload_hash=str(doc.get("payload_hash")),
                prev_hash=str(doc.get("prev_hash")),
            )
        except Exception as e:  # noqa: BLE001 - any unreadable field makes the entry bad
            problem = f"entry {seq}: unreadable ({e})"
        else:
            if digest != doc.get("hash"):
                problem = f"entry {seq}: hash does not match its contents (time, actor, type or hashes changed)"
    if problem is None and not payload_changed and not withheld and doc.get("type") in _NOTICE_TYPES:
        problem = _notice_time(seq, doc, at)
    key_id, signature = doc.get("key_id"), doc.get("signature")
    signature_ok = None
    if problem is None and not payload_changed and key_id in known_keys:
        signature_ok = signing.verify(known_keys[key_id], signing.entry_message(digest), signature)
    if doc.get("type") in RING_TYPES or seq == 1:
        view = doc
    else:
        view = {"seq": seq, "actor": doc.get("actor"), "type": doc.get("type")}
        if not withheld:
            p = doc["payload"]
            view["payload"] = {k: p[k] for k in BRIEF_FIELDS if k in p} if isinstance(p, dict) else p
    return Facts(
        seq,
        str(doc.get("actor")),
        key_id,
        signature,
        doc.get("prev_hash"),
        digest,
        payload_changed,
        problem,
        signature_ok,
        view,
        at=at,
    )


def read_line(line: bytes) -> dict[str, Any] | str:
    """A bundle line's entry document read strictly, or why it cannot be read (the words after
    ``entry N (line M): ``, as :func:`unreadable` gives them)."""
    try:
        doc = load_json(line)
    except Refused as e:
        return f"refused: {e}"
    except ValueError:  # not JSON, or not UTF-8
        return "unreadable, the file was changed"
    if not isinstance(doc, dict):
        return "not an entry (a JSON object), the file was changed"
    return doc


def unreadable(number: int, why: str) -> Facts:
    """The facts of bundle line ``number`` (line 1 is the header), which could not be read: ``why``."""
    return Facts(
        number - 1, "", None, None, None, "", False, f"entry {number - 1} (line {number}): {why}", None, None, True
    )


def line_facts(mechanism: str, lines: list[tuple[int, bytes]], known_keys: dict[str, str]) -> list[Facts]:
    """Facts of numbered JSON lines (line 1 is a bundle's header); stops at the first unreadable line."""
    out = []
    for number, line in lines:
        doc = read_line(line)
        if isinstance(doc, str):
            out.append(unreadable(number, doc))
            break
        out.append(entry_facts(mechanism, doc, known_keys))
    return out
