"""The picture as KML and KMZ (for Google Earth and any GIS): only what the caller may see, shaped by
disclosure.py through formats/kml, the same rules as every other route."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import Response

from deconflict.api.deps import Caller, MemberDep, ServiceDep
from deconflict.api.schemas import ErrorOut
from deconflict.formats.kml import KML_MEDIA_TYPE, KMZ_MEDIA_TYPE, picture_kml, to_kmz
from deconflict.service import Service

__all__ = ["router"]

router = APIRouter(tags=["formats"], responses={401: {"model": ErrorOut}, 403: {"model": ErrorOut}})

_ABOUT = """Zones and the volumes of the notices the caller may see whole as solids between floor and ceiling
(``altitudeMode`` absolute, metres above mean sea level; circles drawn as 64-vertex rings, centre and
radius in ``ExtendedData``), windows as ``TimeSpan``; under ``conflicts-only`` another party's notice only
as the parts that conflict with the caller's own; conflicts the caller may see, each where it is; the
caller's tracks with their time. A folder each, styled by party, zone kind and conflict status."""


def _kml(caller: Caller, service: Service) -> str:
    mid = caller.mechanism_id
    activities, conflicts = service.live_picture(mid, caller.member)
    return picture_kml(
        mechanism_id=mid,
        reader=caller.member,
        disclosure=service.mechanism(mid).rules.disclosure,
        activities=activities,
        zones=service.zones(mid),
        conflicts=conflicts,
        tracks=service.tracks(mid, reader=caller.member),
        at=service.clock(),
    )


@router.get(
    "/mechanisms/{mechanism_id}/picture.kml",
    summary="The picture the caller may see, as KML 2.2",
    description=_ABOUT,
    response_class=Response,
    responses={200: {"content": {KML_MEDIA_TYPE: {"schema": {"type": "string"}}}}},
)
def picture_kml_route(caller: MemberDep, service: ServiceDep) -> Response:
    return Response(_kml(caller, service).encode("utf-8"), media_type=KML_MEDIA_TYPE)


@router.get(
    "/mechanisms/{mechanism_id}/picture.kmz",
    summary="The picture the caller may see, as KMZ (zipped KML)",
    description=_ABOUT,
    response_class=Response,
    responses={200: {"content": {KMZ_MEDIA_TYPE: {"schema": {"type": "string", "format": "binary"}}}}},
)
def picture_kmz_route(caller: MemberDep, service: ServiceDep) -> Response:
    headers = {"Content-Disposition": f'attachment; filename="{caller.mechanism_id}-picture.kmz"'}
    return Response(to_kmz(_kml(caller, service)), media_type=KMZ_MEDIA_TYPE, headers=headers)
