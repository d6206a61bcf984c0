"""Key registration under the authority rules: what a registration's proofs sign, and who may register or revoke a key.

A ``key.registered`` entry carries proof of possession (the new key's signature of
:func:`registration_message`) and an authorisation: ``authorised_by`` ``founding`` (the operator,
in the founding block), ``operator`` (a party with no key in force) or a key of the party in force,
whose signature of the same message is the ``authorisation``. The service writes the same message.
"""

from __future__ import annotations

import json
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from deconflict.errors import InvalidInput
from deconflict.record import signing
from deconflict.record.chain import SERVICE, canonical
from deconflict.record.rules import OPERATOR

if TYPE_CHECKING:
    from deconflict.record.authority import AuthorityState

__all__ = [
    "FOUNDING",
    "PURPOSE",
    "Request",
    "check_key_registered",
    "check_key_revoked",
    "fingerprint_ok",
    "read_request",
    "registration_message",
    "write_request",
]

PURPOSE = "deconflict key registration"
"""The ``purpose`` in what a key registration's signatures sign."""
FOUNDING = "founding"
"""``authorised_by`` of a key the operator registers in the founding block."""


def registration_message(*, mechanism: str, party: str, public_key: str) -> bytes:
    """What a key registration's proof of possession and authorisation sign (the service writes the same)."""
    return canonical({"mechanism": mechanism, "party": party, "public_key": public_key, "purpose": PURPOSE})


def fingerprint_ok(key_id: Any, public_key: Any) -> bool:
    """Whether ``key_id`` is the fingerprint of ``public_key`` (an unreadable key is no key)."""
    try:
        return isinstance(public_key, str) and signing.key_id(public_key) == key_id
    except Exception:  # noqa: BLE001 - an unreadable key is simply not a key
        return False


def check_key_registered(p: dict[str, Any], role: str, party: str | None, state: AuthorityState) -> str | None:
    """What is wrong with a key.registered payload: owner, fingerprint, proof of possession, authorisation."""
    kid, owner = p.get("key_id"), p.get("owner")
    if owner == SERVICE or owner not in state.parties():
        return f"key {kid} is registered for {owner!r}, which is no party of the mechanism"
    if not fingerprint_ok(kid, p.get("public_key")):
        return f"key {kid} is registered with a public key whose fingerprint is not {kid}"
    if kid in state.keys:
        return f"key {kid} was already registered (a key is registered once)"
    if role == OPERATOR and state.in_force(str(owner)):
        return (
            f"the operator registers a key for {owner}, which has a key in force; only {owner}'s own member "
            "(signing with its current key) may add one"
        )
    message = registration_message(mechanism=state.mechanism, party=str(owner), public_key=str(p["public_key"]))
    by, possession = p.get("authorised_by"), p.get("possession")
    if possession is None:
        return f"key {kid} is registered without proof of possession (a signature by the new key)"
    if possession is not None and not signing.verify(str(p["public_key"]), message, possession):
        return f"key {kid}: its proof of possession does not verify with the key registered"
    if role == OPERATOR:
        expected = FOUNDING if state.founding else OPERATOR
        if by != expected:
            return f"key {kid} registered by the operator says authorised_by {by!r}; here it can only be {expected!r}"
        return None
    key = state.keys.get(str(by))
    if key is None or key[0] != owner or key[1]:
        return f"key {kid} is authorised by {by!r}, which is no key of {owner} in force"
    if not signing.verify(key[2], message, p.get("authorisation")):
        return f"key {kid}: its authorisation by key {by} does not verify"
    return None


def check_key_revoked(p: dict[str, Any], role: str, party: str | None, state: AuthorityState) -> str | None:
    """What is wrong with a key.revoked payload: a key registered, not yet revoked, of the writer's party."""
    kid = p.get("key_id")
    key = state.keys.get(str(kid))
    if key is None:
        return f"revokes key {kid}, which the record never registered"
    owner, revoked, _ = key
    if revoked:
        return f"revokes key {kid}, which was already revoked"
    if role != OPERATOR and party != owner:
        return f"a member of {party} revokes key {kid} of {owner}; a party revokes only its own keys"
    return None


# --- registration requests: what a party gives the operator ---------------------------------------

REQUEST_HEADER = (
    "# deconflict key registration request: a new key's public half and its proof of possession.\n"
    "# No secret in it: give it to the operator (deconflict keys register --request THIS_FILE).\n"
)


@dataclass(frozen=True)
class Request:
    """A party's request that the operator register its new key: the proof of possession made on the party's
    side, with the private key that never leaves it."""

    mechanism: str
    party: str
    public_key: str
    possession: str

    @property
    def key_id(self) -> str:
        return signing.key_id(self.public_key)

    @classmethod
    def made(cls, key: signing.KeyPair, *, mechanism: str, party: str) -> Request:
        """The request for ``key`` (the party's new key pair) in ``mechanism``."""
        message = registration_message(mechanism=mechanism, party=party, public_key=key.public_key)
        return cls(mechanism, party, key.public_key, key.sign(message))


def write_request(path: Path, request: Request) -> None:
    """Write a registration request file (never over an existing file)."""
    fields = {
        "mechanism": request.mechanism,
        "party": request.party,
        "key_id": request.key_id,
        "public_key": request.public_key,
        "possession": request.possession,
    }
    text = REQUEST_HEADER + "".join(f"{k} = {json.dumps(v)}\n" for k, v in fields.items())
    signing.write_new_file(path, text, mode=0o644, exists="choose another file")


def read_request(path: Path) -> Request:
    """A registration request file (:func:`write_request`), its fields checked (its proof of possession is
    the service's to verify, against the mechanism it is registered in)."""
    try:
        doc: dict[str, Any] = tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as e:
        raise InvalidInput(f"request: {path} cannot be read: {e.strerror}", field="request") from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError):
        raise InvalidInput(f"request: {path} is not a key registration request", field="request") from None
    if "seed" in doc:
        raise InvalidInput(
            f"request: {path} is a private key file, which never leaves the party: the party makes its request "
            f"with deconflict keys request --key {path.name} --mechanism ... --out REQUEST and gives that",
            field="request",
        )
    missing = [k for k in ("mechanism", "party", "public_key", "possession") if not isinstance(doc.get(k), str)]
    if missing:
        raise InvalidInput(
            f"request: {path} is not a key registration request ({', '.join(missing)} missing; the party makes "
            "one with deconflict keys request)",
            field="request",
        )
    request = Request(doc["mechanism"], doc["party"], signing.public_key(doc["public_key"]), doc["possession"])
    if doc.get("key_id") not in (None, request.key_id):
        raise InvalidInput(
            f"request: {path}: key_id does not match its public key (the file was edited)", field="request"
        )
    return request
