"""A bundle's checkpoint notes held against its entries, who cosigned up to where, and forks between two copies.

The verifier roots the entries as it streams them (:class:`Rooting`, a Merkle compact range fed
each entry's chain hash: one leaf hash and about one node hash an entry), then :func:`check_notes`
holds every checkpoint note to it: the service's signature with the key entry 1 declares, the root
at the note's size, and each cosignature with the key the cosigning party registered in the record
(under its cosigner name ``note.cosigner_name(mechanism, party)``). A note whose root is not the
entries' is a named failure with the note kept as evidence.

:func:`compare` puts two copies side by side (bundles, note files or folders of notes, such as a
mirror's ``cosigned/``) and, when the service signed two checkpoints that cannot both be true,
returns a fork proof (:func:`~deconflict.record.witness.fork_proof_text`) checkable with the
service's key alone.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any

from deconflict.clock import iso
from deconflict.errors import InvalidInput
from deconflict.record import merkle, note, witness
from deconflict.record.chain import SERVICE, ChainReport
from deconflict.record.signing import PARTY_CUSTODY, b64, unb64
from deconflict.record.verify import KeyRing

__all__ = [
    "Comparison",
    "Copy",
    "Only",
    "ReadNote",
    "Rooting",
    "check_notes",
    "find_fork",
    "merkle_text",
    "open_notes",
    "read_note",
    "service_verifier",
]

ReadNote = tuple[int, note.Note | None, note.Checkpoint | None, str | None]
"""(the checkpoint's seq, its note, the note's checkpoint, or the problem reading them)."""


class Rooting(dict[int, str]):
    """The verifier's ``hashes`` map that also grows the Merkle tree of the entries.

    The verifier stores an entry's chain hash for every sequence number this map holds (``in``), in
    order, once the entry has verified; this map says it holds them all, keeps only the hashes asked
    for (``wanted``), feeds every one to a compact range and keeps the root at each size in ``sizes``.
    """

    def __init__(self, wanted: Iterable[int], sizes: Iterable[int]) -> None:
        super().__init__(dict.fromkeys(wanted, ""))
        self.tree = merkle.CompactRange()
        self.sizes = frozenset(sizes)
        self.roots: dict[int, bytes] = {}

    def __contains__(self, seq: object) -> bool:
        return True

    def __setitem__(self, seq: int, digest: str) -> None:
        self.tree.append(bytes.fromhex(digest))
        if seq in self.sizes:
            self.roots[seq] = self.tree.root()
        if dict.__contains__(self, seq):
            super().__setitem__(seq, digest)


class Only(dict[int, datetime]):
    """A ``times`` map that keeps only the sequence numbers asked for (the verifier offers it every entry)."""

    def __init__(self, wanted: Iterable[int]) -> None:
        super().__init__()
        self.wanted = frozenset(wanted)

    def __setitem__(self, seq: int, at: datetime) -> None:
        if seq in self.wanted:
            super().__setitem__(seq, at)


def read_note(cp: dict[str, Any]) -> ReadNote:
    """A checkpoint's note parsed (not yet verified), or the problem with it."""
    seq, text = int(cp["seq"]), cp.get("note")
    if not isinstance(text, str):
        return seq, None, None, f"the checkpoint of entry {seq} has a note that is not text"
    try:
        signed = note.parse_note(text)
        return seq, signed, note.parse_checkpoint(signed.text), None
    except InvalidInput as e:
        return seq, None, None, f"the checkpoint note of entry {seq} is not a signed checkpoint note ({e})"


def service_verifier(mechanism: str, ring: KeyRing) -> note.Verifier | None:
    """The service's note verifier: the key entry 1 declares, under the name ``note.origin(mechanism)``."""
    for key in ring.keys.values():
        if key["owner"] == SERVICE and key["registered_seq"] == 1:
            raw = unb64(key["public_key"], field="public_key", size=32)
            return note.Verifier(note.origin(mechanism), note.ED25519, raw)
    return None


def _cosigners(mechanism: str, ring: KeyRing) -> tuple[dict[str, str], dict[tuple[str, int], dict[str, Any]]]:
    """(cosigner name → party, (name, note key id) → the party's key in the record) for every party key."""
    names: dict[str, str] = {}
    keys: dict[tuple[str, int], dict[str, Any]] = {}
    for key in ring.keys.values():
        if key["owner"] == SERVICE:
            continue
        try:
            name = note.cosigner_name(mechanism, key["owner"])
            raw = unb64(key["public_key"], field="public_key", size=32)
        except InvalidInput:
            continue
        names[name] = key["owner"]
        keys[(name, note.key_id(name, note.COSIGNATURE_V1, raw))] = {**key, "raw": raw}
    return names, keys


def _fail(report: ChainReport, problem: str, evidence: str | None = None) -> ChainReport:
    return replace(report, ok=False, first_bad_seq=None, problem=problem, evidence=evidence)


def check_notes(
    mechanism: str, notes: Sequence[ReadNote], roots: dict[int, bytes], ring: KeyRing, report: ChainReport
) -> ChainReport:
    """Hold each checkpoint note to the verified entries (``roots``: the Merkle root at each note's size).

    A note must be the service's (signed with entry 1's key), of the mechanism's origin, of its
    checkpoint's size, and over the entries' root there; each cosignature under a party's cosigner
    name must verify with a key that party registered. The report says how far each party cosigned: only
    with a key the party alone holds, and not revoked by the entries the note covers.
    """
    service = service_verifier(mechanism, ring)
    names, keys = _cosigners(mechanism, ring)
    reach: dict[str, tuple[int, int]] = {}
    good = 0
    for seq, signed, cp, problem in sorted(notes, key=lambda n: n[0]):
        if problem is not None or signed is None or cp is None:
            return _fail(report, problem or f"the checkpoint note of entry {seq} is unreadable")
        where = f"the checkpoint note of entry {seq}"
        if service is None:
            return _fail(report, f"{where}: the record declares no service key in entry 1 to check it with")
        mine = [s for s in signed.signatures if (s.name, s.key_id) == (service.name, service.key_id)]
        if not mine or service.check(signed.text, mine[0].raw) is None:
            said = "is not signed by" if not mine else "does not verify with"
            return _fail(
                report,
                f"{where} {said} the service's key declared in entry 1 (the note was edited or signed by another key)",
                signed.format(),
            )
        if cp.origin != service.name or cp.size != seq:
            return _fail(
                report,
                f"{where} is of {cp.origin} size {cp.size}, not {service.name} size {seq}",
                signed.format(),
            )
        root = roots.get(cp.size)
        if root != cp.root:
            got = "" if root is None else f", but entries 1..{cp.size} give {merkle_text(root)}"
            return _fail(
                report,
                f"the service signed a checkpoint note of size {cp.size} with root {merkle_text(cp.root)}{got}: "
                "the note and the entries disagree (the service signed another history; the note is evidence)",
                signed.format(),
            )
        for sig in signed.signatures:
            party = names.get(sig.name)
            if party is None or sig is mine[0]:
                continue  # a signature by a name the record does not know is ignored (signed-note rule)
            key = keys.get((sig.name, sig.key_id))
            if key is None:
                return _fail(
                    report,
                    f"{where}: {party}'s cosignature is by note key id {sig.key_id:08x}, which is not a key {party} "
                    "registered in the record",
                    signed.format(),
                )
            checked = note.Verifier(sig.name, note.COSIGNATURE_V1, key["raw"]).check(signed.text, sig.raw)
            if checked is None or checked.timestamp is None:
                return _fail(
                    report,
                    f"{where}: {party}'s cosignature does not verify with {party}'s key {key['key_id']} "
                    "(the note or the cosignature was changed)",
                    signed.format(),
                )
            if key["custody"] != PARTY_CUSTODY:
                continue  # a key the service holds witnesses nothing against it
            if key["revoked_seq"] is not None and cp.size >= key["revoked_seq"]:
                continue  # the note covers the key's revocation: whoever cosigned with it, the party did not
            if party not in reach or reach[party][0] < cp.size:
                reach[party] = (cp.size, checked.timestamp)
        good += 1
    parties = sorted(set(names.values()))
    cosigned = tuple(
        {"party": p, "size": reach[p][0], "at": iso(datetime.fromtimestamp(reach[p][1], UTC))}
        if p in reach
        else {"party": p, "size": None, "at": None}
        for p in parties
    )
    return replace(report, cosigned=cosigned, notes=good)


def merkle_text(root: bytes) -> str:
    """A root as the note writes it (base64), shortened for a sentence."""
    return b64(root)[:12] + "…"


@dataclass(frozen=True)
class Copy:
    """One side of a comparison: the service-signed checkpoint notes it holds and, for a bundle, the
    leaves of its entries (so the larger tree's root at a smaller size and a consistency proof can be given)."""

    name: str
    notes: tuple[tuple[note.Checkpoint, note.Note], ...]
    leaves: tuple[bytes, ...] = ()


@dataclass(frozen=True)
class Comparison:
    """What two copies show: ``proof`` (fork proof text, checked) and a sentence, or no fork."""

    fork: bool
    sentence: str
    proof: str | None = None


def find_fork(a: Copy, b: Copy, service: note.Verifier) -> Comparison:
    """The first pair of service-signed checkpoints in ``a`` and ``b`` that cannot both be true, as a checked
    fork proof: one size with two roots, or a larger tree (held with its entries) that begins otherwise."""
    for (ca, na), (cb, nb) in ((x, y) for x in a.notes for y in b.notes):
        if ca.size == cb.size and ca.root != cb.root:
            return _proven(witness.fork_proof_text(na, nb), service)
    for small_side, large_side in ((a, b), (b, a)):
        leaves = large_side.leaves
        for cl, nl in large_side.notes:
            if cl.size > len(leaves) or merkle.root(leaves[: cl.size]) != cl.root:
                continue  # the entries held are not this note's tree: they cannot speak for it
            for cs, ns in small_side.notes:
                if cs.size >= cl.size:
                    continue
                prefix = merkle.root(leaves[: cs.size])
                if prefix != cs.root:
                    proof = merkle.consistency_proof(leaves, cs.size, cl.size)
                    return _proven(witness.fork_proof_text(ns, nl, prefix_root=prefix, proof=proof), service)
    sizes = f"{len(a.notes)} and {len(b.notes)} signed checkpoints"
    return Comparison(
        False,
        f"{a.name} and {b.name}: no fork between their {sizes}, no two that cannot both be true (their entries "
        "were not verified here: 'deconflict ledger verify' each)",
    )


def _proven(text: str, service: note.Verifier) -> Comparison:
    finding = witness.verify_fork_proof(text, service)  # the proof is checked before it is shown
    return Comparison(True, f"FORK: {finding.sentence}", text)


def open_notes(
    texts: Iterable[str], service: note.Verifier, *, where: str
) -> tuple[tuple[note.Checkpoint, note.Note], ...]:
    """Checkpoint notes checked against the service's key (one that fails is named, not skipped)."""
    out = []
    for n, text in enumerate(texts, 1):
        try:
            cp, signed = note.open_checkpoint(text, service)
        except InvalidInput as e:
            raise InvalidInput(f"{where}: note {n} is not a checkpoint the service signed ({e})") from None
        if cp.origin != service.name:
            raise InvalidInput(f"{where}: note {n} is a checkpoint of {cp.origin}, not {service.name}")
        out.append((cp, signed))
    return tuple(out)
