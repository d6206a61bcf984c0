"""Activities: notify, amend (with the version seen), cancel, list, get with history."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Annotated, Any

import shapely
from fastapi import APIRouter, Query
from fastapi.responses import JSONResponse, Response

from deconflict.api.deps import Caller, MemberDep, ServiceDep, SigningDep
from deconflict.api.schemas import ActivityOut, AmendIn, CancelIn, ChangeOut, ErrorOut, NoticeIn, PreviewOut
from deconflict.api.views import activities_view, activity_view, json_answer
from deconflict.clock import parse_utc
from deconflict.errors import InvalidInput
from deconflict.service import Outcome, Service
from deconflict.service import previews as preview_book
from deconflict.service.notices import NewNotice
from deconflict.service.previews import PreviewsExhausted
from deconflict.service.queries import activity_not_found

router = APIRouter(tags=["activities"], responses={401: {"model": ErrorOut}, 403: {"model": ErrorOut}})


def _bbox(text: str | None) -> Any:
    if text is None:
        return None
    try:
        values = [float(x) for x in text.split(",")]
    except ValueError:
        raise InvalidInput("bbox: give min_lon,min_lat,max_lon,max_lat as numbers", field="bbox") from None
    if len(values) != 4:
        raise InvalidInput(
            f"bbox: give four numbers, min_lon,min_lat,max_lon,max_lat (got {len(values)})", field="bbox"
        )
    if not (values[0] < values[2] and values[1] < values[3]):
        raise InvalidInput("bbox: give min_lon,min_lat,max_lon,max_lat with min below max", field="bbox")
    if not (-180 <= values[0] and values[2] <= 180 and -90 <= values[1] and values[3] <= 90):
        raise InvalidInput("bbox: longitudes must be in -180..180 and latitudes in -90..90", field="bbox")
    return shapely.box(values[0], values[1], values[2], values[3])


def _outcome(service: Service, caller: Caller, out: Outcome, status: int = 200) -> Response:
    assert out.activity is not None
    doc = {
        "activity": activity_view(service, caller, out.activity),
        "raised": list(out.raised),
        "resolved": list(out.resolved),
        "seq": out.seq,
    }
    return json_answer(doc, status_code=status)


@router.get(
    "/mechanisms/{mechanism_id}/activities",
    summary="Activities, filtered by window, area and party",
    responses={200: {"model": list[ActivityOut], "description": "The activities the caller may see."}},
)
def list_activities(
    caller: MemberDep,
    service: ServiceDep,
    start: Annotated[str | None, Query(description="Only activities ending after this instant (ISO 8601 UTC).")] = None,
    end: Annotated[str | None, Query(description="Only activities starting before this instant.")] = None,
    bbox: Annotated[str | None, Query(description="min_lon,min_lat,max_lon,max_lat: footprints touching it.")] = None,
    party: Annotated[str | None, Query(max_length=64)] = None,
    include_closed: Annotated[bool, Query(description="Also cancelled and ended activities.")] = False,
) -> JSONResponse:
    """Under the ``conflicts-only`` policy another party's notice appears only as the parts that
    conflict with the caller's own (``partial: true``, ``overlap``)."""
    t0 = parse_utc(start, field="start") if start is not None else None
    t1 = parse_utc(end, field="end") if end is not None else None
    area = _bbox(bbox)
    found = service.activities(caller.mechanism_id, party=party, start=t0, end=t1, include_closed=include_closed)
    if area is not None:
        found = [a for a in found if any(v.footprint.as_polygon().intersects(area) for v in a.volumes)]
    # a notice seen in part answers the filters by its visible parts only (disclosure.part_matches)
    return JSONResponse(activities_view(service, caller, found, area=area, start=t0, end=t1))


@router.post(
    "/mechanisms/{mechanism_id}/activities",
    status_code=201,
    summary="Notify a planned activity",
    responses={
        201: {"model": ChangeOut, "description": "Recorded."},
        409: {"model": ErrorOut},
        422: {"model": ErrorOut},
    },
)
def notify(caller: MemberDep, service: ServiceDep, mode: SigningDep, notice: NoticeIn) -> Response:
    """Validated, checked against every other party's notices and the zones, stored and recorded in
    one transaction. ``raised`` lists the conflicts it created (separation, zone, short notice)."""
    out = service.notify(
        mechanism_id=caller.mechanism_id,
        actor=caller.member.id,
        kind=notice.kind.value,
        volumes=[v.model_dump(mode="json") for v in notice.volumes],
        activity_id=notice.id,
        title=notice.title,
        mode=mode,
    )
    return _outcome(service, caller, out, 201)


def notify_many(
    service: Service, mechanism_id: str, calls: list[tuple[Caller, NoticeIn]]
) -> Iterator[list[tuple[int, Response | Exception]]]:
    """What :func:`notify` answers to each of several plain requests (no signing header) to one mechanism,
    recorded together (:meth:`Service.notify_many`): its 201, or the error it raised, by the request's place
    in ``calls``, as the answers are on the disk."""
    batch = [
        NewNotice(
            actor=caller.member.id,
            kind=notice.kind.value,
            volumes=[v.model_dump(mode="json") for v in notice.volumes],
            activity_id=notice.id,
            title=notice.title,
        )
        for caller, notice in calls
    ]
    for answers in service.notify_many(mechanism_id=mechanism_id, batch=batch):
        yield [(i, a if isinstance(a, Exception) else _outcome(service, calls[i][0], a, 201)) for i, a in answers]


@router.post(
    "/mechanisms/{mechanism_id}/activities/preview",
    summary="The conflicts a notice would raise, before it is sent",
    response_model=None,
    responses={
        200: {"model": PreviewOut, "description": "What it would raise; nothing recorded."},
        422: {"model": ErrorOut},
        429: {"model": ErrorOut},
    },
)
def preview(caller: MemberDep, service: ServiceDep, notice: NoticeIn) -> Any:
    """Checks a draft notice exactly as ``POST .../activities`` would, against the notices and zones in
    force now, and writes nothing to the record. Under ``conflicts-only`` another party's notice appears
    only as the conflict would show it (``overlap``: its parts within the separation minima of the draft,
    with their window and band). Each member may ask for the rules' ``previews_per_hour`` (then 429 with
    ``Retry-After``); every preview is counted and the parties whose notices it reached can see it
    (``GET .../previews``)."""
    try:
        conflicts = service.preview_notice(
            mechanism_id=caller.mechanism_id,
            actor=caller.member.id,
            kind=notice.kind.value,
            volumes=[v.model_dump(mode="json") for v in notice.volumes],
        )
    except PreviewsExhausted as e:  # the error body as every other, with when to ask again
        body = {"detail": e.message, "field": e.field}
        return JSONResponse(body, status_code=429, headers={"Retry-After": str(e.retry_after_s)})
    return {"conflicts": conflicts}


@router.get("/mechanisms/{mechanism_id}/previews", summary="Who previewed notices that reached yours")
def preview_counts(caller: MemberDep, service: ServiceDep) -> dict[str, Any]:
    """Previews counted since the service started, by member: a party reads its own members' counts and,
    of the other parties', how many of their previews reached its notices and when last; the facilitator
    and observers read every count. Probing with previews is visible to those probed."""
    return {"previews": preview_book.counts(service.context, caller.mechanism_id, caller.member)}


@router.get(
    "/mechanisms/{mechanism_id}/activities/{activity_id}",
    summary="An activity with its version history",
    response_model=None,
    responses={
        200: {"model": ActivityOut, "description": "The activity, ``history`` its versions."},
        404: {"model": ErrorOut},
    },
)
def get_activity(caller: MemberDep, service: ServiceDep, activity_id: str) -> dict[str, Any]:
    activity = service.activity(caller.mechanism_id, activity_id)
    view = activity_view(service, caller, activity)
    if view is None:  # hidden: the same answer as for an activity that does not exist
        raise activity_not_found(activity_id)
    history = service.activity_history(caller.mechanism_id, activity_id) if not view.get("partial") else []
    return {**view, "history": history}


@router.put(
    "/mechanisms/{mechanism_id}/activities/{activity_id}",
    summary="Amend an activity (a new version)",
    responses={
        200: {"model": ChangeOut, "description": "Recorded."},
        404: {"model": ErrorOut},
        409: {"model": ErrorOut},
        422: {"model": ErrorOut},
    },
)
def amend(caller: MemberDep, service: ServiceDep, mode: SigningDep, activity_id: str, change: AmendIn) -> Response:
    """``version`` is the version you saw; if the activity has moved on, 409 and nothing changes.
    Its open conflicts close as *amended* and the new version is checked again."""
    out = service.amend(
        mechanism_id=caller.mechanism_id,
        actor=caller.member.id,
        activity_id=activity_id,
        seen_version=change.version,
        volumes=[v.model_dump(mode="json") for v in change.volumes] if change.volumes is not None else None,
        kind=change.kind.value if change.kind is not None else None,
        title=change.title,
        mode=mode,
    )
    return _outcome(service, caller, out)


@router.post(
    "/mechanisms/{mechanism_id}/activities/{activity_id}/cancel",
    summary="Cancel an activity",
    responses={
        200: {"model": ChangeOut, "description": "Recorded."},
        404: {"model": ErrorOut},
        409: {"model": ErrorOut},
    },
)
def cancel(
    caller: MemberDep, service: ServiceDep, mode: SigningDep, activity_id: str, body: CancelIn | None = None
) -> Response:
    out = service.cancel(
        mechanism_id=caller.mechanism_id,
        actor=caller.member.id,
        activity_id=activity_id,
        seen_version=body.version if body is not None else None,
        mode=mode,
    )
    return _outcome(service, caller, out)
