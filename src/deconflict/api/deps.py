"""Dependencies: the service, the member a request's bearer token names, and the rate limits that apply
to it (failed authentications per client address, writes per member)."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Annotated

from fastapi import Depends, Header, HTTPException, Path, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from deconflict.api.hub import Hub
from deconflict.api.limits import Limits, too_many
from deconflict.api.settings import Settings
from deconflict.clock import parse_utc
from deconflict.errors import InvalidInput
from deconflict.model import Member
from deconflict.service import Service, SignatureMode, Signed

__all__ = [
    "WRITE_METHODS",
    "Caller",
    "TokenLookups",
    "CallerDep",
    "HubDep",
    "MemberDep",
    "ServiceDep",
    "SettingsDep",
    "SigningDep",
    "bearer",
    "current_caller",
    "limits",
    "looked_up",
    "mechanism_caller",
]

bearer = HTTPBearer(auto_error=False, description="A member's token, printed once by `deconflict member add`.")


async def get_service(request: Request) -> Service:
    return request.app.state.service


async def get_hub(request: Request) -> Hub:
    return request.app.state.hub


ServiceDep = Annotated[Service, Depends(get_service)]
HubDep = Annotated[Hub, Depends(get_hub)]


@dataclass(frozen=True)
class Caller:
    """The member behind a request, and the mechanism its token belongs to."""

    mechanism_id: str
    member: Member
    token: str = field(default="", repr=False)
    """The bearer token presented (an event stream checks it is still live while it runs)."""


def limits(request: Request) -> Limits:
    """The application's rate limits (made from its settings on first use)."""
    state = request.app.state
    found = getattr(state, "limits", None)
    if found is None:
        found = state.limits = Limits.of(state.settings)
    return found


class TokenLookups:
    """The token lookups under way in the store, one a token: when a token's cached answer has run out
    (``credentials.TOKEN_CACHE_S``), every request that presents it meanwhile waits for the same lookup,
    instead of each reading the store (and each write leaving the fast path, ``api/fast.py``, for it: once a
    second a burst of a busy member's writes did)."""

    def __init__(self) -> None:
        self._under_way: dict[str, asyncio.Future[tuple[str, Member] | None]] = {}

    async def of(self, service: Service, token: str) -> tuple[str, Member] | None:
        """(mechanism id, member) for a live token, or None: from the cache, or from the lookup of the token
        under way, or from one started now (in a worker thread). A request that is cancelled while it waits
        leaves the lookup to the others."""
        found = service.authenticate_cached(token)
        if found is not False:
            return found
        loop = asyncio.get_running_loop()
        lookup = self._under_way.get(token)
        if lookup is None or lookup.get_loop() is not loop:
            lookup = self._under_way[token] = asyncio.ensure_future(run_in_threadpool(service.authenticate, token))
            lookup.add_done_callback(lambda done: self._forget(token, done))
        return await asyncio.shield(lookup)

    def _forget(self, token: str, done: asyncio.Future[tuple[str, Member] | None]) -> None:
        if self._under_way.get(token) is done:
            del self._under_way[token]
        if not done.cancelled():
            done.exception()  # retrieved: a failed lookup nobody waits for any more is not logged as forgotten


async def looked_up(request: Request, service: Service, token: str) -> tuple[str, Member] | None:
    """(mechanism id, member) for a live token, or None (unknown or revoked), looked up once for all the
    requests presenting it at the same time (:class:`TokenLookups`, one an application)."""
    state = request.app.state
    lookups = getattr(state, "token_lookups", None)
    if lookups is None:
        lookups = state.token_lookups = TokenLookups()
    return await lookups.of(service, token)


async def current_caller(
    request: Request,
    service: ServiceDep,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
) -> Caller:
    """The member whose token the request presents.

    A client address that presented ``auth_failures`` unknown or revoked tokens within ``auth_window_s``
    gets 429 (with ``Retry-After``) until the window has moved on, for any token it had not already used
    successfully (so a member sharing the address keeps working, and a guess learns nothing), so tokens
    cannot be guessed at speed; a request with no token at all is not counted.
    """
    if credentials is None or credentials.scheme.lower() != "bearer" or not credentials.credentials:
        raise HTTPException(
            401, "missing bearer token: send 'Authorization: Bearer <token>'", {"WWW-Authenticate": "Bearer"}
        )
    token = credentials.credentials
    rates = limits(request)
    address = request.client.host if request.client else ""
    wait = rates.auth_failures.wait_s(address)
    if wait and (address, token) not in rates.known:
        raise too_many("too many unknown or revoked tokens from your address", wait)
    found = await looked_up(request, service, token)
    if not isinstance(found, tuple):  # None: unknown or revoked
        rates.auth_failures.hit(address)
        raise HTTPException(401, "the token is unknown or was revoked", {"WWW-Authenticate": "Bearer"})
    rates.known.add(address, token)
    mechanism_id, member = found
    request.state.member = (member.id, mechanism_id)  # for the request's log line (api/ops.Observe)
    return Caller(mechanism_id, member, token)


CallerDep = Annotated[Caller, Depends(current_caller)]


WRITE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})


async def mechanism_caller(
    request: Request,
    caller: CallerDep,
    mechanism_id: Annotated[str, Path(description="Mechanism id, e.g. tr-il-syria.", max_length=64)],
) -> Caller:
    """The caller, who must belong to the mechanism in the path. A write (POST, PUT, PATCH, DELETE)
    counts against the member's ``writes_per_member`` in ``writes_window_s``; beyond, 429."""
    if caller.mechanism_id != mechanism_id:
        raise HTTPException(403, f"your token is for mechanism {caller.mechanism_id!r}, not {mechanism_id!r}")
    if request.method in WRITE_METHODS:
        writes = limits(request).writes
        key = (caller.mechanism_id, caller.member.id)
        wait = writes.wait_s(key)
        if wait:
            raise too_many(f"member {caller.member.id!r} made too many writes in a short time", wait)
        writes.hit(key)
    return caller


MemberDep = Annotated[Caller, Depends(mechanism_caller)]


async def get_settings(request: Request) -> Settings:
    return request.app.state.settings


SettingsDep = Annotated[Settings, Depends(get_settings)]


async def signing_headers(
    prepare: Annotated[
        bool, Header(alias="Deconflict-Prepare", description="true: append nothing; return the entry to sign.")
    ] = False,
    signed_at: Annotated[
        str | None, Header(alias="Deconflict-Signed-At", description="The prepared entry's `at`.", max_length=40)
    ] = None,
    entry_hash: Annotated[
        str | None, Header(alias="Deconflict-Entry-Hash", description="The prepared entry's `hash`.", max_length=64)
    ] = None,
    key_id: Annotated[
        str | None,
        Header(
            alias="Deconflict-Key-Id",
            description="The id of the party's key the record registered (`keys generate` prints it).",
            max_length=64,
        ),
    ] = None,
    signature: Annotated[
        str | None,
        Header(
            alias="Deconflict-Signature",
            description="Ed25519 signature (base64) of the bytes `deconflict/entry/v1\n` followed by the prepared "
            "entry's `hash` (its 64 hex digits, ASCII).",
            max_length=128,
        ),
    ] = None,
) -> SignatureMode:
    """How a write is signed: by a key the service holds (no headers), prepared for the party to sign
    (``Deconflict-Prepare: true``), or carrying the party's signature of the prepared entry. The route
    passes it to the use case as its ``mode``."""
    given = {
        "Deconflict-Signed-At": signed_at,
        "Deconflict-Entry-Hash": entry_hash,
        "Deconflict-Key-Id": key_id,
        "Deconflict-Signature": signature,
    }
    if not any(given.values()):
        return SignatureMode(prepare=prepare)
    missing = [name for name, value in given.items() if not value]
    if missing:
        raise InvalidInput(f"{missing[0]}: missing; a signed request sends all four signing headers", field=missing[0])
    if prepare:
        raise InvalidInput("Deconflict-Prepare: a request is either prepared or signed, not both", field="prepare")
    signed = Signed(
        at=parse_utc(signed_at, field="Deconflict-Signed-At"),
        entry_hash=str(entry_hash),
        key_id=str(key_id),
        signature=str(signature),
    )
    return SignatureMode(signed=signed)


SigningDep = Annotated[SignatureMode, Depends(signing_headers)]
