"""Mechanisms and their members: declaring a mechanism (its first entries: itself with the service's key,
the parties' keys, its initial zones), adding a member, and finding members.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import select

from deconflict.errors import InvalidInput, InvalidState, NotFound
from deconflict.formats.docs import member_to_doc, parse_member, zone_to_doc
from deconflict.mechanisms import mechanism_from_record, mechanism_to_doc, zones_reach_area
from deconflict.model import Mechanism, Member, Role
from deconflict.record import signing
from deconflict.record.authority import RESERVED_IDS
from deconflict.record.chain import EntryType
from deconflict.service import keys, zones
from deconflict.service.context import IMMEDIATE, OPERATOR, Context, Outcome, SignatureMode, retrying
from deconflict.service.picture import Picture
from deconflict.service.signers import custody_owner
from deconflict.service.writer import RecordWriter
from deconflict.store.schema import CustodyKeyRow, MechanismRow, MemberRow

__all__ = ["add_member", "declare_mechanism", "mechanism_ids", "member", "next_member_id"]


def mechanism_ids(ctx: Context) -> list[str]:
    """Every mechanism in the store, by id."""
    with ctx.store.read() as s:
        return list(s.scalars(select(MechanismRow.id).order_by(MechanismRow.id)))


def member(ctx: Context, mechanism_id: str, member_id: str) -> Member:
    """A member of a mechanism (the picture is rebuilt once when another process may have added it).

    Raises:
        NotFound: no such mechanism or member.
    """
    for attempt in range(2):
        for m in ctx.pictures.get(mechanism_id).mechanism.members:
            if m.id == member_id:
                return m
        if attempt == 0:  # another process (deconflict member add) may have added it
            with ctx.store.read() as s:
                if s.get(MemberRow, (mechanism_id, member_id)) is None:
                    break
            with ctx.lock:
                ctx.pictures.drop(mechanism_id)
    raise NotFound(f"member {member_id!r} is not a member of mechanism {mechanism_id!r}", field="member")


def next_member_id(ctx: Context, mechanism_id: str, party: str) -> str:
    """The first free member id of the form ``<party>-<n>``."""
    taken = {m.id for m in ctx.pictures.get(mechanism_id).mechanism.members}
    n = 1
    while f"{party}-{n}" in taken:
        n += 1
    return f"{party}-{n}"


def declare_mechanism(
    ctx: Context,
    *,
    mechanism: Mechanism,
    party_keys: dict[str, str] | None = None,
    key_proofs: dict[str, str] | None = None,
    demo_custody: bool = False,
    mode: SignatureMode = IMMEDIATE,
) -> Outcome:
    """Record a new mechanism (its first entry, carrying the service's public key), the parties'
    public keys, and its initial zones.

    ``party_keys`` maps a party to the public key it generated on its side, ``key_proofs`` a party
    to that key's proof of possession (its signature of ``keys.registration_message``; required,
    checked and recorded). Each key is registered as authorised by the founding declaration
    (``authorised_by: "founding"``). With ``demo_custody``
    the service makes and holds a key for every other party: for the demo only, and the
    record says so. A party with neither cannot act until its key is registered. Initial
    zones are declared by their owner when the service holds the owner's key, otherwise by
    the operator, as written in the agreed mechanism file. ``mode`` signs the first zone an
    owner declares.

    Raises:
        InvalidInput: a key is given for a party without members, or is malformed; or the definition would
            not read back from the record (a rule out of its range, e.g. a ladder rung under 6 seconds:
            every later start reads the mechanism from its first entry, so it is refused here, not then).
        InvalidState: the mechanism already exists.
    """
    mechanism_from_record(mechanism_to_doc(mechanism))  # what the record will say must read back
    zones_reach_area(mechanism)  # each zone, before anything is written (a third refused left two declared)
    given = dict(party_keys or {})
    proofs = dict(key_proofs or {})
    signers = {m.party for m in mechanism.members}
    unknown = (set(given) | set(proofs)) - signers
    if unknown:
        raise InvalidInput(f"keys: {', '.join(sorted(unknown))} has no member in the mechanism", field="keys")
    if set(proofs) - set(given):
        raise InvalidInput(
            f"key_proofs: a proof for {', '.join(sorted(set(proofs) - set(given)))} without its key", field="key_proofs"
        )
    if set(given) - set(proofs):
        raise InvalidInput(
            f"key_proofs: the key of {', '.join(sorted(set(given) - set(proofs)))} comes without its proof of "
            "possession (the new key's signature of the registration message): a bare public key could be one "
            "nobody holds",
            field="key_proofs",
        )
    with ctx.lock:
        with ctx.store.read() as s:
            if s.get(MechanismRow, mechanism.id) is not None:
                raise InvalidState(f"mechanism {mechanism.id!r} already exists", field="id")
        public = {party: signing.public_key(k) for party, k in given.items()}
        for party, proof in proofs.items():
            keys.check_possession(mechanism.id, party, public[party], proof)
        now = mode.now(ctx.clock)
        held: set[str] = set()
        service_key = ctx.signers.service_key
        with RecordWriter(ctx, mechanism.id) as w:
            doc: dict[str, Any] = mechanism_to_doc(mechanism)
            doc["service_key"] = {"key_id": service_key.key_id, "public_key": service_key.public_key}
            seq = w.append(OPERATOR, EntryType.MECHANISM_DECLARED, doc, now)
            for party in sorted(signers):
                if party in public:
                    seq = keys.record_key(
                        w,
                        party,
                        public[party],
                        signing.PARTY_CUSTODY,
                        now,
                        authorised_by=keys.FOUNDING,
                        possession=proofs[party],
                    )
                elif demo_custody:
                    pair = signing.KeyPair.generate()
                    w.session.add(
                        CustodyKeyRow(
                            owner=custody_owner(mechanism.id, party),
                            key_id=pair.key_id,
                            seed=signing.b64(pair.seed),
                            note="demo only: a real party keeps its private key on its own side",
                            created_at=now,
                        )
                    )
                    message = keys.registration_message(mechanism=mechanism.id, party=party, public_key=pair.public_key)
                    seq = keys.record_key(
                        w,
                        party,
                        pair.public_key,
                        signing.DEMO_CUSTODY,
                        now,
                        authorised_by=keys.FOUNDING,
                        possession=pair.sign(message),
                    )
                    held.add(party)
        ctx.pictures.drop(mechanism.id)
        owner_mode = mode
        for zone in mechanism.zones:
            if zone.owner in held:
                owner = next(m.id for m in mechanism.members if m.party == zone.owner and m.role is Role.PARTY)
                doc = zone_to_doc(zone)
                seq = zones.declare_zone(
                    ctx, mechanism_id=mechanism.id, actor=owner, zone=doc, mode=owner_mode, agreed=True
                ).seq
                owner_mode = IMMEDIATE  # the mode signs one member's entry only
            else:
                doc = zone_to_doc(zone)
                seq = zones.declare_zone(ctx, mechanism_id=mechanism.id, actor=OPERATOR, zone=doc, agreed=True).seq
        return Outcome(seq=seq)


@retrying
def add_member(ctx: Context, *, mechanism_id: str, member: dict[str, Any] | Member) -> Member:
    """Add a member (an account acting for a party, a facilitator or an observer).

    Members are bound once: a new member takes a new id, and an id, once declared, never acts for
    another party or in another role (there is no re-binding). A facilitator or observer acts for
    its own code, never for one of the mechanism's parties.

    Raises:
        InvalidInput: the member is malformed, acts for a party the mechanism does not have, or is a
            facilitator or observer under a party's code, or takes an id the record reserves.
        InvalidState: its id is taken.
    """
    with ctx.exclusive(mechanism_id) as picture:
        m = _admitted_member(picture, mechanism_id, member)
        with RecordWriter(ctx, mechanism_id, picture=picture) as w:
            w.append(OPERATOR, EntryType.MEMBER_ADDED, member_to_doc(m), ctx.clock())
        ctx.pictures.drop(mechanism_id)
        return m


def check_member(ctx: Context, *, mechanism_id: str, member: dict[str, Any] | Member) -> Member:
    """:func:`add_member`'s checks, nothing written: a command that must do something first (record what fell
    due) only once the member would be taken."""
    return _admitted_member(ctx.pictures.get(mechanism_id), mechanism_id, member)


def _admitted_member(picture: Picture, mechanism_id: str, member: dict[str, Any] | Member) -> Member:
    """The member ``member`` as the mechanism would take it (:func:`add_member`'s checks).

    Raises:
        InvalidInput, InvalidState: as :func:`add_member`.
    """
    m = member if isinstance(member, Member) else parse_member(member)
    for x in picture.mechanism.members:
        if x.id == m.id:
            raise InvalidState(
                f"id: member {m.id!r} already exists in mechanism {mechanism_id!r} ({x.role.value} of "
                f"{x.party}); members and their parties and roles never change: add a new id",
                field="id",
            )
    if m.id in RESERVED_IDS or m.party in RESERVED_IDS:
        raise InvalidInput(
            f"id: {m.id!r} acting for {m.party!r}: system, operator and service are the record's own names",
            field="id",
        )
    if m.role is not Role.PARTY and m.party in picture.mechanism.parties():
        raise InvalidInput(
            f"party: a {m.role.value} acts for its own code, not for {m.party!r}, a party of mechanism "
            f"{mechanism_id!r}",
            field="party",
        )
    if m.role is Role.PARTY and m.party not in picture.mechanism.parties():
        raise InvalidInput(
            f"party: {m.party!r} is not a party of mechanism {mechanism_id!r}; "
            f"parties are {', '.join(sorted(picture.mechanism.parties()))}",
            field="party",
        )
    return m
