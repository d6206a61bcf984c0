"""Dependencies: the service and the member a request's bearer token names."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Header, HTTPException, Path, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from deconflict.api.hub import Hub
from deconflict.api.settings import Settings
from deconflict.clock import parse_utc
from deconflict.errors import InvalidInput
from deconflict.model import Member
from deconflict.service import Service, SignatureMode, Signed

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


async def current_caller(
    service: ServiceDep, credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)]
) -> Caller:
    if credentials is None or credentials.scheme.lower() != "bearer" or not credentials.credentials:
        raise HTTPException(
            401, "missing bearer token: send 'Authorization: Bearer <token>'", {"WWW-Authenticate": "Bearer"}
        )
    found = service.authenticate_cached(credentials.credentials)
    if found is False:
        found = await run_in_threadpool(service.authenticate, credentials.credentials)
    if not isinstance(found, tuple):  # None: unknown or revoked
        raise HTTPException(401, "the token is unknown or was revoked", {"WWW-Authenticate": "Bearer"})
    mechanism_id, member = found
    return Caller(mechanism_id, member)


CallerDep = Annotated[Caller, Depends(current_caller)]


async def mechanism_caller(
    caller: CallerDep, mechanism_id: Annotated[str, Path(description="Mechanism id, e.g. tr-il-syria.", max_length=64)]
) -> Caller:
    """The caller, who must belong to the mechanism in the path."""
    if caller.mechanism_id != mechanism_id:
        raise HTTPException(403, f"your token is for mechanism {caller.mechanism_id!r}, not {mechanism_id!r}")
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
    key_id: Annotated[str | None, Header(alias="Deconflict-Key-Id", max_length=64)] = None,
    signature: Annotated[
        str | None,
        Header(alias="Deconflict-Signature", description="Ed25519 signature (base64) of the entry.", max_length=128),
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
