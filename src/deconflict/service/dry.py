"""What the service would write, without writing it, and how an entry it wrote is compared with that: the
writer :mod:`deconflict.service.recheck` runs the service's own code through, and the words it names
entries with.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session

from deconflict.record import salt
from deconflict.record.chain import EntryType, canonical
from deconflict.service.picture import Picture
from deconflict.service.writer import RecordWriter
from deconflict.store import projection

__all__ = ["DryWriter", "brief", "differing", "entry_key", "entry_words"]


class DryWriter(RecordWriter):
    """A writer whose appends go to the recheck's in-memory tables only, collecting what it would write."""

    def __init__(self, s: Session, mechanism_id: str, picture: Picture, after_seq: int) -> None:  # noqa: D107
        # no Context: nothing is signed, no rules' cache, no listeners
        self.mechanism_id = mechanism_id
        self._session = s
        self._picture = picture
        self._seq = after_seq
        self.new_conflicts = 0
        self.new_messages = 0
        self.new_activities: dict[str, str] = {}
        self.written: list[tuple[str, str, Any]] = []

    @property
    def last_seq(self) -> int:
        return self._seq

    def floor(self, at: datetime) -> datetime:
        return at  # recomputing at an entry's own time, which never goes back

    def append(self, actor: str, type: EntryType, payload: Any, at: datetime) -> int:
        self._seq += 1
        self.written.append((actor, type.value, payload))
        projection.apply(
            self.session,
            mechanism=self.mechanism_id,
            type=type.value,
            payload=payload,
            at=at,
            seq=self._seq,
            actor=actor,
        )
        return self._seq


def entry_key(type_: str, p: Any) -> tuple[Any, ...]:
    """What an entry of the service is about, to pair a recomputed entry with the recorded one."""
    if not isinstance(p, dict):
        return (type_,)
    if type_ == EntryType.CONFLICT_DETECTED.value:
        return (type_, p.get("kind"), p.get("activity"), p.get("other_activity"), p.get("zone"))
    if type_ == EntryType.MESSAGE_SENT.value:
        about = p.get("about") or {}
        return (type_, p.get("template"), about.get("kind"), about.get("id"), tuple(p.get("to") or ()))
    if type_ == EntryType.MESSAGE_ESCALATED.value:
        return (type_, p.get("id"), p.get("rung"))
    return (type_, p.get("id"))


def entry_words(type_: str, p: Any) -> str:
    """An entry of the service in a few words."""
    if not isinstance(p, dict):
        return type_
    if type_ == EntryType.CONFLICT_DETECTED.value:
        about = p.get("other_activity") or p.get("zone")
        return f"conflict {p.get('id')} ({p.get('kind')}, {p.get('activity')}{' with ' + str(about) if about else ''})"
    if type_ == EntryType.MESSAGE_SENT.value:
        to = ", ".join(p.get("to") or ())
        return f"message {p.get('id')} ({p.get('template')} to {to})"
    if type_ == EntryType.MESSAGE_ESCALATED.value:
        return f"the escalation of {p.get('id')} to rung {p.get('rung')} ({p.get('name')})"
    if type_ == EntryType.CONFLICT_RESOLVED.value:
        return f"conflict {p.get('id')} resolved as {p.get('resolution')}"
    return f"{type_} {p.get('id', '')}".strip()


def differing(recorded: Any, expected: Any) -> list[str]:
    if not isinstance(recorded, dict) or not isinstance(expected, dict):
        return ["payload"]
    # the salt is made under the service's key, which a recomputation does not hold (record/salt.py)
    keys = sorted((set(recorded) | set(expected)) - {salt.FIELD})
    return [k for k in keys if canonical(recorded.get(k)) != canonical(expected.get(k))]


def brief(p: Any, k: str) -> str:
    value = p.get(k) if isinstance(p, dict) else None
    text = canonical(value).decode() if value is not None else "absent"
    return text if len(text) <= 60 else text[:57] + "..."
