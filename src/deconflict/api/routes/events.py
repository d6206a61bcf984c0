"""The record as a live event stream (Server-Sent Events) and as pages of JSON."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator
from typing import Annotated, Any

from fastapi import APIRouter, Header, Query
from fastapi.concurrency import run_in_threadpool
from fastapi.sse import EventSourceResponse, ServerSentEvent

from deconflict.api.deps import HubDep, MemberDep, ServiceDep, SettingsDep
from deconflict.api.schemas import ErrorOut
from deconflict.api.views import entries_view
from deconflict.errors import InvalidInput

router = APIRouter(tags=["events"], responses={401: {"model": ErrorOut}, 403: {"model": ErrorOut}})
PAGE = 500
MAX_SEQ = 2**62
"""Largest sequence number a client may name."""


def _start(after: int | None, last_event_id: str | None) -> int:
    if after is not None:
        return after
    if last_event_id:
        try:
            return min(MAX_SEQ, max(0, int(last_event_id)))
        except ValueError:
            raise InvalidInput("Last-Event-ID: expected the sequence number of the last event seen") from None
    return 0


@router.get(
    "/mechanisms/{mechanism_id}/events",
    response_class=EventSourceResponse,
    summary="Live stream of the record (Server-Sent Events), resumable",
)
async def events(
    caller: MemberDep,
    service: ServiceDep,
    hub: HubDep,
    settings: SettingsDep,
    after: Annotated[
        int | None, Query(ge=0, le=MAX_SEQ, description="Send entries after this sequence number.")
    ] = None,
    last_event_id: Annotated[str | None, Header(max_length=20)] = None,
) -> AsyncIterator[ServerSentEvent]:
    """Every record entry after ``after`` (or the ``Last-Event-ID`` header), then each new one as it is
    committed: ``id`` is the sequence number, ``event`` the entry type, ``data`` the entry as JSON.
    Reconnect with the last id seen: no gap, no duplicate. Entries the caller may not see keep their
    place with hashes and ``withheld: true``."""
    last = _start(after, last_event_id)
    wake = hub.subscribe(caller.mechanism_id)
    try:
        while True:
            wake.clear()
            batch = await run_in_threadpool(service.entries_after, caller.mechanism_id, last, limit=PAGE)
            for entry in entries_view(service, caller, batch):
                last = entry["seq"]
                yield ServerSentEvent(id=str(last), event=entry["type"], raw_data=json.dumps(entry, ensure_ascii=False))
            if len(batch) < PAGE:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(wake.wait(), timeout=settings.stream_keepalive_s)
    finally:
        hub.unsubscribe(caller.mechanism_id, wake)


@router.get("/mechanisms/{mechanism_id}/record", summary="A page of the record, as JSON")
def record(
    caller: MemberDep,
    service: ServiceDep,
    after: Annotated[int, Query(ge=0, le=MAX_SEQ)] = 0,
    limit: Annotated[int, Query(ge=1, le=5000)] = 1000,
) -> dict[str, Any]:
    """Entries after ``after``, in order, filtered as the event stream is."""
    entries = entries_view(service, caller, service.entries_after(caller.mechanism_id, after, limit=limit))
    return {"entries": entries, "next_after": entries[-1]["seq"] if entries else after}
