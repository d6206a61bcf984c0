"""What a caller receives: domain objects turned into documents, filtered by the disclosure policy."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal, overload

import orjson
from fastapi.encoders import jsonable_encoder
from fastapi.responses import JSONResponse, Response

from deconflict.analysis.phase import phase
from deconflict.api.deps import Caller
from deconflict.clock import parse_utc
from deconflict.disclosure import (
    conflict_for,
    conflict_public,
    entry_view,
    listed_part,
    message_status_view,
    message_view,
    sees_conflict,
    sees_message,
    sees_whole_notices,
)
from deconflict.formats.docs import activity_to_doc
from deconflict.mechanisms import mechanism_to_doc
from deconflict.model import Activity, Mechanism, Role
from deconflict.record.chain import EntryType
from deconflict.record.strict_json import all_finite, floats_written_alike
from deconflict.service import Service
from deconflict.store.replay import kept_for_reader


def json_answer(content: Any, status_code: int = 200) -> Response:
    """The answer Starlette's ``JSONResponse`` gives for ``content``, byte for byte, written by orjson when
    that is provably the same (several times faster on a large answer: the live tracks, every 2 s a page).

    orjson writes strings, whole numbers, booleans and the compact separators as the standard encoder does,
    but some floats otherwise (``1e-05``, ``1e+16``: see
    :func:`~deconflict.record.strict_json.floats_written_alike`) and NaN as null where the standard
    encoder refuses it; it refuses integers past 64 bits and keys that are not text. Any of those, or a
    ``null`` where the answer holds a NaN or an infinity, and ``JSONResponse`` writes it (and refuses those as
    it does: tests/api/test_json_answer.py holds the two side by side). A value JSON has no word for (a
    Decimal, a set) is written as FastAPI writes a route's answer (``jsonable_encoder``), where
    ``JSONResponse`` alone would refuse it and the caller get a 500."""
    try:
        body = orjson.dumps(content)
    except TypeError:
        return _standard(content, status_code)
    if (b"null" in body and not all_finite(content)) or not floats_written_alike(body):
        return _standard(content, status_code)
    return Response(body, status_code=status_code, media_type="application/json")


def _standard(content: Any, status_code: int) -> Response:
    try:
        return JSONResponse(content, status_code=status_code)
    except TypeError:  # only then: the encoder walks the whole answer again
        return JSONResponse(jsonable_encoder(content), status_code=status_code)


def mechanism_doc(m: Mechanism) -> dict[str, Any]:
    """A mechanism as members read it: its definition with the current members."""
    return mechanism_to_doc(m)


def activities_view(
    service: Service,
    caller: Caller,
    activities: list[Activity],
    *,
    at: datetime | None = None,
    area: Any = None,
    start: datetime | None = None,
    end: datetime | None = None,
) -> list[dict[str, Any]]:
    """Whole notices where the caller may see them; overlap parts only, or nothing, where it may not.
    Each says its ``phase`` at ``at`` (the service's now by default).

    ``area`` (lon/lat), ``start`` and ``end`` are the list's filters as they apply to what the caller may
    see: a notice seen in part is listed only when one of its visible parts touches the area and window
    (the caller filters whole notices itself, before this)."""
    m = service.mechanism(caller.mechanism_id)
    when = at if at is not None else service.clock()
    out: list[dict[str, Any]] = []
    hidden = {a.id for a in activities if not sees_whole_notices(caller.member, m.rules.disclosure, a.party)}
    conflicts: list[dict[str, Any]] = []
    if hidden:  # what the caller may see of them: the parts in the conflicts it sees (theirs only, not all)
        found = service.conflicts(caller.mechanism_id, activities=hidden)
        conflicts = [c for c in found if sees_conflict(caller.member, c)]
    for a in activities:
        doc = activity_to_doc(a)
        if a.id not in hidden:
            out.append({**doc, "phase": phase(doc, when)})
            continue
        partial = listed_part(doc, conflicts, caller.member, area=area, start=start, end=end)
        if partial is not None:
            out.append({**partial, "phase": phase(partial, when)})
    return out


def activity_view(service: Service, caller: Caller, activity: Activity) -> dict[str, Any] | None:
    found = activities_view(service, caller, [activity])
    return found[0] if found else None


def conflict_view(service: Service, caller: Caller, conflict: dict[str, Any]) -> dict[str, Any] | None:
    """A conflict as the caller may read it (None: not the caller's), shaped by the disclosure rules (a
    conflict recorded before them is read as they say, too)."""
    return conflict_for(caller.member, conflict, service.mechanism(caller.mechanism_id).rules.disclosure)


@overload
def entries_view(
    service: Service, caller: Caller, entries: list[dict[str, Any]], *, read: Literal[True] = True
) -> list[dict[str, Any]]: ...
@overload
def entries_view(
    service: Service, caller: Caller, entries: list[dict[str, Any]], *, read: bool
) -> list[dict[str, Any]] | None: ...
def entries_view(
    service: Service, caller: Caller, entries: list[dict[str, Any]], *, read: bool = True
) -> list[dict[str, Any]] | None:
    """Record entries as the caller may receive them; a hotline message carries its text in the caller's language.

    A party receives what follows a conflict or a message (its acknowledgement, resolution, escalation steps)
    only of those it may see, which may take a read of the tables: None when it would, and ``read`` is False
    (the caller is on the event loop)."""
    disclosure = service.mechanism(caller.mechanism_id).rules.disclosure
    audiences = None
    if caller.member.role is Role.PARTY:
        audiences = service.audiences(caller.mechanism_id, entries, read=read)
        if audiences is None:
            return None
    out = []
    for e in entries:
        view = entry_view(e, caller.member, disclosure, audiences)
        if e["type"] == EntryType.MESSAGE_SENT and "payload" in view:
            sent_at = parse_utc(e["at"], field="at")
            message = message_view(e["payload"], seq=e["seq"], sender=e["actor"], sent_at=sent_at, reader=caller.member)
            view = {**view, "message": message}
        out.append(view)
    return out


def replay_view(service: Service, caller: Caller, state: dict[str, Any]) -> dict[str, Any]:
    """A replayed state as the caller could see it then: the live routes' disclosure rules applied."""
    m = service.mechanism(caller.mechanism_id)
    member = caller.member
    conflicts = [
        conflict_public(
            c["doc"],
            status=c["status"],
            resolution=c["resolution"],
            detected_at=c["detected_at"],
            acknowledged=c["acknowledged"],
            resolved_at=c["resolved_at"],
            resolved_by=c["resolved_by"],
        )
        for c in state["conflicts"]
    ]
    visible_conflicts = [v for c in conflicts if (v := conflict_for(member, c, m.rules.disclosure)) is not None]
    versions: dict[str, list[dict[str, Any]]] = {}
    for v in state["activity_versions"]:
        versions.setdefault(v["activity_id"], []).append(v)
    activities = []
    when = parse_utc(state["at"], field="at") if state.get("at") else service.clock()
    # around an instant, what the member is shown is judged by what it sees: a notice seen in part by its parts
    # the window's start, worked out by replay (not the caller's: it may lie before the years a caller may name,
    # 24 hours before 2000-01-01, and was refused as a request field 'since' that the request does not have)
    since = datetime.fromisoformat(state["window"]["since"]) if "window" in state else None
    for row in state["activities"]:
        doc = row["doc"]
        if sees_whole_notices(member, m.rules.disclosure, row["party"]):
            activities.append({**doc, "history": versions.get(row["id"], []), "phase": phase(doc, when)})
        else:
            partial = listed_part(doc, visible_conflicts, member, start=since)
            if partial is not None and partial["overlap"]:
                activities.append({**partial, "phase": phase(partial, when)})
    if since is not None:
        shown = {a["id"]: a["version"] for a in activities}
        visible_conflicts = [c for c in visible_conflicts if kept_for_reader(c, since=since, versions=shown)]
    messages = [
        message_status_view(
            row["doc"],
            seq=row["seq"],
            sender=row["sender"],
            sent_at=parse_utc(row["sent_at"], field="sent_at"),
            acknowledged=row["acknowledged"],
            acknowledged_at=row["acknowledged_at"],
            steps=row["steps"],
            reader=member,
            closed_at=row.get("closed_at"),
            closed_note=row.get("closed_note"),
        )
        for row in state["messages"]
        if sees_message(member, to=row["recipients"], sender=row["sender"], from_party=row["doc"].get("from_party"))
    ]
    # in the live lists' order (a state lists its rows by id, and M10 comes before M2 as text): the messages as
    # they were sent, the conflicts as they were detected
    messages.sort(key=lambda m: m["seq"])
    visible_conflicts.sort(key=lambda c: (parse_utc(c["detected_at"], field="detected_at"), c["id"]))
    window = {"window": state["window"]} if "window" in state else {}  # replay around an instant
    return {
        "mechanism": state["mechanism"],
        "at": state["at"],
        "head": state["head"],
        **window,
        "activities": activities,
        "zones": [
            {**z["doc"], "declared_at": z["declared_at"], "withdrawn_at": z["withdrawn_at"]} for z in state["zones"]
        ],
        "conflicts": visible_conflicts,
        "messages": messages,
    }
