"""A party's witness of the service's checkpoints, and fork proofs anyone can check with the service's key.

:class:`Witness` cosigns a service checkpoint only when a consistency proof shows it extends the
one it cosigned last; otherwise it raises :class:`Fork` (two checkpoints that cannot both be true)
or :class:`OlderCheckpoint`. :func:`fork_proof_text` puts two conflicting service-signed
checkpoints side by side; :func:`verify_fork_proof` checks such a proof with only the service's vkey.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from deconflict.errors import InvalidInput
from deconflict.record import merkle
from deconflict.record.note import (
    Checkpoint,
    Cosigner,
    Note,
    Signature,
    Verifier,
    decode_b64,
    open_checkpoint,
    parse_checkpoint,
)
from deconflict.record.signing import b64

__all__ = ["Fork", "ForkFinding", "OlderCheckpoint", "Witness", "fork_proof_text", "verify_fork_proof"]


class OlderCheckpoint(InvalidInput):
    """A checkpoint smaller than the one the witness last cosigned: refused, not cosigned."""


class Fork(InvalidInput):
    """The service signed two checkpoints that cannot both be true; ``text`` shows both."""

    def __init__(self, message: str, *, a: Note, b: Note, proof: Sequence[bytes] = ()) -> None:
        super().__init__(message, field="checkpoint")
        self.a, self.b, self.proof = a, b, tuple(proof)

    @property
    def text(self) -> str:
        return fork_proof_text(self.a, self.b)


@dataclass
class Witness:
    """A party's cosigner, keeping the last checkpoint it cosigned (a note with the service's signature)."""

    service: Verifier
    cosigner: Cosigner
    last: Note | None = None

    @property
    def checkpoint(self) -> Checkpoint | None:
        return None if self.last is None else parse_checkpoint(self.last.text)

    def cosign(self, data: str | bytes | Note, proof: Sequence[bytes], now: datetime) -> Signature:
        """Cosign a service checkpoint that extends the last one (consistency ``proof`` from it); else raise."""
        if now.tzinfo is None:
            raise InvalidInput("now: a time must be timezone-aware", field="now")
        new, note = open_checkpoint(data, self.service)
        if new.origin != self.service.name:
            raise InvalidInput(f"checkpoint: origin {new.origin!r} is not {self.service.name!r}", field="checkpoint")
        old = self.checkpoint
        if old is not None and self.last is not None:
            if new.size < old.size:
                raise OlderCheckpoint(f"checkpoint: size {new.size} is older than the {old.size} already cosigned")
            if new.size == old.size and new.root != old.root:
                raise Fork(f"fork: two roots for size {new.size}", a=self.last, b=note)
            if new.size > old.size:
                try:
                    merkle.verify_consistency(old.size, new.size, old.root, new.root, proof)
                except merkle.BadProof as e:
                    msg = f"fork or bad proof: size {new.size} is not shown to extend size {old.size} ({e})"
                    raise Fork(msg, a=self.last, b=note, proof=proof) from None
        elif proof:
            raise InvalidInput("proof: nothing was cosigned before, so the proof must be empty", field="proof")
        mine = self.cosigner.cosign(note.text, int(now.timestamp()))
        kept = Note(note.text, tuple(s for s in note.signatures if s.name == self.service.name))
        self.last = kept.signed(mine)
        return mine


_HEAD = "deconflict fork proof v1"


def fork_proof_text(a: Note, b: Note, *, prefix_root: bytes | None = None, proof: Sequence[bytes] = ()) -> str:
    """Two signed checkpoints side by side, as text anyone can check with :func:`verify_fork_proof`.

    For different sizes add the larger tree's root at the smaller size (``prefix_root``) and the
    consistency proof from it, computed from the larger tree's entries by whoever holds them.
    """
    ca, cb = parse_checkpoint(a.text), parse_checkpoint(b.text)
    if ca.size == cb.size:
        why = f"one size ({ca.size}), two roots"
    else:
        why = f"sizes {ca.size} and {cb.size}: the larger tree does not begin with the smaller"
    out = [f"{_HEAD}\n{ca.origin}: {why}\n\n-- checkpoint A\n", a.format(), "-- checkpoint B\n", b.format()]
    if prefix_root is not None:
        out += ["-- prefix\n", f"{b64(prefix_root)}\n", *(f"{b64(h)}\n" for h in proof)]
    out.append("-- end\n")
    return "".join(out)


@dataclass(frozen=True)
class ForkFinding:
    """What a fork proof shows: the origin, the two checkpoints, and a sentence."""

    origin: str
    a: Checkpoint
    b: Checkpoint
    sentence: str


def verify_fork_proof(text: str, service: Verifier) -> ForkFinding:
    """Check a fork proof with only the service's verifier key; InvalidInput unless it proves a fork."""
    m = re.fullmatch(
        rf"{_HEAD}\n[^\n]*\n\n-- checkpoint A\n(.*?)-- checkpoint B\n(.*?)(?:-- prefix\n(.*?))?-- end\n",
        text,
        flags=re.DOTALL,
    )
    if m is None:
        raise InvalidInput("fork proof: not in the fork proof format", field="proof")
    (ca, _), (cb, _) = open_checkpoint(m[1], service), open_checkpoint(m[2], service)
    if ca.origin != cb.origin:
        raise InvalidInput(f"fork proof: two logs ({ca.origin}, {cb.origin}), not a fork", field="proof")
    if ca.size == cb.size:
        if ca.root == cb.root:
            raise InvalidInput("fork proof: the same checkpoint twice, not a fork", field="proof")
        return ForkFinding(ca.origin, ca, cb, f"{ca.origin}: the service signed two roots for size {ca.size}")
    small, large = sorted((ca, cb), key=lambda c: c.size)
    if m[3] is None:
        raise InvalidInput(
            f"fork proof: sizes {small.size} and {large.size} prove a fork only with the larger tree's root "
            f"at {small.size} and a consistency proof from it",
            field="proof",
        )
    hashes = [decode_b64(line, what="fork proof: prefix") for line in m[3].split("\n")[:-1]]
    if not hashes:
        raise InvalidInput("fork proof: the prefix section is empty", field="proof")
    try:
        merkle.verify_consistency(small.size, large.size, hashes[0], large.root, hashes[1:])
    except merkle.BadProof as e:
        raise InvalidInput(f"fork proof: the prefix evidence does not verify ({e})", field="proof") from None
    if hashes[0] == small.root:
        raise InvalidInput("fork proof: the checkpoints are consistent, not a fork", field="proof")
    return ForkFinding(
        small.origin,
        ca,
        cb,
        f"{small.origin}: the tree of {large.size} begins with a different tree of {small.size} than the one signed",
    )
