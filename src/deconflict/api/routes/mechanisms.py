"""Mechanisms and their rules (read only), and the caller's own membership."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from deconflict.api.deps import CallerDep, MemberDep, ServiceDep
from deconflict.api.schemas import MechanismOut, MeOut
from deconflict.api.views import mechanism_doc
from deconflict.clock import iso
from deconflict.formats.docs import member_to_doc

router = APIRouter(tags=["mechanisms"])


@router.get(
    "/me",
    summary="Who this token belongs to",
    response_model=None,
    responses={200: {"model": MeOut, "description": "The member, its mechanism and the service's now."}},
)
def me(caller: CallerDep, service: ServiceDep) -> dict[str, Any]:
    """The member and mechanism the bearer token names, and the service's clock (``now``, ISO 8601 UTC):
    a client counts down to deadlines from it, not from its own clock."""
    return {"mechanism": caller.mechanism_id, "member": member_to_doc(caller.member), "now": iso(service.clock())}


@router.get(
    "/mechanisms",
    summary="Mechanisms the caller belongs to",
    response_model=None,
    responses={200: {"model": list[MechanismOut], "description": "The caller's mechanism."}},
)
def list_mechanisms(caller: CallerDep, service: ServiceDep) -> list[dict[str, Any]]:
    """A token belongs to one member of one mechanism: this lists that mechanism."""
    return [mechanism_doc(service.mechanism(caller.mechanism_id))]


@router.get(
    "/mechanisms/{mechanism_id}",
    summary="A mechanism: area, members and rules",
    response_model=None,
    responses={200: {"model": MechanismOut, "description": "The mechanism."}},
)
def get_mechanism(caller: MemberDep, service: ServiceDep) -> dict[str, Any]:
    """Area of responsibility (GeoJSON), members and roles, and the rules: minimum notice,
    separation minima, acknowledgement deadline, escalation ladder, line-check interval, disclosure."""
    return mechanism_doc(service.mechanism(caller.mechanism_id))
