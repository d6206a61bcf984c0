"""Where an activity stands at an instant: the one meaning of "in force" (the service's, the page's, replay's)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from deconflict.clock import parse_utc

__all__ = ["phase"]


def phase(doc: dict[str, Any], at: datetime) -> str:
    """Where an activity stands at an instant: ``cancelled``, ``planned`` (no window has begun), ``in_force``
    (the instant is inside one of its windows), ``between`` (one window ended, another is to come) or ``ended``.
    A notice seen in part (conflicts-only) is judged by the windows of the parts the reader may see."""
    if doc.get("state") == "cancelled":
        return "cancelled"
    windows = [
        (parse_utc(v["start"], field="start"), parse_utc(v["end"], field="end") if v.get("end") else None)
        for v in (doc.get("volumes") or doc.get("overlap") or [])
        if v.get("start")
    ]
    if not windows:
        return "planned"
    if any(start <= at and (end is None or at < end) for start, end in windows):
        return "in_force"
    if all(end is not None and end <= at for _, end in windows):
        return "ended"
    return "planned" if all(at < start for start, _ in windows) else "between"
