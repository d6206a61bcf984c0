"""Bearer tokens of members: issued once (only their hash is stored), revoked, and looked up, with a
short cache of recent answers so that each request does not read the store.
"""

from __future__ import annotations

import hashlib
import secrets
import time
from typing import Literal

from sqlalchemy import select

from deconflict.model import Member
from deconflict.service import mechanisms
from deconflict.service.context import Context
from deconflict.store.schema import TokenRow

__all__ = ["TOKEN_CACHE_S", "TOKEN_PREFIX", "authenticate", "authenticate_cached", "issue_token", "revoke_tokens"]

TOKEN_CACHE_S = 1.0
"""How long an answer about a token is reused (a revocation from another process waits this long)."""
TOKEN_PREFIX = "dcf_"
"""Every bearer token starts with this, so a leaked one is easy to recognise."""


def _token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def issue_token(ctx: Context, *, mechanism_id: str, member_id: str, label: str = "") -> str:
    """A new bearer token for a member, returned once; only its hash is stored.

    Raises:
        NotFound: no such member.
    """
    mechanisms.member(ctx, mechanism_id, member_id)
    token = TOKEN_PREFIX + secrets.token_urlsafe(32)
    with ctx.store.transaction() as s:
        s.add(
            TokenRow(
                token_hash=_token_hash(token),
                mechanism_id=mechanism_id,
                member_id=member_id,
                label=label[:200],
                created_at=ctx.clock(),
                revoked_at=None,
            )
        )
    return token


def revoke_tokens(ctx: Context, *, mechanism_id: str, member_id: str) -> int:
    """Revoke every live token of a member; returns how many were revoked."""
    mechanisms.member(ctx, mechanism_id, member_id)
    with ctx.store.transaction() as s:
        rows = s.scalars(
            select(TokenRow).where(
                TokenRow.mechanism_id == mechanism_id,
                TokenRow.member_id == member_id,
                TokenRow.revoked_at.is_(None),
            )
        ).all()
        for row in rows:
            row.revoked_at = ctx.clock()
    ctx.tokens.clear()
    return len(rows)


def authenticate_cached(ctx: Context, token: str) -> tuple[str, Member] | None | Literal[False]:
    """Like :func:`authenticate` from a cache of recent answers; False when the cache cannot say.

    Answers are kept for TOKEN_CACHE_S, so a revocation made by another process takes effect
    within that time (one made through this service at once).
    """
    hit = ctx.tokens.get(token)
    if hit is None or hit[0] < time.monotonic():
        return False
    return hit[1]


def authenticate(ctx: Context, token: str) -> tuple[str, Member] | None:
    """(mechanism id, member) for a live token, or None."""
    found = _authenticate(ctx, token)
    if len(ctx.tokens) > 10_000:
        ctx.tokens.clear()
    ctx.tokens[token] = (time.monotonic() + TOKEN_CACHE_S, found)
    return found


def _authenticate(ctx: Context, token: str) -> tuple[str, Member] | None:
    if not token.startswith(TOKEN_PREFIX) or len(token) > 200:
        return None
    with ctx.store.read() as s:
        row = s.get(TokenRow, _token_hash(token))
        if row is None or row.revoked_at is not None:
            return None
        mechanism_id, member_id = row.mechanism_id, row.member_id
    return mechanism_id, mechanisms.member(ctx, mechanism_id, member_id)
