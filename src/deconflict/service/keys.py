"""Parties' public keys, as the record registers and retires them (the operator's entries): a party's
entries verify with the key registered for it, until that key is revoked.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import delete, select

from deconflict.errors import InvalidInput, InvalidState
from deconflict.record import chain, signing
from deconflict.record.chain import EntryType
from deconflict.service import queries
from deconflict.service.context import OPERATOR, Context, retrying
from deconflict.service.signers import custody_owner
from deconflict.service.writer import RecordWriter
from deconflict.store.schema import CustodyKeyRow, KeyRow

__all__ = ["key", "keys", "record_key", "register_key", "revoke_key"]

key = queries.key


def record_key(w: RecordWriter, owner: str, public_key: str, custody: str, at: datetime) -> int:
    """One entry: the operator registers ``owner``'s public key, held as ``custody`` says."""
    payload = {"key_id": signing.key_id(public_key), "owner": owner, "public_key": public_key, "custody": custody}
    return w.append(OPERATOR, EntryType.KEY_REGISTERED, payload, at)


@retrying
def register_key(ctx: Context, *, mechanism_id: str, party: str, public_key: str) -> dict[str, Any]:
    """The operator registers a party's public key (generated on the party's side); returns the key.

    Raises:
        InvalidInput: the party has no member, or the key is malformed.
        InvalidState: the key is already registered.
    """
    with ctx.exclusive(mechanism_id) as picture:
        signers = {m.party for m in picture.mechanism.members}
        if party not in signers:
            raise InvalidInput(
                f"party: {party!r} has no member in mechanism {mechanism_id!r}; "
                f"members act for {', '.join(sorted(signers))}",
                field="party",
            )
        public = signing.public_key(public_key)
        kid = signing.key_id(public)
        with ctx.store.read() as s:
            if s.get(KeyRow, (mechanism_id, kid)) is not None:
                raise InvalidState(f"public_key: key {kid} is already registered", field="public_key")
        with RecordWriter(ctx, mechanism_id, picture=picture) as w:
            record_key(w, party, public, signing.PARTY_CUSTODY, ctx.clock())
        return queries.key(ctx, mechanism_id, kid)


@retrying
def revoke_key(ctx: Context, *, mechanism_id: str, key_id: str, reason: str = "") -> dict[str, Any]:
    """The operator retires a key: entries after this one signed with it do not verify.

    Raises:
        NotFound: the key is not registered.
        InvalidState: it was already revoked, or it is the service's own.
    """
    with ctx.exclusive(mechanism_id) as picture:
        current = queries.key(ctx, mechanism_id, key_id)
        if current["revoked_seq"] is not None:
            raise InvalidState(f"key {key_id} was already revoked at entry {current['revoked_seq']}")
        if current["owner"] == chain.SERVICE:
            raise InvalidState("the service's own key cannot be revoked this way")
        with RecordWriter(ctx, mechanism_id, picture=picture) as w:
            payload = {"key_id": key_id, "reason": reason[:200]}
            w.append(OPERATOR, EntryType.KEY_REVOKED, payload, ctx.clock())
            w.session.execute(
                delete(CustodyKeyRow)
                .where(
                    CustodyKeyRow.owner == custody_owner(mechanism_id, current["owner"]),
                    CustodyKeyRow.key_id == key_id,
                )
                .execution_options(synchronize_session=False)
            )
        ctx.signers.forget(mechanism_id, current["owner"])
        return queries.key(ctx, mechanism_id, key_id)


def keys(ctx: Context, mechanism_id: str) -> list[dict[str, Any]]:
    """The mechanism's public keys and their fingerprints, as its record registered them."""
    ctx.pictures.get(mechanism_id)
    with ctx.store.read() as s:
        rows = s.scalars(select(KeyRow).where(KeyRow.mechanism_id == mechanism_id).order_by(KeyRow.registered_seq))
        return [queries.key_doc(r) for r in rows]
