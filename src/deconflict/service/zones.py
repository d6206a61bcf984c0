"""Zones a party declares over its own ground (red lines, restricted areas): declaring one raises a
conflict for each live activity it forbids; withdrawing one closes the conflicts it raised.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import select

from deconflict.clock import iso
from deconflict.disclosure import check_zone_caps
from deconflict.errors import Forbidden, InvalidInput, InvalidState, NotFound
from deconflict.formats.docs import parse_zone
from deconflict.mechanisms import zone_outside
from deconflict.service import derive
from deconflict.service.context import IMMEDIATE, OPERATOR, Context, Outcome, SignatureMode, retrying
from deconflict.service.picture import Picture, ZoneShape, party_member
from deconflict.service.writer import RecordWriter
from deconflict.store.schema import ZoneRow

__all__ = ["declare_zone", "withdraw_zone", "zones"]


def zones(ctx: Context, mechanism_id: str, *, include_withdrawn: bool = False) -> list[dict[str, Any]]:
    """The mechanism's zones in force (and, with ``include_withdrawn``, the withdrawn ones), by id."""
    ctx.pictures.get(mechanism_id)
    stmt = select(ZoneRow).where(ZoneRow.mechanism_id == mechanism_id)
    if not include_withdrawn:
        stmt = stmt.where(ZoneRow.withdrawn_at.is_(None))
    with ctx.store.read() as s:
        return [
            {**r.doc, "withdrawn_at": iso(r.withdrawn_at) if r.withdrawn_at else None}
            for r in s.scalars(stmt.order_by(ZoneRow.id))
        ]


@retrying
def declare_zone(
    ctx: Context,
    *,
    mechanism_id: str,
    actor: str,
    zone: dict[str, Any],
    mode: SignatureMode = IMMEDIATE,
    agreed: bool = False,
) -> Outcome:
    """Declare a zone owned by the actor's party; live activities it forbids raise conflicts.

    The operator declares only the zones of the agreed mechanism file, in their owners' names. ``agreed``: one
    of the file's zones (declared with the mechanism, by the operator or by its owner when the service holds
    the owner's key). Any other zone is held to the area cap under ``conflicts-only``
    (:func:`~deconflict.disclosure.check_zone_caps`).

    Raises:
        InvalidInput: the zone breaks a rule.
        InvalidState: its id is taken.
    """
    with ctx.exclusive(mechanism_id) as picture:
        owner = str(zone.get("owner")) if actor == OPERATOR else party_member(picture, actor).party
        z = parse_zone(zone, mechanism=mechanism_id, owner=owner, parties=picture.mechanism.parties())
        with ctx.store.read() as s:
            if s.get(ZoneRow, (mechanism_id, z.id)) is not None:
                raise InvalidState(f"id: zone {z.id!r} already exists; choose another id", field="id")
        zgeom = picture.frame.project(z.footprint.geometry)
        _not_wholly_outside(picture, z.id, zgeom, z.footprint.radius_m)
        if not agreed:
            check_zone_caps(
                picture.mechanism.rules, picture.frame, zgeom, z.footprint.radius_m, circle=z.footprint.is_circle
            )
        now = mode.now(ctx.clock)
        with ctx.store.read() as s:
            hits = derive.activities_in_zone(s, picture, z, zgeom, now)
        picture.zones[z.id] = shape = ZoneShape(z, zgeom, z.footprint.radius_m)
        try:
            with RecordWriter(ctx, mechanism_id, picture=picture, mode=mode) as w:
                seq, raised = derive.record_zone(w, picture, shape, hits, actor, now)
        except BaseException:
            picture.zones.pop(z.id, None)
            raise
        return Outcome(raised=tuple(raised), seq=seq)


def _not_wholly_outside(picture: Picture, zone_id: str, geometry: Any, radius_m: float | None) -> None:
    """A zone must reach into the area of responsibility (:func:`~deconflict.mechanisms.zone_outside`).

    Raises:
        InvalidInput: the zone lies wholly outside the area.
    """
    why = zone_outside(picture.mechanism, picture.allowed_area, zone_id, geometry, radius_m)
    if why is not None:
        raise InvalidInput(f"geometry: {why}", field="geometry")


@retrying
def withdraw_zone(
    ctx: Context, *, mechanism_id: str, actor: str, zone_id: str, mode: SignatureMode = IMMEDIATE
) -> Outcome:
    """Withdraw a zone (its owner only); the conflicts it raised close as withdrawn.

    Raises:
        NotFound: no such zone.
        Forbidden: the zone belongs to another party.
        InvalidState: it was already withdrawn.
    """
    with ctx.exclusive(mechanism_id) as picture:
        member = party_member(picture, actor)
        with ctx.store.read() as s:
            row = s.get(ZoneRow, (mechanism_id, zone_id))
            if row is None:
                raise NotFound(f"zone {zone_id!r} does not exist in mechanism {mechanism_id!r}", field="zone")
            if row.owner != member.party:
                raise Forbidden(f"zone {zone_id!r} belongs to {row.owner}; only its owner may withdraw it")
            if row.withdrawn_at is not None:
                raise InvalidState(f"zone {zone_id!r} was already withdrawn at {iso(row.withdrawn_at)}")
        now = mode.now(ctx.clock)
        with RecordWriter(ctx, mechanism_id, picture=picture, mode=mode) as w:
            seq, closed = derive.record_zone_withdrawn(w, picture, zone_id, actor, member.party, now)
        picture.zones.pop(zone_id, None)
        return Outcome(resolved=tuple(closed), seq=seq)
