"""The record as a live event stream (Server-Sent Events) and as pages of JSON."""

from __future__ import annotations

import asyncio
import json
import math
import time
import weakref
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Annotated, Any

import orjson
from fastapi import APIRouter, Header, HTTPException, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import Response, StreamingResponse
from sqlalchemy.exc import DBAPIError

from deconflict.api.deps import Caller, HubDep, MemberDep, ServiceDep, SettingsDep
from deconflict.api.errors import is_outage
from deconflict.api.head import HEAD_AS_GET
from deconflict.api.hub import Hub, Reader, Subscription, TooManyStreams
from deconflict.api.routes import checkpoints as checkpoint_notes
from deconflict.api.schemas import ErrorOut, KeysOut, RecordOut, ReplayOut
from deconflict.api.views import entries_view, json_answer, replay_view
from deconflict.clock import parse_utc
from deconflict.errors import InvalidInput
from deconflict.service import Service
from deconflict.service import record as record_use_case

router = APIRouter(tags=["events"], responses={401: {"model": ErrorOut}, 403: {"model": ErrorOut}})
PAGE = 500
MAX_SEQ = 2**62
"""Largest sequence number a client may name."""


def _start(after: int | None, last_event_id: str | None) -> int:
    if after is not None:
        return after
    if last_event_id:
        # only what this service sends as an event's id: digits (Python's int() would also read "-1", "+5" or
        # "1_0", and a negative one was read as 0: the whole record sent again to a client that sent nonsense)
        if not (last_event_id.isascii() and last_event_id.isdigit()):
            raise InvalidInput(
                f"Last-Event-ID: expected the sequence number of the last event seen (0 or more), got "
                f"{last_event_id!r}",
                field="last-event-id",
            )
        return min(MAX_SEQ, int(last_event_id))
    return 0


def sse_frame(entry: dict[str, Any]) -> bytes:
    """One entry in the Server-Sent Events wire format (``id``, ``event``, one ``data`` line: the entry as
    compact JSON, written by orjson, several times faster than ``json`` for every frame of every stream;
    ``json`` writes what orjson refuses, an integer beyond 64 bits that a message's parameter may hold), as the
    UTF-8 bytes the response sends (orjson writes them: no text made of them to be encoded again)."""
    try:
        data = orjson.dumps(entry)
    except TypeError:
        data = json.dumps(entry, ensure_ascii=False, separators=(",", ":")).encode()
    return b"id: %d\nevent: %s\ndata: %s\n\n" % (entry["seq"], entry["type"].encode(), data)


async def _still_live(service: Service, sub: Subscription) -> bool:
    """Whether the stream may go on: its token is still live (a revocation, in this process or another,
    is seen within the token cache's second), and nothing ended it. Sets ``sub.ended`` when not."""
    if sub.ended is not None:
        return False
    found = service.authenticate_cached(sub.token)
    if found is False:
        found = await run_in_threadpool(service.authenticate, sub.token)
    if not isinstance(found, tuple) or found[1].id != sub.member_id:
        sub.ended = "token revoked: stream closed"
        return False
    return True


def _read(
    service: Service,
    hub: Hub,
    caller: Caller,
    last: int,
    last_checkpoint: int | None,
    fresh: bool,
    held_hash: str | None = None,
) -> tuple[list[dict[str, Any]], list[tuple[int, bytes]], int, dict[str, Any] | None]:
    """One turn of a stream's reading (in a worker thread): the checkpoints signed since ``last_checkpoint``
    (the latest alone on the first turn) and the next page of entries after ``last`` as the caller may see
    them, each with its frame; and the newest checkpoint now sent. The entries come through the hub's
    :class:`~deconflict.api.hub.Recent`, one read of the store for every stream a commit wakes (``fresh``:
    read the store whatever is kept). Last, what :func:`rewound_frame` says, or None: when a fresh read found
    nothing after ``last`` and the record ends before it, or when the entry ``last`` that the client holds
    (``held_hash``, its hash) is not the record's."""
    mid = caller.mechanism_id
    if last_checkpoint is None:
        latest = service.checkpoints(mid, latest=True)
        last_checkpoint = latest[-1]["seq"] - 1 if latest else 0
    newest = service.latest_checkpoint_seq(mid)
    signed = service.checkpoints(mid, after=last_checkpoint) if newest > last_checkpoint else []
    if signed:
        last_checkpoint = signed[-1]["seq"]
    batch = hub.recent.after(_entries_after(service), mid, last, PAGE, fresh=fresh)
    frames = [(view["seq"], sse_frame(view)) for view in entries_view(service, caller, batch)]
    rewound = None
    if held_hash is not None and last > 0:
        held = service.entries_after(mid, last - 1, limit=1)
        if held and held[0]["seq"] == last and held[0]["hash"] != held_hash:
            rewound = {"asked": last, "head": last, "differs": True}
    if rewound is None and fresh and not batch and last > 0:
        head = service.head(mid).seq
        if head < last:
            rewound = {"asked": last, "head": head}
    return signed, frames, last_checkpoint, rewound


def rewound_frame(said: dict[str, Any]) -> str:
    """What a stream says when the record is not the one its client holds: it ends before the entry the
    stream was asked to go on from (``after`` or ``Last-Event-ID`` past the head), or its entry there is
    another (``Last-Event-Hash``): the service's record was restored from a backup, or its database failed
    over to a copy that had not received the last entries, perhaps written over since. What the client holds
    after ``head`` is not this record's (with ``differs``, what it holds up to there may not be either); the
    stream goes on from ``head``, so that the entries written from now on reach it. ``id`` is the head: a
    browser's ``EventSource`` resumes from it."""
    asked, head = said["asked"], said["head"]
    if said.get("differs"):
        words = (
            f"the record's entry {asked} is not the one you hold (its hash differs): what you hold up to it may not "
            f"be this service's record either (restored from a backup, or failed over, and written over since); "
            f"read it again; the stream goes on from entry {head}"
        )
    else:
        words = (
            f"the record ends at entry {head}, before entry {asked} this stream was asked to go on from; the "
            f"entries after {head} that you hold are not in this service's record (restored from a backup, or "
            f"failed over); the stream goes on from entry {head}"
        )
    return f": {words}\nid: {head}\nevent: rewound\ndata: {json.dumps(said)}\n\n"


def _kept(
    service: Service, hub: Hub, caller: Caller, last: int, last_checkpoint: int
) -> list[tuple[int, bytes]] | None:
    """One turn of a stream's reading answered on the event loop, when it needs no read of the store: no
    checkpoint signed since the last one sent, the picture in memory, and the entries the hub keeps reach
    every entry heard of (a commit woke the stream: one stream read them, the others take them here, with no
    hop to a worker thread). None: read in a worker thread (:func:`_read`)."""
    mid = caller.mechanism_id
    newest = service.context.checkpoint_seq.get(mid)
    if newest is None or newest > last_checkpoint or service.context.pictures.peek(mid) is None:
        return None
    entries = hub.recent.kept(mid, last, PAGE)
    if entries is None:
        return None
    views = entries_view(service, caller, entries, read=False)  # None: it needs a read of the tables
    if views is None:
        return None
    return [(view["seq"], sse_frame(view)) for view in views]


def _entries_after(service: Service) -> Reader:
    return lambda mechanism_id, after, limit: service.entries_after(mechanism_id, after, limit=limit)


@router.get(
    "/mechanisms/{mechanism_id}/events",
    response_class=StreamingResponse,
    responses={
        200: {"content": {"text/event-stream": {}}, "description": "Server-Sent Events"},
        429: {"model": ErrorOut, "description": "The member already holds the most open streams it may."},
    },
    summary="Live stream of the record (Server-Sent Events), resumable",
)
async def events(
    request: Request,
    caller: MemberDep,
    service: ServiceDep,
    hub: HubDep,
    settings: SettingsDep,
    after: Annotated[
        int | None, Query(ge=0, le=MAX_SEQ, description="Send entries after this sequence number.")
    ] = None,
    last_event_id: Annotated[str | None, Header(max_length=20)] = None,
    last_event_hash: Annotated[
        str | None,
        Header(
            pattern="^[0-9a-f]{64}$",
            description="The hash of the entry named by after or Last-Event-ID, as the client holds it.",
        ),
    ] = None,
) -> StreamingResponse:
    """Every record entry after ``after`` (or the ``Last-Event-ID`` header), then each new one as it is
    committed: ``id`` is the sequence number, ``event`` the entry type, ``data`` the entry as JSON.

    The entry types: mechanism.declared, key.registered, key.revoked, member.added, activity.notified,
    activity.amended, activity.cancelled, zone.declared, zone.withdrawn, conflict.detected,
    conflict.acknowledged, conflict.resolved, message.sent, message.acknowledged, message.escalated. An entry's
    ``data``: ``mechanism``, ``seq``, ``at``, ``actor``, ``type``, ``payload`` (or ``withheld: true`` and no
    payload), ``payload_hash``, ``prev_hash``, ``hash``, ``key_id``, ``signature``; a message.sent the reader
    may read also carries ``message``, the message worded in the reader's language (as ``GET .../messages``
    gives it).
    Reconnect with the last id seen: no gap, no duplicate. Entries the caller may not see keep their
    place with hashes and ``withheld: true``. A comment line is sent when the stream is quiet.

    A member holds at most ``max_streams_per_member`` streams at once (8 by default; the next gets 429
    with ``Retry-After``). When the token is revoked, its open streams end within a second or two.

    ``event: checkpoint`` (no ``id``) carries each head the service signs (the latest one first):
    keep them, and ``deconflict ledger verify --checkpoints`` holds any later copy of the record
    against them, so a cut or rewritten tail is caught. Its ``note`` is the same head as a C2SP
    checkpoint note over the Merkle root of the entries it covers: ``deconflict mirror`` checks it,
    cosigns it and posts the cosignature back.

    ``event: rewound`` (``id`` the head, data ``{"asked": N, "head": H}``) says that the record ends at
    entry H, before the entry N the stream was asked to go on from: the record was restored from a backup or
    its database failed over, and the entries after H that the client holds are not this record's. The stream
    goes on from H: read again what was built from the entries after it. A client that sends the hash of
    the last entry it holds (``Last-Event-Hash``) is also told when the record's entry there is another (the
    record restored and written over since): ``{"asked": N, "head": N, "differs": true}``; read everything
    again, the stream goes on from N."""
    start = _start(after, last_event_id)
    # how often a quiet stream says it is alive: a client that hears nothing for several times that knows the
    # connection is dead though it was never closed (a link that dropped without a reset), and opens another
    headers = {
        "Cache-Control": "no-store",
        "X-Accel-Buffering": "no",
        "Deconflict-Keep-Alive": f"{settings.stream_keepalive_s:g}",
    }
    limit = settings.max_streams_per_member
    try:
        if request.scope.get(HEAD_AS_GET):  # a HEAD (api/head.py): the stream's head, and no place taken
            hub.check_room(caller.mechanism_id, caller.member.id, limit)
            return StreamingResponse(iter(()), media_type="text/event-stream", headers=headers)
        sub = hub.subscribe(caller.mechanism_id, caller.member.id, caller.token, limit=limit)
    except TooManyStreams as exc:
        retry = max(1, min(60, math.ceil(settings.stream_keepalive_s)))
        raise HTTPException(
            429,
            f"member {caller.member.id!r} already has {exc.limit} open event streams (the most one member may "
            "hold); close one, or retry later",
            {"Retry-After": str(retry)},
        ) from None

    async def frames() -> AsyncIterator[str | bytes]:
        # Entries that arrive together go out as one chunk: one write per wake-up, not per entry. The record
        # is read in a worker thread (a database that stalls holds this stream, not the event loop), and a
        # database that went away (a failover) pauses the stream, which goes on from where it was once the
        # database answers again: no entry missed, none twice.
        last = start
        last_checkpoint: int | None = None  # the newest checkpoint sent (None: read the latest on the first turn)
        quiet_since = read_at = time.monotonic()
        read = True  # read the record on this turn (woken by a commit, or quiet for a keep-alive period)
        fresh = True  # read the store itself, not only the entries the hub keeps (not woken by a commit)
        held_hash = last_event_hash  # checked against the record once, on the first turn
        outage = False
        try:
            yield ": stream open\n\n"
            while not hub.closed:  # the server is stopping: end the response (see Hub.close)
                sub.wake.clear()
                try:
                    if not await _still_live(service, sub):
                        yield f": {sub.ended}\n\n"
                        return
                    if read:
                        read_at = time.monotonic()
                        kept = None
                        signed: list[dict[str, Any]] = []
                        if not fresh and last_checkpoint is not None:
                            kept = _kept(service, hub, caller, last, last_checkpoint)
                        rewound = None
                        if kept is not None:
                            batch = kept
                        else:
                            signed, batch, last_checkpoint, rewound = await run_in_threadpool(
                                _read, service, hub, caller, last, last_checkpoint, fresh, held_hash
                            )
                            held_hash = None
                        if outage:
                            yield ": the database answers again\n\n"
                            outage = False
                        if rewound is not None:
                            yield rewound_frame(rewound)
                            last = rewound["head"]
                            quiet_since = time.monotonic()
                        if signed:
                            yield "".join(f"event: checkpoint\ndata: {json.dumps(c)}\n\n" for c in signed)
                            quiet_since = time.monotonic()
                        if batch:
                            last = batch[-1][0]
                            yield b"".join(frame for _, frame in batch)
                            quiet_since = time.monotonic()
                            if len(batch) == PAGE:
                                continue
                except DBAPIError as e:
                    if not is_outage(e):
                        raise
                    if not outage:
                        yield ": the database is not reachable; the stream goes on once it answers\n\n"
                        outage = True
                    read = fresh = True
                    await asyncio.sleep(1.0)
                    continue
                # wake up at least every session_check_s, to end the stream of a token revoked meanwhile; read
                # the record again when woken, or after a quiet keep-alive period (a write by another process)
                wait = min(settings.stream_keepalive_s, settings.session_check_s)
                try:
                    await asyncio.wait_for(sub.wake.wait(), timeout=wait)
                    read, fresh = True, False
                except TimeoutError:
                    read = fresh = time.monotonic() - read_at >= settings.stream_keepalive_s
                    if time.monotonic() - quiet_since >= settings.stream_keepalive_s:
                        yield ": keep-alive\n\n"
                        quiet_since = time.monotonic()
        finally:
            hub.unsubscribe(sub)

    body = frames()
    weakref.finalize(body, hub.unsubscribe, sub)  # a stream whose response never started frees its place too
    return StreamingResponse(body, media_type="text/event-stream", headers=headers)


@router.get(
    "/mechanisms/{mechanism_id}/record",
    summary="A page of the record, as JSON",
    response_model=None,
    responses={200: {"model": RecordOut, "description": "The entries after ``after``."}},
)
def record(
    caller: MemberDep,
    service: ServiceDep,
    after: Annotated[int, Query(ge=0, le=MAX_SEQ)] = 0,
    limit: Annotated[int, Query(ge=1, le=5000)] = 1000,
) -> Response:
    """Entries after ``after``, in order, filtered as the event stream is."""
    entries = entries_view(service, caller, service.entries_after(caller.mechanism_id, after, limit=limit))
    # written as it is (JSON already), not walked again by FastAPI's encoder: most of a page's CPU was that
    return json_answer({"entries": entries, "next_after": entries[-1]["seq"] if entries else after})


@router.get(
    "/mechanisms/{mechanism_id}/keys",
    summary="The mechanism's public keys and their fingerprints",
    response_model=None,
    responses={200: {"model": KeysOut, "description": "Every key the record registered."}},
)
def keys(caller: MemberDep, service: ServiceDep) -> dict[str, Any]:
    """Every key the record registered: whose it is (a party, or ``service``), who holds the private
    half (``party``, or ``service (demo only)``), and its fingerprint (``key_id``) to compare out of band."""
    return {"keys": service.keys(caller.mechanism_id)}


@router.get("/mechanisms/{mechanism_id}/checkpoints", summary="Signed checkpoints of the record")
def checkpoints(
    caller: MemberDep,
    service: ServiceDep,
    after: Annotated[int, Query(ge=0, le=MAX_SEQ, description="Checkpoints of entries after this one.")] = 0,
    with_cosignatures: Annotated[
        bool, Query(description="Put every party's cosignature received so far under each note.")
    ] = False,
) -> dict[str, Any]:
    """The heads the service signed (sequence number, hash, time, signature), oldest first. Save the
    response and pass it to ``deconflict ledger verify --checkpoints``. ``note`` is the same head as a
    C2SP checkpoint note (Merkle root of entries 1..seq, verifier key at ``checkpoints/keys``); with
    ``with_cosignatures`` it carries the parties' cosignatures too, and ``cosigned_by`` names them."""
    found = record_use_case.checkpoints(
        service.context, caller.mechanism_id, after=after, with_cosignatures=with_cosignatures
    )
    return {"checkpoints": found}


router.include_router(checkpoint_notes.router)


@router.get(
    "/mechanisms/{mechanism_id}/replay",
    summary="The state as it stood at an instant",
    response_model=None,
    responses={200: {"model": ReplayOut, "description": "The state at ``at``."}},
)
def replay(
    caller: MemberDep,
    service: ServiceDep,
    at: Annotated[str, Query(description="The instant (ISO 8601 UTC), e.g. 2025-04-09T08:30:00Z.", max_length=40)],
    window_h: Annotated[
        int | None,
        Query(
            ge=1,
            le=48,
            description="Only what matters around the instant: activities not cancelled nor ended more than "
            "this many hours before it, conflicts open then or resolved within it, messages awaited then or "
            "sent within it (the time bar asks for 24). Its cost does not grow with the record; without it, "
            "the whole state.",
        ),
    ] = None,
) -> Response:
    """Rebuilt from the record up to ``at``: activities with their versions, zones, conflicts and their
    status, hotline messages and acknowledgements, as the caller could see them then (the same
    disclosure rules as the live routes). With ``window_h``, what was in force, open or awaited then and
    what ended, was cancelled, closed or was sent in the hours before (``window`` says from when). An instant
    still to come is answered with the record as it stands now, and ``still_to_come`` says so."""
    instant = parse_utc(at, field="at")
    if window_h is None:
        state = service.replay(caller.mechanism_id, instant)
    else:
        state = service.replay_around(caller.mechanism_id, instant, window=timedelta(hours=window_h))
    return json_answer({**replay_view(service, caller, state), "still_to_come": instant > service.clock()})
