"""Which key signs an entry about to be appended: the service's own (for ``system`` and ``operator``), a
key the service holds for a party (the demo only), or the party's own, made on its side (a prepared run
hands the drafted entry back instead; a signed run checks the party's signature of it).
"""

from __future__ import annotations

import functools
from typing import Any

from sqlalchemy import bindparam, select
from sqlalchemy.orm import Session

from deconflict.clock import Clock
from deconflict.errors import Forbidden, NotFound, StaleVersion
from deconflict.record import chain, signing
from deconflict.record.salt import Salter
from deconflict.service.context import Prepared, SignatureMode, Signed
from deconflict.service.picture import Picture
from deconflict.store import Store, direct, ledger
from deconflict.store.schema import CustodyKeyRow, KeyRow, LedgerEntry, MemberRow

__all__ = ["Signers", "custody_owner"]


def custody_owner(mechanism_id: str, party: str) -> str:
    """The key under which the service holds a party's demo key."""
    return f"{mechanism_id}/{party}"


class Signers:
    """The service's key, the party keys it holds (demo only), and the signer of each entry."""

    def __init__(self, store: Store, *, clock: Clock) -> None:
        """Load the service's key from ``store``, making it (dated by ``clock``) on first use."""
        self._custody: dict[str, signing.KeyPair] = {}
        self.service_key = self._load_service_key(store, clock)
        self.salter = Salter(self.service_key.seed)
        """The salts of the entries the service drafts (:mod:`deconflict.record.salt`)."""

    @staticmethod
    def _load_service_key(store: Store, clock: Clock) -> signing.KeyPair:
        with store.transaction() as s:
            row = s.get(CustodyKeyRow, chain.SERVICE)
            if row is None:
                pair = signing.KeyPair.generate()
                if store.read_only:  # no service ever ran on it, and a reader writes nothing: a key of this run's
                    return pair
                s.add(
                    CustodyKeyRow(
                        owner=chain.SERVICE,
                        key_id=pair.key_id,
                        seed=signing.b64(pair.seed),
                        note="the service's own key: signs its entries and the checkpoints",
                        created_at=clock(),
                    )
                )
                return pair
            return signing.KeyPair.from_seed(signing.unb64(row.seed, field="seed", size=32))

    def forget(self, mechanism_id: str, party: str) -> None:
        """Drop a held party key from memory (its row was deleted: the key was revoked)."""
        self._custody.pop(custody_owner(mechanism_id, party), None)

    def signer(
        self, s: Session, picture: Picture | None, mechanism_id: str, actor: str, mode: SignatureMode | None
    ) -> chain.Signer:
        """How the entry about to be appended for ``actor`` gets its signature.

        ``mode`` is how this entry is signed when it is the first a member appends in the use case
        (None: a later one, signed with a key the service holds).

        Raises:
            NotFound: ``actor`` is neither the service nor a member.
            Forbidden: the party signs its own entries and this run neither prepares nor carries a signature.
        """
        if actor in chain.SERVICE_ACTORS:
            key = self.service_key
            return lambda row: (key.key_id, key.sign_entry(row["hash"]))
        party, role = _party_of(s, picture, mechanism_id, actor)
        if mode is not None and mode.prepare:
            return _stop_prepared
        if mode is not None and mode.signed is not None:
            return functools.partial(_check_signed, s, mechanism_id, party, mode.signed)
        owner = custody_owner(mechanism_id, party)
        # read in each transaction: another process may have retired the key (the party registered its own),
        # and a key no longer held must never sign; only the key pair's derivation is kept across transactions.
        # Once the transaction holds the record's lock, its first read stands: a key is registered or retired
        # with an entry of the record, which waits for the lock, so it cannot change under the later entries
        read: dict[str, Any] = s.info.setdefault(_CUSTODY_READ, {})
        found = read.get(owner)
        if found is None:
            found = direct.rows(ledger.connection_of(s), _CUSTODY, {"owner": owner})  # the driver's cursor: see direct
            if ledger.holds_lock(s, mechanism_id):
                read[owner] = found
        if not found:
            self._custody.pop(owner, None)
            who = f"party {party}" if role == "party" else f"{party} ({role})"  # a facilitator is no party
            if not _has_key(s, mechanism_id, party):
                raise Forbidden(
                    f"{who} has no key in force in the record, so nothing it writes can be signed yet: the "
                    f"operator registers a key for it, its first or a new one after a revocation (deconflict keys "
                    f"register --db ... --mechanism {mechanism_id} --party {party} --request {party.lower()}.request, "
                    f"the request {party} made on its side with deconflict keys generate and keys request), then "
                    f"{party} signs with it (--key)",
                    field="key",
                )
            commands = (
                "notify, amend, cancel, ack, resolve, import and hotline send or ack"
                if role == "party"
                else "resolve and hotline send or ack"
            )
            raise Forbidden(
                f"{who} signs its own entries: prepare the request, sign the entry with {party}'s private key "
                f"and send the signature (--key on deconflict {commands}; the page, once the key file is "
                "loaded in it; or the Python client)",
                field="key",
            )
        key_id, seed = found[0]
        held = self._custody.get(owner)
        if held is None or held.key_id != key_id:
            held = self._custody[owner] = signing.KeyPair.from_seed(signing.unb64(seed, field="seed", size=32))
        pair = held
        return lambda row: (pair.key_id, pair.sign_entry(row["hash"]))


_CUSTODY_READ = "deconflict.custody_read"
"""Key in a session's ``info``: the custody rows its transaction read, by owner (each read once a transaction)."""
_CUSTODY = select(CustodyKeyRow.key_id, CustodyKeyRow.seed).where(CustodyKeyRow.owner == bindparam("owner"))


_KEY_IN_FORCE = (
    select(KeyRow.key_id)
    .where(KeyRow.mechanism_id == bindparam("mechanism"), KeyRow.owner == bindparam("owner"))
    .where(KeyRow.revoked_seq.is_(None))
    .limit(1)
)


def _has_key(s: Session, mechanism_id: str, party: str) -> bool:
    """Whether the record holds a key of ``party`` not revoked."""
    return bool(direct.rows(ledger.connection_of(s), _KEY_IN_FORCE, {"mechanism": mechanism_id, "owner": party}))


def _party_of(s: Session, picture: Picture | None, mechanism_id: str, actor: str) -> tuple[str, str]:
    """The member's party (the key owner its entries are signed for) and role."""
    if picture is not None:
        for m in picture.mechanism.members:
            if m.id == actor:
                return m.party, m.role.value
    row = s.get(MemberRow, (mechanism_id, actor))
    if row is None:
        raise NotFound(f"member {actor!r} is not a member of mechanism {mechanism_id!r}", field="member")
    return row.party, row.role


def _check_signed(s: Session, mechanism_id: str, party: str, signed: Signed, row: dict[str, Any]) -> tuple[str, str]:
    """The party's signature of the drafted entry, checked: the same hash, a live key of that party."""
    if row["hash"] != signed.entry_hash:
        raise StaleVersion(
            f"signature: the record moved on since the request was prepared (the entry would now be "
            f"number {row['seq']}, or the request differs); prepare and sign again",
            field="signature",
        )
    key = s.get(KeyRow, (mechanism_id, signed.key_id))
    if key is None or key.revoked_seq is not None:
        state = "is not registered" if key is None else f"was revoked at entry {key.revoked_seq}"
        raise Forbidden(f"signature: key {signed.key_id} {state} in mechanism {mechanism_id!r}", field="key")
    if key.owner != party:
        raise Forbidden(f"signature: key {signed.key_id} belongs to {key.owner}, not to {party}", field="key")
    if not signing.verify(key.public_key, signing.entry_message(row["hash"]), signed.signature):
        raise Forbidden(
            f"signature: does not verify with key {signed.key_id} over entry hash {row['hash']}", field="signature"
        )
    return signed.key_id, signed.signature


def _stop_prepared(row: dict[str, Any]) -> tuple[str, str]:
    """The signer of a prepared run: hand the drafted entry back instead of appending it."""
    raise Prepared(ledger.entry_doc(LedgerEntry(**row)))
