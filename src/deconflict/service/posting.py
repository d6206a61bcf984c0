"""Recording hotline messages inside a writer's transaction: a member's message, or a standard one the
service sends itself (alerts, line checks, escalations), its wording stored as template and parameters.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from deconflict import hotline
from deconflict.clock import iso
from deconflict.record.chain import EntryType
from deconflict.service.context import SYSTEM
from deconflict.service.picture import Picture
from deconflict.service.writer import RecordWriter

__all__ = ["post", "post_standard"]


def post(
    w: RecordWriter,
    picture: Picture,
    *,
    sender: str,
    rendered: hotline.Rendered,
    doc: dict[str, Any],
    to: list[str],
    about: dict[str, str] | None,
    now: datetime,
    deadline: datetime | None = None,
) -> dict[str, Any]:
    """Record one message; returns its payload (``deadline``: an earlier one it inherits)."""
    kind = rendered.type.value if hasattr(rendered.type, "value") else str(rendered.type)
    return _record(w, picture, sender, kind, rendered.needs_ack, doc, to, about, now, deadline)


def post_standard(
    w: RecordWriter,
    picture: Picture,
    template: str,
    params: dict[str, Any],
    to: list[str],
    about: tuple[str, str],
    now: datetime,
    deadline: datetime | None = None,
) -> dict[str, Any]:
    """A standard message from the system to the parties ``to``, about (kind, id): its template and
    parameters, checked, and no wording (each reader's page and the API word it in the reader's language)."""
    tpl, values = hotline.worded_params(template, params)
    doc = {"template": template, "params": values, "lang": "en"}
    about_doc = {"kind": about[0], "id": about[1]}
    return _record(w, picture, SYSTEM, tpl.type.value, tpl.needs_ack, doc, to, about_doc, now, deadline)


def _record(
    w: RecordWriter,
    picture: Picture,
    sender: str,
    kind: str,
    needs_ack: bool,
    doc: dict[str, Any],
    to: list[str],
    about: dict[str, str] | None,
    now: datetime,
    deadline: datetime | None,
) -> dict[str, Any]:
    message_id = w.next_message_id()
    now = w.floor(now)  # a deadline never lies before the entry that sets it (the clock may have stepped back)
    if needs_ack:
        deadline = deadline or now + timedelta(seconds=picture.mechanism.rules.ack_deadline_s)
    else:
        deadline = None
    payload = {
        "id": message_id,
        "type": kind,
        "to": to,
        "needs_ack": needs_ack,
        "deadline": iso(deadline) if deadline else None,
        "about": about,
        **doc,
    }
    w.append(sender, EntryType.MESSAGE_SENT, payload, now)
    return payload
