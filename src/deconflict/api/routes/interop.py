"""Other systems' formats over HTTP: an activity's or a zone's draft NOTAM (text/plain) and the picture as
RFC 7946 GeoJSON, each only what the caller may see (disclosure.py, through formats/notam and
formats/geojson: the same rules as every other route)."""

from __future__ import annotations

import json

from fastapi import APIRouter
from fastapi.responses import PlainTextResponse, Response

from deconflict.api.deps import MemberDep, ServiceDep
from deconflict.api.schemas import ErrorOut
from deconflict.api.views import activity_view
from deconflict.errors import NotFound
from deconflict.formats.geojson import picture_geojson
from deconflict.formats.notam import reader_activity_notam, zone_notam
from deconflict.service.queries import activity_not_found, no_notam_in_part

__all__ = ["router"]

router = APIRouter(tags=["formats"], responses={401: {"model": ErrorOut}, 403: {"model": ErrorOut}})

_TEXT = {"content": {"text/plain": {"schema": {"type": "string"}}}}


@router.get(
    "/mechanisms/{mechanism_id}/activities/{activity_id}/notam",
    summary="An activity's draft NOTAM (ICAO format)",
    response_class=PlainTextResponse,
    responses={200: _TEXT, 404: {"model": ErrorOut}, 409: {"model": ErrorOut}, 422: {"model": ErrorOut}},
)
def activity_notam(caller: MemberDep, service: ServiceDep, activity_id: str) -> PlainTextResponse:
    """Q-line (FIR, code from the kind, flight levels, centre to the minute and radius in whole NM covering
    every volume) and items A to G; item E gives each volume exactly. An activity the caller may not see
    whole (another party's, under ``conflicts-only``) is answered 404 as one that does not exist; 409 when
    it is cancelled or ended; 422 when its centre is in no FIR the service knows."""
    try:
        activity = service.activity(caller.mechanism_id, activity_id)
    except NotFound:
        raise activity_not_found(activity_id) from None
    disclosure = service.mechanism(caller.mechanism_id).rules.disclosure
    text = reader_activity_notam(activity, caller.member, disclosure)
    if text is None:  # seen in part (the activity's own route shows it so), or not at all
        raise (
            no_notam_in_part(activity_id)
            if activity_view(service, caller, activity)
            else activity_not_found(activity_id)
        )
    return PlainTextResponse(text)


@router.get(
    "/mechanisms/{mechanism_id}/zones/{zone_id}/notam",
    summary="A zone's draft NOTAM (ICAO format)",
    response_class=PlainTextResponse,
    responses={200: _TEXT, 404: {"model": ErrorOut}, 422: {"model": ErrorOut}},
)
def zone_notam_route(caller: MemberDep, service: ServiceDep, zone_id: str) -> PlainTextResponse:
    """A zone in force as a restricted (QRR), prohibited (QRP) or danger area (QRD) NOTAM; item C is PERM
    for a zone with no end."""
    zones = {z["id"]: z for z in service.zones(caller.mechanism_id)}
    if zone_id not in zones:
        raise NotFound(f"zone {zone_id!r}: no such zone in force", field="zone")
    return PlainTextResponse(zone_notam(zones[zone_id]))


@router.get(
    "/mechanisms/{mechanism_id}/picture.geojson",
    summary="The picture the caller may see, as RFC 7946 GeoJSON",
    response_class=Response,
    responses={200: {"content": {"application/geo+json": {"schema": {"type": "object"}}}}},
)
def picture(caller: MemberDep, service: ServiceDep) -> Response:
    """Zones, the volumes of the notices the caller may see whole, only the overlap parts of the others
    (under ``conflicts-only``), and tracks, as one FeatureCollection: positions lon, lat; exterior rings
    counterclockwise; circles drawn as rings with their centre and radius in the properties; each
    feature's ``layer`` says what it is."""
    mid = caller.mechanism_id
    activities, conflicts = service.live_picture(mid, caller.member)
    doc = picture_geojson(
        mechanism_id=mid,
        reader=caller.member,
        disclosure=service.mechanism(mid).rules.disclosure,
        activities=activities,
        zones=service.zones(mid),
        conflicts=conflicts,
        tracks=service.tracks(mid, reader=caller.member),
    )
    return Response(json.dumps(doc, ensure_ascii=False), media_type="application/geo+json")
