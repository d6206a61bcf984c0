"""What the service would have refused of a member's entry, by its own rules, on the record's state just
before it: the part of the service's admission that the record's authority rules (:mod:`deconflict.record.
authority`, which need no geometry and no tables) cannot check. ``ledger verify`` holds every member's
entry to it (:mod:`deconflict.service.recheck`), so an insider cannot write an entry the service would
have refused and have it taken as given.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy.orm import Session

from deconflict import hotline as phrases
from deconflict.clock import iso
from deconflict.disclosure import check_caps
from deconflict.errors import DeconflictError
from deconflict.formats.docs import parse_volumes, parse_zone
from deconflict.model import ActivityState, Member, Resolution, Role
from deconflict.record.chain import EntryType
from deconflict.service import conflicts, notices, queries
from deconflict.service.context import LIVE_STATES
from deconflict.service.hotline import MEMBER_PHRASES, QUERY_ACTIVITY, check_phrase_params
from deconflict.service.picture import Picture
from deconflict.store.schema import ActivityRow, ConflictRow

__all__ = ["refused"]


def refused(
    s: Session, picture: Picture, member: Member | None, type_: str, p: dict[str, Any], at: datetime
) -> str | None:
    """Why the service would have refused entry ``p`` of ``type_`` by ``member`` at ``at`` (None: it would have
    taken it). ``s`` reads the record's tables as they stood just before the entry."""
    mid = picture.mechanism.id
    try:
        if type_ in (EntryType.ACTIVITY_NOTIFIED.value, EntryType.ACTIVITY_AMENDED.value):
            _notice(picture, p, at)
        elif type_ == EntryType.ZONE_DECLARED.value:
            parse_zone(p, mechanism=mid, owner=str(p.get("owner")), parties=picture.mechanism.parties())
        elif type_ == EntryType.MESSAGE_SENT.value and member is not None:
            problem = (
                _message(picture, member, p, at)
                or _about_a_message(s, mid, member, p)
                or _query_of_the_owner(s, mid, member, p, at)
            )
            if problem is not None:
                return problem
        if type_ in (EntryType.ACTIVITY_AMENDED.value, EntryType.ACTIVITY_CANCELLED.value):
            activity = s.get(ActivityRow, (mid, str(p.get("id"))))
            if activity is not None and ActivityState(activity.state) not in LIVE_STATES:
                return f"activity {activity.id} is {activity.state} and can no longer change"
        elif type_ == EntryType.CONFLICT_RESOLVED.value and member is not None:
            return _resolution(s, mid, member, p)
    except DeconflictError as e:
        return str(e)
    return None


def _notice(picture: Picture, p: dict[str, Any], at: datetime) -> None:
    """A version of a notice as the API reads its volumes: window length, horizon, not all past, within the
    area, the disclosure caps (raises as the service would)."""
    rules = picture.mechanism.rules
    vols = parse_volumes(p.get("volumes"), party=str(p.get("party")), activity=str(p.get("id")))
    notices.check_not_ended(vols, at, rules)
    check_caps(rules, picture.frame, vols, picture.project_in_area(vols))


PHRASES_HELD_SINCE = datetime(2026, 12, 6, 17, 0, tzinfo=UTC)
"""From this instant a member's recorded phrase is held to what the service takes of one: its parameters
(:func:`deconflict.service.hotline.check_phrase_params`) and a query about an activity asked of the party
whose activity it is. Records written before are read as they were written (the service took longer
references, loose times and a query to anyone then)."""


def _message(picture: Picture, sender: Member, p: dict[str, Any], at: datetime) -> str | None:
    """A phrase the member's role does not send, parameters the service would have refused, or what the service
    works out itself (whether the message asks for an acknowledgement, its deadline, its kind, the sender's
    party) given otherwise."""
    template = p.get("template")
    if template is not None:
        if template not in MEMBER_PHRASES[sender.role]:
            return f"template {template!r} is not a phrase a {sender.role.value} sends"
        params = p.get("params")
        if at >= PHRASES_HELD_SINCE and isinstance(params, dict):
            check_phrase_params(params, sender.party)  # raises in the service's words
        rendered = phrases.render(str(template), str(p.get("lang")), p.get("params") or {})
    else:
        rendered = phrases.free_text(str(p.get("text")), str(p.get("lang")))
    rules = picture.mechanism.rules
    deadline = iso(at + timedelta(seconds=rules.ack_deadline_s)) if rendered.needs_ack else None
    kind = rendered.type.value if hasattr(rendered.type, "value") else str(rendered.type)
    given = {"needs_ack": rendered.needs_ack, "deadline": deadline, "type": kind, "from_party": sender.party}
    wrong = [f"{k} {p.get(k)!r} where the service gives {v!r}" for k, v in given.items() if p.get(k) != v]
    return "; ".join(wrong) or None


def _about_a_message(s: Session, mid: str, sender: Member, p: dict[str, Any]) -> str | None:
    """A member's message about a message names one the sender could read then (the service answers any other
    as absent). Not checked: its subject being an activity, a conflict or a zone (a rule the service took up
    after records were written that it would refuse)."""
    about = p.get("about")
    if not isinstance(about, dict) or about.get("kind") != queries.ABOUT_MESSAGE:
        return None
    if queries.readable_message(s, mid, str(about.get("id")), sender) is None:
        return f"about: message {about.get('id')!r} is not one {sender.id} could read"
    return None


def _query_of_the_owner(s: Session, mid: str, sender: Member, p: dict[str, Any], at: datetime) -> str | None:
    """From :data:`PHRASES_HELD_SINCE`, a query about an activity names one in the record, another party's, and
    is asked of that party (the service refuses any other). Not checked: that the sender could see it then
    (under conflicts-only, through a conflict with one of its own notices)."""
    if at < PHRASES_HELD_SINCE or p.get("template") != QUERY_ACTIVITY:
        return None
    ref = (p.get("params") or {}).get("ref")
    row = s.get(ActivityRow, (mid, str(ref)))
    if row is None:
        return f"params.ref: a query about {ref!r}, which is no activity in the record before it"
    if row.party == sender.party:
        return f"params.ref: {ref} is {sender.party}'s own activity; a query asks another party about its activity"
    to = [str(x) for x in p.get("to") or ()]
    if row.party not in to:
        asked = ", ".join(to) or "nobody"
        return f"to: a query about activity {ref} is asked of {row.party}, whose activity it is, not only of {asked}"
    return None


def _resolution(s: Session, mid: str, member: Member, p: dict[str, Any]) -> str | None:
    """Only the awaited parties or the facilitator resolve by hand; accepted only once the awaited acknowledged."""
    row = s.get(ConflictRow, (mid, str(p.get("id"))))
    if row is None:
        return None
    c = queries.conflict_doc(row)
    if not (member.role is Role.FACILITATOR or member.party in c.get("awaiting", ())):
        return f"conflict {row.id} is resolved by hand by the party it awaits or the facilitator"
    if p.get("resolution") == Resolution.ACCEPTED.value:
        conflicts.check_acceptance(c, member)
    return None
