"""Ed25519 keys and what they sign: record entries (their chain hash) and checkpoints (a chain's head).

A party's private key stays on its side: it signs the hash of the entry it is about to
append, which covers the mechanism, sequence number, time, actor, type, payload hash and the
previous entry's hash, so nobody else (not the operator of the service) can make or move an
entry in its name. The service signs the entries it makes itself (detected conflicts,
escalations, the operator's declarations) and the checkpoints, with its own key. Keys the
service holds for a party are for the demo only, and are recorded as such.

Each message is prefixed with what it is, so a signature on one kind of thing cannot be
replayed as another:

>>> entry_message("ab" * 32)[:20]
b'deconflict/entry/v1\\n'
>>> key = KeyPair.from_seed(bytes(32))
>>> key.key_id
'ed25519:139e3940e64b5491722088d9'
>>> verify(key.public_key, entry_message("ab" * 32), key.sign(entry_message("ab" * 32)))
True
>>> verify(key.public_key, entry_message("cd" * 32), key.sign(entry_message("ab" * 32)))
False
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import os
import tomllib
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

from nacl.bindings import (
    crypto_sign,
    crypto_sign_BYTES,
    crypto_sign_open,
    crypto_sign_PUBLICKEYBYTES,
    crypto_sign_seed_keypair,
)
from nacl.exceptions import BadSignatureError

from deconflict.errors import InvalidInput

__all__ = [
    "ALGORITHM",
    "DEMO_CUSTODY",
    "KEY_FILE_HEADER",
    "PARTY_CUSTODY",
    "KeyPair",
    "b64",
    "checkpoint_message",
    "entry_message",
    "key_id",
    "public_key",
    "read_key_file",
    "read_public_key",
    "unb64",
    "verify",
    "write_key_file",
    "write_new_file",
]

ALGORITHM = "ed25519"
DEMO_CUSTODY = "service (demo only)"
"""``custody`` of a key whose private half the service holds: never for a real mechanism."""
PARTY_CUSTODY = "party"
"""``custody`` of a key whose private half only the party holds."""


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def unb64(text: str, *, field: str, size: int) -> bytes:
    """Standard base64 of exactly ``size`` bytes, or a clear error naming ``field``."""
    try:
        raw = base64.b64decode(text.strip(), validate=True)
    except (binascii.Error, ValueError, AttributeError):
        raise InvalidInput(f"{field}: not base64", field=field) from None
    if len(raw) != size:
        raise InvalidInput(f"{field}: expected {size} bytes in base64, got {len(raw)}", field=field)
    return raw


def key_id(public_key: str) -> str:
    """A key's id and fingerprint: ``ed25519:`` and 96 bits of the SHA-256 of the raw public key.

    Members compare it out of band (read it over the phone) to know the record uses the right key.
    """
    raw = unb64(public_key, field="public_key", size=32)
    return f"{ALGORITHM}:{hashlib.sha256(raw).hexdigest()[:24]}"


def entry_message(entry_hash: str) -> bytes:
    """What a signature on a record entry signs."""
    return b"deconflict/entry/v1\n" + entry_hash.encode("ascii")


def checkpoint_message(*, mechanism: str, seq: int, hash: str, at: str) -> bytes:
    """What a signature on a checkpoint (a chain's head at a time) signs."""
    return f"deconflict/checkpoint/v1\n{mechanism}\n{seq}\n{hash}\n{at}".encode()


@dataclass(frozen=True)
class KeyPair:
    """An Ed25519 key pair from its 32-byte seed (never shown in its repr)."""

    seed: bytes = field(repr=False)

    @classmethod
    def generate(cls) -> KeyPair:
        return cls(os.urandom(32))

    @classmethod
    def from_seed(cls, seed: bytes) -> KeyPair:
        if len(seed) != 32:
            raise InvalidInput("seed: an Ed25519 private key is 32 bytes", field="seed")
        return cls(seed)

    @cached_property
    def _pair(self) -> tuple[bytes, bytes]:
        """(public key, libsodium's 64-byte secret key), derived from the seed once per KeyPair."""
        public, secret = crypto_sign_seed_keypair(self.seed)
        return public, secret

    @cached_property
    def public_key(self) -> str:
        return b64(self._pair[0])

    @cached_property
    def key_id(self) -> str:
        return key_id(self.public_key)

    def sign(self, message: bytes) -> str:
        """The key's Ed25519 signature of ``message``, in base64 (deterministic: the same bytes every time).

        libsodium through PyNaCl's bindings: the signed message's first 64 bytes are the signature
        (what ``SigningKey.sign(...).signature`` gives, without building its objects). libsodium signs and
        checks about twice as fast as OpenSSL through ``cryptography`` here (bench/ledger.py measures each).
        """
        return b64(crypto_sign(message, self._pair[1])[:64])

    def sign_entry(self, entry_hash: str) -> str:
        return self.sign(entry_message(entry_hash))


_PUBLIC_KEYS: dict[str, bytes] = {}
"""Public keys read from base64 once (a verifier checks thousands of signatures by a handful of keys)."""


def verify(public_key: str, message: bytes, signature: str | None) -> bool:
    """True when ``signature`` (base64) is the key's signature of ``message``.

    libsodium's ``crypto_sign_open`` through PyNaCl's bindings, as ``VerifyKey.verify`` calls it (the
    signature before the message, both of their sizes), without building its objects on every call.
    """
    if not signature:
        return False
    raw = _PUBLIC_KEYS.get(public_key)
    if raw is None:
        try:
            raw = base64.b64decode(public_key, validate=True)
        except (binascii.Error, ValueError, TypeError):
            return False
        if len(raw) != crypto_sign_PUBLICKEYBYTES:
            return False
        _PUBLIC_KEYS[public_key] = raw
    try:
        signed = base64.b64decode(signature, validate=True)
    except (binascii.Error, ValueError, TypeError):
        return False
    if len(signed) != crypto_sign_BYTES:
        return False
    try:
        crypto_sign_open(signed + message, raw)
    except (BadSignatureError, TypeError, ValueError):
        return False
    return True


# --- key files: what a party keeps on its side ---------------------------------------------------

KEY_FILE_HEADER = "# deconflict signing key (Ed25519). PRIVATE: keep it on the party's side; never send it.\n"


def write_key_file(path: Path, key: KeyPair, *, party: str) -> None:
    """Write a private key file readable by its owner only (mode 0600). Refuses to overwrite."""
    text = (
        KEY_FILE_HEADER
        + f'party = "{party}"\nkey_id = "{key.key_id}"\npublic_key = "{key.public_key}"\n'
        + f'seed = "{b64(key.seed)}"\n'
    )
    write_new_file(path, text, mode=0o600, exists="a key file is never overwritten")


def write_new_file(path: Path, text: str, *, mode: int, exists: str) -> None:
    """Write ``text`` to a file made now with ``mode`` (never over an existing one: ``exists`` says why, after
    the path), refused in words naming ``out``."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    except FileExistsError:
        raise InvalidInput(f"{path}: already exists; {exists}", field="out") from None
    except OSError as e:
        raise InvalidInput(f"{path}: cannot be written: {e.strerror}", field="out") from None
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        f.write(text)


def read_key_file(path: Path) -> tuple[str, KeyPair]:
    """(party, key pair) from a key file written by :func:`write_key_file`."""
    try:
        doc: dict[str, Any] = tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as e:
        raise InvalidInput(f"{path}: cannot be read: {e.strerror}", field="key") from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError):
        raise InvalidInput(f"{path}: not a deconflict key file", field="key") from None
    if not isinstance(doc.get("seed"), str) or not isinstance(doc.get("party"), str):
        raise InvalidInput(f"{path}: not a deconflict key file (party and seed are needed)", field="key")
    key = KeyPair.from_seed(unb64(doc["seed"], field=f"{path}: seed", size=32))
    if doc.get("key_id") not in (None, key.key_id):
        raise InvalidInput(f"{path}: key_id does not match the key (the file was edited)", field="key")
    return doc["party"], key


def public_key(text: str) -> str:
    """A public key as given (base64 of 32 bytes), checked; a clear error naming ``public_key`` otherwise."""
    unb64(text, field="public_key", size=32)
    return text.strip()


def read_public_key(text: str) -> str:
    """A public key given as base64 or as the path of a key file (its public half is taken)."""
    candidate = Path(text)
    if len(text) < 4096 and candidate.is_file():
        try:
            doc = tomllib.loads(candidate.read_text(encoding="utf-8"))
        except (OSError, tomllib.TOMLDecodeError, UnicodeDecodeError):
            raise InvalidInput(f"{text}: not a deconflict key file", field="public_key") from None
        text = str(doc.get("public_key", ""))
    return public_key(text)
