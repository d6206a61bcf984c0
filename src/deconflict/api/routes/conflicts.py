"""Conflicts: list, get, acknowledge, resolve."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query
from fastapi.responses import JSONResponse

from deconflict.api.deps import MemberDep, ServiceDep, SigningDep
from deconflict.api.schemas import ConflictOut, ErrorOut, ResolveIn
from deconflict.api.views import conflict_view
from deconflict.clock import parse_utc
from deconflict.service import Service
from deconflict.service.queries import conflict_not_found

router = APIRouter(tags=["conflicts"], responses={401: {"model": ErrorOut}, 403: {"model": ErrorOut}})

StatusFilter = Literal["open", "acknowledged", "resolved", "unresolved"]


@router.get(
    "/mechanisms/{mechanism_id}/conflicts",
    summary="Conflicts the caller may see",
    responses={200: {"model": list[ConflictOut], "description": "The conflicts the caller may see."}},
)
def list_conflicts(
    caller: MemberDep,
    service: ServiceDep,
    status: Annotated[StatusFilter | None, Query(description="'unresolved' means open or acknowledged.")] = None,
    start: Annotated[
        str | None, Query(description="Only conflicts whose window ends after this instant (ISO 8601 UTC).")
    ] = None,
) -> JSONResponse:
    """Each conflict: kind (separation, zone, short_notice), the activities or zone, parties,
    who must acknowledge (``awaiting``) and by when (``deadline``), status and resolution. With ``start``,
    those whose window (``start``-``end``) ends after it: the page asks so for the acknowledged ones, which
    otherwise pile up for as long as the mechanism runs (every open one it asks for whatever its window)."""
    t0 = parse_utc(start, field="start") if start is not None else None
    found = service.conflicts(caller.mechanism_id, status=status, ending_after=t0)
    views = [v for c in found if (v := conflict_view(service, caller, c)) is not None]
    return JSONResponse(with_contact(service, caller.mechanism_id, views))


@router.get(
    "/mechanisms/{mechanism_id}/conflicts/{conflict_id}",
    response_model=None,
    responses={200: {"model": ConflictOut, "description": "The conflict."}, 404: {"model": ErrorOut}},
)
def get_conflict(caller: MemberDep, service: ServiceDep, conflict_id: str) -> dict[str, Any]:
    view = conflict_view(service, caller, service.conflict(caller.mechanism_id, conflict_id))
    if view is None:  # not the caller's: the same answer as for a conflict that does not exist
        raise conflict_not_found(conflict_id)
    return with_contact(service, caller.mechanism_id, [view])[0]


def with_contact(service: Service, mechanism_id: str, views: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The conflicts as read, each unresolved tracks conflict whose aircraft no longer reports with
    ``contact_lost``: its tracks not reported within the rules' stale time and when each last was. It stays
    open (contact lost is no clearance) until its tracks are back and checked clear, or a person resolves it."""
    lost = service.contact_lost(mechanism_id, views)
    return [{**v, "contact_lost": lost[v["id"]]} if v["id"] in lost else v for v in views]


@router.post(
    "/mechanisms/{mechanism_id}/conflicts/{conflict_id}/acknowledge",
    summary="Acknowledge a conflict (a party it awaits)",
    response_model=None,
    responses={
        200: {"model": ConflictOut, "description": "Recorded: the conflict now."},
        404: {"model": ErrorOut},
        409: {"model": ErrorOut},
    },
)
def acknowledge(caller: MemberDep, service: ServiceDep, mode: SigningDep, conflict_id: str) -> dict[str, Any]:
    """The conflict as the caller reads it afterwards (as ``GET`` gives it: ``contact_lost`` too)."""
    acknowledged = service.acknowledge_conflict(
        mechanism_id=caller.mechanism_id, actor=caller.member.id, conflict_id=conflict_id, mode=mode
    )
    view = conflict_view(service, caller, acknowledged)
    if view is None:  # (a party the conflict awaits reads it: never so)
        raise conflict_not_found(conflict_id)
    return with_contact(service, caller.mechanism_id, [view])[0]


@router.post(
    "/mechanisms/{mechanism_id}/conflicts/{conflict_id}/resolve",
    summary="Resolve a conflict: amended, accepted or escalated",
    response_model=None,
    responses={
        200: {"model": ConflictOut, "description": "Recorded: the conflict now."},
        404: {"model": ErrorOut},
        409: {"model": ErrorOut},
        422: {"model": ErrorOut},
    },
)
def resolve(
    caller: MemberDep, service: ServiceDep, mode: SigningDep, conflict_id: str, body: ResolveIn
) -> dict[str, Any]:
    """A party the conflict awaits, or the facilitator, closes the conflict by hand (the party whose activity
    caused it amends or cancels that activity instead)."""
    return service.resolve_conflict(
        mechanism_id=caller.mechanism_id,
        actor=caller.member.id,
        conflict_id=conflict_id,
        resolution=body.resolution,
        note=body.note,
        mode=mode,
    )
