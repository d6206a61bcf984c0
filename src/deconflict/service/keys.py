"""Parties' public keys, as the record registers and retires them: a party's entries verify with the key
registered for it, until that key is revoked.

Key registration: the fields the verifier checks (keep in step with /work/notes/key_registration.md)
---------------------------------------------------------------------------------------------------
Both signatures sign one message, :func:`registration_message`: the canonical JSON (record.chain.canonical:
sorted keys, no spaces, UTF-8, no NaN) of::

    {"mechanism": <mechanism id>, "party": <owner>, "public_key": <base64 public key>,
     "purpose": "deconflict key registration"}

A ``key.registered`` payload holds ``key_id``, ``owner``, ``public_key``, ``custody`` and:

``possession``
    base64 Ed25519 signature of the message by the NEW key (proof that the party holds it). Always
    present, founding keys included.
``authorised_by``
    ``"founding"``: the operator's founding declaration (the block right after entry 1);
    ``"operator"``: the party had no key in force (its first key after founding, or after its keys
    were revoked), so the operator registers it, in plain sight;
    or the key id of a key of the party in force: the entry is then written by a member of that
    party (signed like its other entries) and carries
``authorisation``
    base64 signature of the message by the ``authorised_by`` key (only when that is a key id).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import delete, select

from deconflict.errors import Forbidden, InvalidInput, InvalidState
from deconflict.formats.docs import text
from deconflict.record import chain, registration, signing
from deconflict.record.chain import EntryType
from deconflict.service import queries, rules
from deconflict.service.context import IMMEDIATE, OPERATOR, Context, SignatureMode, retrying
from deconflict.service.picture import Picture
from deconflict.service.signers import custody_owner
from deconflict.service.writer import RecordWriter
from deconflict.store.schema import CustodyKeyRow, KeyRow

__all__ = [
    "FOUNDING",
    "OPERATOR_AUTHORISED",
    "PURPOSE",
    "key",
    "keys",
    "record_key",
    "register_key",
    "registration_message",
    "revoke_key",
]

key = queries.key

PURPOSE = registration.PURPOSE
"""The ``purpose`` of the message a key registration's signatures sign."""
FOUNDING = registration.FOUNDING
"""``authorised_by`` of a key registered in the founding declaration."""
OPERATOR_AUTHORISED = OPERATOR
"""``authorised_by`` of a key the operator registers for a party with no key in force."""
registration_message = registration.registration_message
"""What the proof of possession and the authorisation of a key registration sign (the rules' own spelling)."""


def record_key(
    w: RecordWriter,
    owner: str,
    public_key: str,
    custody: str,
    at: datetime,
    *,
    authorised_by: str,
    possession: str | None,
    authorisation: str | None = None,
    actor: str = OPERATOR,
) -> int:
    """One entry: ``owner``'s public key registered, held as ``custody`` says, with its proofs."""
    payload: dict[str, Any] = {
        "key_id": signing.key_id(public_key),
        "owner": owner,
        "public_key": public_key,
        "custody": custody,
        "authorised_by": authorised_by,
    }
    if possession is not None:
        payload["possession"] = possession
    if authorisation is not None:
        payload["authorisation"] = authorisation
    return w.append(actor, EntryType.KEY_REGISTERED, payload, at)


def check_possession(mechanism_id: str, party: str, public_key: str, possession: str | None) -> str:
    """The proof of possession, checked against the new key.

    Raises:
        InvalidInput: it is missing or does not verify.
    """
    if not possession:
        raise InvalidInput(
            "possession: missing: the new key's signature of the registration message (canonical JSON of "
            "mechanism, party, public_key and purpose) proves the party holds it; "
            "`deconflict keys request --key <the new key file>` makes it on the party's side",
            field="possession",
        )
    message = registration_message(mechanism=mechanism_id, party=party, public_key=public_key)
    if not signing.verify(public_key, message, possession):
        raise InvalidInput(
            f"possession: does not verify with the new key {signing.key_id(public_key)} over the registration "
            f"message for {party} in {mechanism_id}",
            field="possession",
        )
    return possession


@retrying
def register_key(
    ctx: Context,
    *,
    mechanism_id: str,
    party: str,
    public_key: str,
    possession: str | None = None,
    authorised_by: str | None = None,
    authorisation: str | None = None,
    mode: SignatureMode = IMMEDIATE,
    check_only: bool = False,
) -> dict[str, Any]:
    """Register a party's new public key (generated on the party's side); returns the key.

    ``possession`` is the new key's signature of :func:`registration_message`. While the party has a key
    in force, the registration must be authorised by one: ``authorised_by`` (its key id) and
    ``authorisation`` (its signature of the same message); the entry is then a member of the party's,
    signed as ``mode`` says (the service makes both itself when it holds the party's key, demo only).
    A party with no key in force gets its key from the operator. ``check_only``: every check, then nothing
    written (an empty document returned), so that a command refuses before it writes anything else.

    Raises:
        InvalidInput: the party has no member, the key is malformed, a proof is missing or does not verify.
        Forbidden: ``authorised_by`` is no key of the party in force.
        InvalidState: the key is already registered.
    """
    with ctx.exclusive(mechanism_id) as picture:
        c = _checked_registration(ctx, picture, party, public_key, possession, authorised_by, authorisation)
        if check_only:
            return {}
        public, kid, actor, held_id = c.public, c.kid, c.actor, c.held_id
        authorised_by, authorisation = c.authorised_by, c.authorisation
        with RecordWriter(ctx, mechanism_id, picture=picture, mode=mode) as w:
            record_key(
                w,
                party,
                public,
                signing.PARTY_CUSTODY,
                mode.now(ctx.clock),
                authorised_by=authorised_by,
                possession=possession,
                authorisation=authorisation if actor != OPERATOR else None,
                actor=actor,
            )
            if held_id is not None:
                # The party now holds its own key: the copy the service held for it (demo custody) is retired
                # in the same transaction, so neither the service nor its operator can sign for the party again.
                w.append(
                    OPERATOR,
                    EntryType.KEY_REVOKED,
                    {
                        "key_id": held_id,
                        "reason": f"{party} holds its own key {kid} now; the service's copy is retired",
                    },
                    mode.now(ctx.clock),
                )
                w.session.execute(
                    delete(CustodyKeyRow)
                    .where(CustodyKeyRow.owner == custody_owner(mechanism_id, party), CustodyKeyRow.key_id == held_id)
                    .execution_options(synchronize_session=False)
                )
        if held_id is not None:
            ctx.signers.forget(mechanism_id, party)
        return queries.key(ctx, mechanism_id, kid)


@dataclass(frozen=True)
class _Registration:
    """A registration as :func:`register_key` checked it: the key, who appends it and with what authority."""

    public: str
    kid: str
    actor: str
    authorised_by: str
    authorisation: str | None
    held_id: str | None
    """The key the service held for the party (demo custody), retired by the registration."""


def _checked_registration(
    ctx: Context,
    picture: Picture,
    party: str,
    public_key: str,
    possession: str | None,
    authorised_by: str | None,
    authorisation: str | None,
) -> _Registration:
    """:func:`register_key`'s checks, in the mechanism's lock (``picture``), nothing written."""
    mechanism_id = picture.mechanism.id
    signers = {m.party for m in picture.mechanism.members}
    if party not in signers:
        raise InvalidInput(
            f"party: {party!r} has no member in mechanism {mechanism_id!r}; "
            f"members act for {', '.join(sorted(signers))}",
            field="party",
        )
    public = signing.public_key(public_key)
    kid = signing.key_id(public)
    check_possession(mechanism_id, party, public, possession)
    message = registration_message(mechanism=mechanism_id, party=party, public_key=public)
    with ctx.store.read() as s:
        if s.get(KeyRow, (mechanism_id, kid)) is not None:
            raise InvalidState(f"public_key: key {kid} is already registered", field="public_key")
        in_force = {
            r.key_id: r.public_key
            for r in s.scalars(
                select(KeyRow).where(
                    KeyRow.mechanism_id == mechanism_id, KeyRow.owner == party, KeyRow.revoked_seq.is_(None)
                )
            )
        }
        held = s.get(CustodyKeyRow, custody_owner(mechanism_id, party))
        held_seed = held.seed if held is not None and held.key_id in in_force else None
        held_id = held.key_id if held_seed is not None and held is not None else None
        founding = rules.state_after(ctx, s, mechanism_id, picture.head).founding
    actor = OPERATOR
    if not in_force:
        if authorised_by is not None:
            raise InvalidInput(
                f"authorised_by: {party} has no key in force to authorise a new one; the operator registers "
                "it (leave authorised_by out)",
                field="authorised_by",
            )
        # a party's first key: part of the founding agreement while nothing but declarations followed
        # entry 1 (the record's rules read it so), the operator's registration after that
        authorised_by = FOUNDING if founding else OPERATOR_AUTHORISED
    else:
        if authorised_by is None and held_seed is not None:  # demo custody: the service holds the key
            pair = signing.KeyPair.from_seed(signing.unb64(held_seed, field="seed", size=32))
            authorised_by, authorisation = pair.key_id, pair.sign(message)
        if authorised_by is None or not authorisation:
            missing = "authorised_by" if authorised_by is None else "authorisation"
            raise InvalidInput(
                f"{missing}: missing: {party} has a key in force ({', '.join(sorted(in_force))}), so a new key "
                "is authorised by that key's signature of the registration message "
                "(`deconflict keys register --with-key <the current key file>`)",
                field=missing,
            )
        if authorised_by not in in_force:
            raise Forbidden(f"authorised_by: {authorised_by} is no key of {party} in force in {mechanism_id!r}")
        if not signing.verify(in_force[authorised_by], message, authorisation):
            raise Forbidden(
                f"authorisation: does not verify with key {authorised_by} over the registration message "
                f"for {party}'s key {kid}"
            )
        actor = min(m.id for m in picture.mechanism.members if m.party == party)  # a member of that party
    return _Registration(public, kid, actor, authorised_by, authorisation, held_id)


@retrying
def revoke_key(ctx: Context, *, mechanism_id: str, key_id: str, reason: str = "") -> dict[str, Any]:
    """The operator retires a key: entries after this one signed with it do not verify.

    Raises:
        NotFound: the key is not registered.
        InvalidState: it was already revoked, or it is the service's own.
    """
    if reason:
        reason = text(reason, "reason", max_len=MAX_REASON)
    with ctx.exclusive(mechanism_id) as picture:
        current = revocable(ctx, mechanism_id, key_id)
        with RecordWriter(ctx, mechanism_id, picture=picture) as w:
            payload = {"key_id": key_id, "reason": reason}
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


MAX_REASON = 200
"""The longest reason a revocation records (a longer one is refused, not cut)."""


def revocable(ctx: Context, mechanism_id: str, key_id: str) -> dict[str, Any]:
    """The key ``key_id`` (:func:`queries.key`'s document), when the operator may revoke it now.

    Raises:
        NotFound: the key is not registered.
        InvalidState: it was already revoked, or it is the service's own.
    """
    current = queries.key(ctx, mechanism_id, key_id)
    if current["revoked_seq"] is not None:
        raise InvalidState(f"key {key_id} was already revoked at entry {current['revoked_seq']}")
    if current["owner"] == chain.SERVICE:
        raise InvalidState(
            "the service's own key cannot be revoked: it signs the service's entries and checkpoints; a new "
            "one means a new service key in a new record"
        )
    return current


def keys(ctx: Context, mechanism_id: str) -> list[dict[str, Any]]:
    """The mechanism's public keys and their fingerprints, as its record registered them."""
    ctx.pictures.get(mechanism_id)
    with ctx.store.read() as s:
        rows = s.scalars(select(KeyRow).where(KeyRow.mechanism_id == mechanism_id).order_by(KeyRow.registered_seq))
        return [queries.key_doc(r) for r in rows]
