"""Signed notes, checkpoints and cosignatures (C2SP formats): writing, parsing and verifying them.

The service publishes the record's head as a **checkpoint** (https://c2sp.org/tlog-checkpoint),
a **signed note** (https://c2sp.org/signed-note) whose text is::

    <origin>\\n<tree size>\\n<base64 RFC 6962 root>\\n[extension lines]

signed by the service's Ed25519 key (signature type 0x01). Each party's side **cosigns** it
(https://c2sp.org/tlog-cosignature, Ed25519 ``cosignature/v1``, type 0x04) only after checking
that it extends the checkpoint it cosigned last (:class:`~deconflict.record.witness.Witness`).
One note then carries the service's signature and every party's cosignature, each a line ``— <key name> <base64>``;
the 4-byte key id is ``SHA-256(name || 0x0A || type || public key)[:4]``, and a key is
published as a *vkey* ``<name>+<hex key id>+<base64(type || public key)>``.

**Names.** A mechanism's origin is ``deconflict.example/<mechanism id>`` (:func:`origin`; the
host part is a label, not an address), and the service's key name is the origin, as the
checkpoint spec recommends. A party's cosigner name is ``<origin>/<party>``
(:func:`cosigner_name`). Ed25519 cosignatures do not commit to the cosigner's name, so each
cosigner needs its own key (the party's record key is fine: key ids differ by type byte).

**Verification** follows the signed-note rules: signatures from unknown keys (name and id not
both matching) are ignored; one from a known key that fails rejects the whole note; a note
with no verified known signature is rejected. Malformed text of any kind is an
:class:`~deconflict.errors.InvalidInput` naming what is wrong.

A party's :class:`~deconflict.record.witness.Witness` and fork proofs are :mod:`deconflict.record.witness`.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
from collections.abc import Sequence
from dataclasses import dataclass, field, replace

from deconflict.errors import InvalidInput
from deconflict.record import merkle
from deconflict.record.signing import KeyPair, b64, unb64, verify

__all__ = [
    "COSIGNATURE_V1",
    "DEFAULT_HOST",
    "ED25519",
    "MAX_SIGNATURES",
    "Checkpoint",
    "Cosigner",
    "Note",
    "NoteSigner",
    "Signature",
    "Verified",
    "Verifier",
    "cosigner_name",
    "decode_b64",
    "key_id",
    "open_checkpoint",
    "origin",
    "parse_checkpoint",
    "parse_note",
    "parse_vkey",
    "verify_note",
]

ED25519 = 0x01
"""Signature type of a plain Ed25519 note signature (the service's)."""
COSIGNATURE_V1 = 0x04
"""Signature type of a timestamped Ed25519 ``cosignature/v1`` (a party's)."""
MAX_SIGNATURES = 100
"""More signature lines than this and a note is refused (the spec asks that at least 16 be accepted)."""
DEFAULT_HOST = "deconflict.example"
_DASH = "\u2014 "
_MAX_TIMESTAMP = (1 << 63) - 1


def decode_b64(text: str, *, what: str) -> bytes:
    """Standard, canonical base64 (one spelling per byte string, so a note's text cannot be re-spelled)."""
    try:
        raw = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise InvalidInput(f"{what}: not base64", field="note") from None
    if b64(raw) != text:
        raise InvalidInput(f"{what}: not base64 in its one standard spelling", field="note")
    return raw


def _check_name(name: object, *, what: str) -> str:
    if not isinstance(name, str) or not name or any(c.isspace() or c == "+" or c < " " for c in name):
        raise InvalidInput(f"{what}: a key name is non-empty, without spaces or '+': {name!r}", field="name")
    return name


def origin(mechanism: str, host: str = DEFAULT_HOST) -> str:
    """A mechanism's checkpoint origin (and the service's key name): ``<host>/<mechanism id>``."""
    _check_name(mechanism, what="mechanism")
    return _check_name(f"{host}/{mechanism}", what="origin")


def cosigner_name(mechanism: str, party: str, host: str = DEFAULT_HOST) -> str:
    """A party's cosigner key name for a mechanism: ``<origin>/<party>``."""
    _check_name(party, what="party")
    return _check_name(f"{origin(mechanism, host)}/{party}", what="cosigner")


def key_id(name: str, alg: int, public_key: bytes) -> int:
    """The signed-note key id: the first 4 bytes (big-endian) of SHA-256(name || 0x0A || type || key)."""
    digest = hashlib.sha256(name.encode() + b"\n" + bytes([alg]) + public_key).digest()
    return int.from_bytes(digest[:4], "big")


def _cosigned_message(timestamp: int, text: str) -> bytes:
    return f"cosignature/v1\ntime {timestamp}\n{text}".encode()


@dataclass(frozen=True)
class Signature:
    """One signature line: key name, key id, and the signature bytes after the id."""

    name: str
    key_id: int
    raw: bytes

    def line(self) -> str:
        return f"{_DASH}{self.name} {b64(self.key_id.to_bytes(4, 'big') + self.raw)}\n"

    @property
    def timestamp(self) -> int | None:
        """A cosignature's time (POSIX seconds); None when the bytes are not a cosignature's."""
        return int.from_bytes(self.raw[:8], "big") if len(self.raw) == 8 + 64 else None


@dataclass(frozen=True)
class Verified:
    """A signature that verified: whose, and (for a cosignature) when it was made."""

    name: str
    alg: int
    timestamp: int | None


@dataclass(frozen=True)
class Verifier:
    """A public key as a note verifier: name, type (0x01 or 0x04) and the 32-byte Ed25519 key."""

    name: str
    alg: int
    public_key: bytes

    def __post_init__(self) -> None:
        _check_name(self.name, what="vkey")
        if self.alg not in (ED25519, COSIGNATURE_V1):
            raise InvalidInput(f"vkey {self.name}: signature type {self.alg:#04x} is not Ed25519 (0x01 or 0x04)")
        if len(self.public_key) != 32:
            raise InvalidInput(f"vkey {self.name}: an Ed25519 public key is 32 bytes", field="vkey")

    @property
    def key_id(self) -> int:
        return key_id(self.name, self.alg, self.public_key)

    def vkey(self) -> str:
        return f"{self.name}+{self.key_id:08x}+{b64(bytes([self.alg]) + self.public_key)}"

    def check(self, text: str, raw: bytes) -> Verified | None:
        """The signature's facts if ``raw`` is this key's signature of the note ``text``, else None."""
        key = b64(self.public_key)
        if self.alg == ED25519:
            ok = len(raw) == 64 and verify(key, text.encode(), b64(raw))
            return Verified(self.name, self.alg, None) if ok else None
        t = int.from_bytes(raw[:8], "big")
        ok = len(raw) == 8 + 64 and t <= _MAX_TIMESTAMP and verify(key, _cosigned_message(t, text), b64(raw[8:]))
        return Verified(self.name, self.alg, t) if ok else None


def parse_vkey(text: str) -> Verifier:
    """A verifier from its vkey text; the key id in it must be the one the key and name give."""
    name, _, rest = text.strip().partition("+")
    hex_id, _, key64 = rest.partition("+")
    if not re.fullmatch(r"[0-9a-f]{8}", hex_id) or not key64:
        raise InvalidInput(f"vkey: expected <name>+<8 hex digits>+<base64>, got {text!r}", field="vkey")
    raw = decode_b64(key64, what="vkey key")
    if not raw:
        raise InvalidInput("vkey: no key", field="vkey")
    v = Verifier(name, raw[0], raw[1:])
    if v.key_id != int(hex_id, 16):
        raise InvalidInput(f"vkey {name}: key id {hex_id} is not the id of this name and key", field="vkey")
    return v


@dataclass(frozen=True)
class NoteSigner:
    """The service's note signer: Ed25519 (type 0x01) over the note text."""

    name: str
    key: KeyPair = field(repr=False)

    @property
    def verifier(self) -> Verifier:
        return Verifier(self.name, ED25519, unb64(self.key.public_key, field="public_key", size=32))

    def sign(self, text: str) -> Signature:
        raw = unb64(self.key.sign(text.encode()), field="signature", size=64)
        return Signature(self.name, self.verifier.key_id, raw)


@dataclass(frozen=True)
class Cosigner:
    """A party's cosigner: timestamped Ed25519 ``cosignature/v1`` (type 0x04) over a checkpoint."""

    name: str
    key: KeyPair = field(repr=False)

    @property
    def verifier(self) -> Verifier:
        return Verifier(self.name, COSIGNATURE_V1, unb64(self.key.public_key, field="public_key", size=32))

    def cosign(self, text: str, timestamp: int) -> Signature:
        parse_checkpoint(text)
        if not 0 <= timestamp <= _MAX_TIMESTAMP:
            raise InvalidInput(f"timestamp: {timestamp} is not a POSIX time", field="timestamp")
        sig = unb64(self.key.sign(_cosigned_message(timestamp, text)), field="signature", size=64)
        return Signature(self.name, self.verifier.key_id, timestamp.to_bytes(8, "big") + sig)


@dataclass(frozen=True)
class Note:
    """A note's text (ending in a newline) and its signatures, in order."""

    text: str
    signatures: tuple[Signature, ...] = ()

    def format(self) -> str:
        return self.text + "\n" + "".join(s.line() for s in self.signatures)

    def signed(self, signature: Signature) -> Note:
        """This note with one more signature (a key signs a note once)."""
        if any((s.name, s.key_id) == (signature.name, signature.key_id) for s in self.signatures):
            raise InvalidInput(f"note: {signature.name} has already signed it", field="note")
        return replace(self, signatures=(*self.signatures, signature))


def _check_text(text: str, *, what: str) -> None:
    if not text.endswith("\n"):
        raise InvalidInput(f"{what}: the text must end with a newline", field="note")
    bad = next((c for c in text if c < " " and c != "\n"), None)
    if bad is not None:
        raise InvalidInput(f"{what}: control character {bad!r} is not allowed", field="note")


def parse_note(data: str | bytes) -> Note:
    """A signed note from its text: the text, a blank line, then one signature line or more."""
    if isinstance(data, bytes):
        try:
            data = data.decode("utf-8")
        except UnicodeDecodeError:
            raise InvalidInput("note: not UTF-8 text", field="note") from None
    _check_text(data, what="note")
    cut = data.rfind("\n\n")
    if cut < 0:
        raise InvalidInput("note: no blank line before the signatures", field="note")
    text, lines = data[: cut + 1], data[cut + 2 :].split("\n")[:-1]
    if not lines:
        raise InvalidInput("note: not signed (no signature lines after the blank line)", field="note")
    if len(lines) > MAX_SIGNATURES:
        raise InvalidInput(f"note: {len(lines)} signatures; at most {MAX_SIGNATURES}", field="note")
    note = Note(text)
    for n, line in enumerate(lines, 1):
        name, sep, sig64 = line.removeprefix(_DASH).partition(" ")
        if not line.startswith(_DASH) or not sep:
            raise InvalidInput(f"note: signature line {n} is not '— <name> <base64>'", field="note")
        _check_name(name, what=f"note: signature line {n}")
        raw = decode_b64(sig64, what=f"note: signature line {n}")
        if len(raw) < 5:
            raise InvalidInput(f"note: signature line {n} is too short to hold a key id and a signature")
        note = note.signed(Signature(name, int.from_bytes(raw[:4], "big"), raw[4:]))
    return note


def verify_note(note: Note, verifiers: Sequence[Verifier]) -> list[Verified]:
    """The signatures by known keys, all verified; unknown keys' are ignored.

    InvalidInput if a known key's signature fails (the whole note is refused) or no known key signed.
    """
    known = {(v.name, v.key_id): v for v in verifiers}
    done: list[Verified] = []
    for sig in note.signatures:
        v = known.get((sig.name, sig.key_id))
        if v is None:
            continue
        checked = v.check(note.text, sig.raw)
        if checked is None:
            raise InvalidInput(f"note: the signature by {sig.name} does not verify", field="note")
        done.append(checked)
    if not done:
        names = ", ".join(sorted({v.name for v in verifiers})) or "none given"
        raise InvalidInput(f"note: no signature by a known key ({names})", field="note")
    return done


@dataclass(frozen=True)
class Checkpoint:
    """A tree head: origin, size and RFC 6962 root (32 bytes), and optional extension lines."""

    origin: str
    size: int
    root: bytes
    extensions: tuple[str, ...] = ()

    def body(self) -> str:
        lines = (self.origin, str(self.size), b64(self.root), *self.extensions)
        text = "".join(f"{line}\n" for line in lines)
        if parse_checkpoint(text) != self:
            raise InvalidInput("checkpoint: these fields do not make a checkpoint", field="checkpoint")
        return text


def parse_checkpoint(text: str) -> Checkpoint:
    """A checkpoint from a note's text: at least three non-empty lines (origin, size, base64 root)."""
    _check_text(text, what="checkpoint")
    lines = text[:-1].split("\n")
    if len(lines) < 3:
        raise InvalidInput("checkpoint: expected origin, tree size and root hash lines", field="checkpoint")
    if any(not line for line in lines):
        raise InvalidInput("checkpoint: an empty line in the checkpoint text", field="checkpoint")
    if not re.fullmatch(r"0|[1-9][0-9]*", lines[1], flags=re.ASCII) or int(lines[1]) >= 1 << 64:
        raise InvalidInput(f"checkpoint: tree size {lines[1]!r} is not a decimal number", field="checkpoint")
    root = decode_b64(lines[2], what="checkpoint root hash")
    if len(root) != merkle.HASH_SIZE:
        raise InvalidInput(f"checkpoint: the root hash is {len(root)} bytes, not 32", field="checkpoint")
    return Checkpoint(lines[0], int(lines[1]), root, tuple(lines[3:]))


def open_checkpoint(data: str | bytes | Note, service: Verifier) -> tuple[Checkpoint, Note]:
    """A checkpoint note checked: parsed, and signed by the service's key."""
    note = data if isinstance(data, Note) else parse_note(data)
    verify_note(note, [service])
    cp = parse_checkpoint(note.text)
    if not any(s.name == service.name and s.key_id == service.key_id for s in note.signatures):
        raise InvalidInput("checkpoint: not signed by the service", field="checkpoint")
    return cp, note
