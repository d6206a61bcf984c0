"""Zones: red lines, restricted, protected and air-defence areas."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Query

from deconflict.api.deps import MemberDep, ServiceDep, SigningDep
from deconflict.api.schemas import ErrorOut, ZoneDeclaredOut, ZoneIn, ZoneOut, ZoneWithdrawnOut

router = APIRouter(tags=["zones"], responses={401: {"model": ErrorOut}, 403: {"model": ErrorOut}})


@router.get(
    "/mechanisms/{mechanism_id}/zones",
    summary="Zones in force",
    response_model=None,
    responses={200: {"model": list[ZoneOut], "description": "The zones, by id."}},
)
def list_zones(
    caller: MemberDep, service: ServiceDep, include_withdrawn: bool = Query(False, description="Also withdrawn zones.")
) -> list[dict[str, Any]]:
    return service.zones(caller.mechanism_id, include_withdrawn=include_withdrawn)


@router.post(
    "/mechanisms/{mechanism_id}/zones",
    status_code=201,
    summary="Declare a zone (parties only)",
    response_model=None,
    responses={
        201: {"model": ZoneDeclaredOut, "description": "Recorded."},
        409: {"model": ErrorOut},
        422: {"model": ErrorOut},
    },
)
def declare_zone(caller: MemberDep, service: ServiceDep, mode: SigningDep, zone: ZoneIn) -> dict[str, Any]:
    """The zone is owned by the caller's party. Live activities it forbids raise conflicts at once,
    returned in ``raised``."""
    out = service.declare_zone(mechanism_id=caller.mechanism_id, actor=caller.member.id, zone=zone.doc(), mode=mode)
    zones = {z["id"]: z for z in service.zones(caller.mechanism_id)}
    return {"zone": zones[zone.id], "raised": list(out.raised), "seq": out.seq}


@router.delete(
    "/mechanisms/{mechanism_id}/zones/{zone_id}",
    summary="Withdraw a zone (its owner only)",
    response_model=None,
    responses={
        200: {"model": ZoneWithdrawnOut, "description": "Recorded."},
        404: {"model": ErrorOut},
        409: {"model": ErrorOut},
    },
)
def withdraw_zone(caller: MemberDep, service: ServiceDep, mode: SigningDep, zone_id: str) -> dict[str, Any]:
    out = service.withdraw_zone(mechanism_id=caller.mechanism_id, actor=caller.member.id, zone_id=zone_id, mode=mode)
    return {"withdrawn": zone_id, "seq": out.seq}
