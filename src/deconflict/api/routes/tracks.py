"""The tactical picture: position reports in batches, and the tracks in the picture now."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from fastapi.responses import Response
from pydantic import BaseModel, ConfigDict, Field, SkipValidation

from deconflict.api.body import ReadOnceRoute
from deconflict.api.deps import MemberDep, ServiceDep
from deconflict.api.schemas import ErrorOut, TracksOut, TracksReportedOut
from deconflict.api.views import json_answer

MAX_REPORTS = 5_000
"""Most reports in one batch: 5,000 reports as a tracker writes them (about 160 bytes each) fit the default
1 MiB body limit, so the cap, not the body limit, is what a too-large batch meets (10,000 never could)."""

router = APIRouter(
    tags=["tracks"], responses={401: {"model": ErrorOut}, 403: {"model": ErrorOut}}, route_class=ReadOnceRoute
)


class ReportsIn(BaseModel):
    """Position reports of the caller's party, in aviation units as air-traffic tools use them."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "reports": [
                        {
                            "id": "UAV-1",
                            "at": "2025-04-09T09:00:00Z",
                            "lat": 34.52,
                            "lon": 37.30,
                            "alt_ft": 15000,
                            "gs_kt": 120,
                            "trk_deg": 90,
                            "vs_fpm": 0,
                        }
                    ]
                }
            ]
        },
    )
    # each report is checked by the service (parse_track_reports: an object with its fields, or refused by
    # name): a second, field-less check of each here cost 2.9 ms a 1,000-report batch
    reports: list[SkipValidation[dict[str, Any]]] = Field(
        ...,
        min_length=1,
        max_length=MAX_REPORTS,
        description="Each: id, at (ISO 8601 UTC), lat, lon (degrees), alt_ft, gs_kt, trk_deg (true), vs_fpm. "
        f"At most {MAX_REPORTS:,} in one batch (they fit the default 1 MiB body limit; send more in batches).",
    )


@router.post(
    "/mechanisms/{mechanism_id}/tracks",
    summary="Report positions of your party's tracks (a batch: all stored, or none)",
    response_model=None,
    responses={
        200: {"model": TracksReportedOut, "description": "Stored, and checked."},
        422: {"model": ErrorOut},
    },
)
def report_tracks(caller: MemberDep, service: ServiceDep, body: ReportsIn) -> dict[str, Any]:
    """Stores the reports and checks the tactical picture at once: tracks of different parties predicted
    to lose separation within the look-ahead, a track outside every volume its party notified, a track
    inside another party's volume. ``raised`` lists the conflicts this batch started (one per situation,
    not per report); ``cleared`` those whose situation ended."""
    return service.report_tracks(mechanism_id=caller.mechanism_id, actor=caller.member.id, reports=body.reports)


@router.get(
    "/mechanisms/{mechanism_id}/tracks",
    summary="Tracks in the picture now",
    response_model=None,
    responses={200: {"model": TracksOut, "description": "The tracks the caller may see."}},
)
def list_tracks(caller: MemberDep, service: ServiceDep) -> Response:
    """Tracks reported within the mechanism's stale time, flown on to now. A party sees its own, and the
    others' under full disclosure or while they are in an open conflict with its own."""
    # written as it is (text, numbers): FastAPI's walk through every value first cost more than the JSON itself
    return json_answer({"tracks": service.tracks(caller.mechanism_id, reader=caller.member)})
