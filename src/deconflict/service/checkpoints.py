"""The record's Merkle tree on the service's side: checkpoint notes, proofs, and the parties' cosignatures.

At each checkpoint the service also signs a C2SP checkpoint note (:mod:`deconflict.record.note`) over
the RFC 6962 root of entries ``1..seq`` (leaf ``i`` is entry ``i + 1``'s chain hash). The tree is
kept per mechanism in this process as a :class:`~deconflict.record.merkle_cache.SubtreeCache`: the
roots of its complete subtrees of ``2^K`` entries and more (``K`` = :data:`SUBTREE_LEVEL`), about
250 kB at a million entries, built from the ledger's hashes on first use and extended with the
entries appended since. A root or a proof then costs ``O(log n)`` cached roots plus at most two
indexed reads of ``2^K`` hashes from the ledger (checked against the cached roots) and their hashing,
whatever the size. If the stored chain no longer extends the tree held (another process rewrote the
ledger), the tree is rebuilt from the ledger.

A party cosigns a note with its **record key** (the key it registered in the record, whose private
half only it holds), used as a ``cosignature/v1`` key under the name ``<origin>/<party>``: the type
byte and name give it a different key id from the same key's entry signatures, and the signed
messages differ (``cosignature/v1`` vs ``deconflict/entry/v1``), so one can never pass for the other.
A key the service holds for a party (demo custody) cannot cosign: a witness the operator controls
witnesses nothing.
"""

from __future__ import annotations

import weakref
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

from sqlalchemy import bindparam, select
from sqlalchemy.orm import Session

from deconflict.errors import Forbidden, InvalidInput, LedgerBroken, NotFound
from deconflict.record import merkle_cache, note, signing
from deconflict.record.chain import Head
from deconflict.record.merkle_cache import SubtreeCache, TreeView
from deconflict.service.context import Context
from deconflict.store import Store
from deconflict.store.schema import CheckpointRow, CosignatureRow, KeyRow, LedgerEntry

__all__ = [
    "add_cosignature",
    "consistency",
    "cosigned",
    "cosigned_note",
    "inclusion",
    "note_keys",
    "note_signer",
    "root_at",
    "sign_note",
]

_T = TypeVar("_T")

PARTY_CUSTODY = "party"
"""A key whose private half only its party holds (KeyRow.custody)."""


SUBTREE_LEVEL = merkle_cache.DEFAULT_LEVEL
"""``K`` of the trees made from now on: subtrees of ``2^K`` entries and more are cached (tests lower it)."""

_CHUNK = 1 << 16
"""Entries read from the ledger at a time when a tree is extended (bounds the memory of a rebuild)."""

_TREES: weakref.WeakKeyDictionary[Store, dict[str, SubtreeCache]] = weakref.WeakKeyDictionary()


_L = LedgerEntry.__table__
_RANGE = (_L.c.mechanism_id == bindparam("m"), _L.c.seq > bindparam("lo"), _L.c.seq <= bindparam("hi"))
_BLOCK = select(_L.c.hash).where(*_RANGE).order_by(_L.c.seq)
"""The hashes of entries ``lo + 1 .. hi`` (built once: every proof reads a block or two)."""
_SEQS = select(_L.c.seq).where(*_RANGE).order_by(_L.c.seq)
_PREV = select(_L.c.prev_hash).where(_L.c.mechanism_id == bindparam("m"), _L.c.seq == bindparam("seq"))


def _leaves_of(hashes: Sequence[str], lo: int, hi: int) -> list[bytes]:
    try:
        return [bytes.fromhex(h) for h in hashes]
    except ValueError:
        raise LedgerBroken(f"the stored entries {lo + 1} to {hi} hold a hash that is not hex") from None


def _extend(s: Session, mechanism_id: str, tree: SubtreeCache, upto: int) -> bool:
    """Extend ``tree`` with entries up to ``upto``, a chunk at a time; False if the stored chain does not
    extend it (the entry after the tree's last does not link to it)."""
    while tree.size < upto:
        lo, hi = tree.size, min(upto, tree.size + _CHUNK)
        if lo:
            prev = s.scalar(_PREV, {"m": mechanism_id, "seq": lo + 1})
            if prev is not None and prev != tree.last.hex():
                return False
        hashes = s.scalars(_BLOCK, {"m": mechanism_id, "lo": lo, "hi": hi}).all()
        if len(hashes) != hi - lo:
            seqs = s.scalars(_SEQS, {"m": mechanism_id, "lo": lo, "hi": hi}).all()
            missing = next((lo + 1 + k for k, seq in enumerate(seqs) if seq != lo + 1 + k), lo + 1 + len(seqs))
            raise InvalidInput(f"the record of {mechanism_id} has no entry {missing}", field="seq")
        tree.extend(_leaves_of(hashes, lo, hi))
    return True


def _tree(ctx: Context, s: Session, mechanism_id: str, head: Head) -> SubtreeCache:
    """The tree of entries ``1..head.seq``, extended (or rebuilt) from the ledger as needed. Under the lock."""
    trees = _TREES.setdefault(ctx.store, {})
    tree = trees.get(mechanism_id)
    for fresh in (False, True):
        if tree is None or fresh or tree.size > head.seq:
            tree = trees[mechanism_id] = SubtreeCache(SUBTREE_LEVEL)
        if not _extend(s, mechanism_id, tree, head.seq):
            continue  # the stored chain changed under us: start again
        if head.seq == 0 or tree.last.hex() == head.hash:
            return tree
    trees.pop(mechanism_id, None)
    raise LedgerBroken(f"the record of {mechanism_id} does not end with entry {head.seq} {head.hash[:16]}…")


def _head(s: Session, mechanism_id: str) -> Head:
    t = LedgerEntry.__table__
    row = s.execute(
        select(t.c.seq, t.c.hash).where(t.c.mechanism_id == mechanism_id).order_by(t.c.seq.desc()).limit(1)
    ).first()
    if row is None:
        raise NotFound(f"mechanism {mechanism_id!r} has no record", field="mechanism")
    return Head(int(row[0]), str(row[1]))


def root_at(ctx: Context, s: Session, mechanism_id: str, head: Head) -> bytes:
    """The RFC 6962 root of entries ``1..head.seq`` (the tree extended to ``head`` first)."""
    tree = _tree(ctx, s, mechanism_id, head)
    return tree.view(_reader(s, mechanism_id)).root(head.seq)


def note_signer(ctx: Context, mechanism_id: str) -> note.NoteSigner:
    """The service's note signer for a mechanism: its own key, under the name ``note.origin(mechanism)``."""
    return note.NoteSigner(note.origin(mechanism_id), ctx.signers.service_key)


def sign_note(ctx: Context, s: Session, mechanism_id: str, head: Head) -> str:
    """The checkpoint note of entries ``1..head.seq``, signed by the service (its text with one signature)."""
    body = note.Checkpoint(note.origin(mechanism_id), head.seq, root_at(ctx, s, mechanism_id, head)).body()
    text = note.Note(body)
    return text.signed(note_signer(ctx, mechanism_id).sign(body)).format()


def _reader(s: Session, mechanism_id: str) -> merkle_cache.LeafReader:
    """Leaves ``lo .. hi - 1`` read from the ledger in session ``s`` (entries ``lo + 1 .. hi``, by the
    primary key); the view checks them against its cached roots."""

    def read(lo: int, hi: int) -> list[bytes]:
        return _leaves_of(s.scalars(_BLOCK, {"m": mechanism_id, "lo": lo, "hi": hi}).all(), lo, hi)

    return read


def _proved(ctx: Context, mechanism_id: str, work: Callable[[TreeView], _T]) -> _T:
    """``work`` over a snapshot of the tree at the head now, taken under the lock and used without it.

    The snapshot and the blocks it reads back come from one read session, begun under the lock, so
    they see the same ledger. A block that no longer matches the cached roots (another process
    rewrote the ledger since the tree was built) drops the tree; it is rebuilt once and the work done
    again.
    """
    ctx.pictures.get(mechanism_id)
    error: LedgerBroken | None = None
    for _ in range(2):
        with ctx.store.read() as s:
            with ctx.lock:
                tree = _tree(ctx, s, mechanism_id, _head(s, mechanism_id))
                view = tree.view(_reader(s, mechanism_id))
            try:
                return work(view)
            except LedgerBroken as broken:
                error = broken
        with ctx.lock:  # the session is closed first: never wait for the lock while holding a connection
            trees = _TREES.get(ctx.store, {})
            if trees.get(mechanism_id) is tree:
                del trees[mechanism_id]
    assert error is not None
    raise error


def _check_sizes(first: int, second: int, head: int, *, names: tuple[str, str]) -> None:
    if not 1 <= second <= head:
        raise InvalidInput(f"{names[1]}: the record has entries 1 to {head}, not {second}", field=names[1])
    if not 1 <= first <= second:
        raise InvalidInput(f"{names[0]}: expected 1 to {second}, not {first}", field=names[0])


def consistency(ctx: Context, mechanism_id: str, first: int, second: int) -> dict[str, Any]:
    """RFC 9162 consistency proof from the tree of ``first`` entries to the tree of ``second``.

    ``from_root`` and ``to_root`` are the service's roots at both sizes, for convenience: a party checks
    the proof against the root it cosigned, never against ``from_root``.
    """

    def work(tree: TreeView) -> dict[str, Any]:
        _check_sizes(first, second, tree.size, names=("from", "to"))
        proof = tree.consistency_proof(first, second)
        return {
            "from": first,
            "to": second,
            "from_root": signing.b64(tree.root(first)),
            "to_root": signing.b64(tree.root(second)),
            "proof": [signing.b64(h) for h in proof],
        }

    return _proved(ctx, mechanism_id, work)


def inclusion(ctx: Context, mechanism_id: str, seq: int, size: int) -> dict[str, Any]:
    """RFC 9162 inclusion proof of entry ``seq`` (leaf ``seq - 1``) in the tree of ``size`` entries."""

    def work(tree: TreeView) -> dict[str, Any]:
        _check_sizes(seq, size, tree.size, names=("seq", "size"))
        proof = tree.inclusion_proof(seq - 1, size)
        return {
            "seq": seq,
            "size": size,
            "hash": tree.leaf(seq - 1).hex(),
            "root": signing.b64(tree.root(size)),
            "proof": [signing.b64(h) for h in proof],
        }

    return _proved(ctx, mechanism_id, work)


def _party_verifiers(s: Session, mechanism_id: str, party: str) -> dict[int, tuple[KeyRow, note.Verifier]]:
    """The party's keys in force that only it holds, as cosigner verifiers, by note key id."""
    rows = s.scalars(
        select(KeyRow).where(
            KeyRow.mechanism_id == mechanism_id,
            KeyRow.owner == party,
            KeyRow.revoked_seq.is_(None),
            KeyRow.custody == PARTY_CUSTODY,
        )
    )
    name = note.cosigner_name(mechanism_id, party)
    out = {}
    for row in rows:
        raw = signing.unb64(row.public_key, field="public_key", size=32)
        v = note.Verifier(name, note.COSIGNATURE_V1, raw)
        out[v.key_id] = (row, v)
    return out


def note_keys(ctx: Context, mechanism_id: str) -> dict[str, Any]:
    """The verifier keys (C2SP vkeys) of the service's checkpoint notes and of each party's cosignatures."""
    ctx.pictures.get(mechanism_id)
    parties = sorted({m.party for m in ctx.pictures.get(mechanism_id).mechanism.members})
    with ctx.store.read() as s:
        cosigners = [
            {"party": party, "key_id": row.key_id, "vkey": v.vkey()}
            for party in parties
            for row, v in _party_verifiers(s, mechanism_id, party).values()
        ]
    return {
        "origin": note.origin(mechanism_id),
        "service": note_signer(ctx, mechanism_id).verifier.vkey(),
        "cosigners": cosigners,
    }


def cosigned_note(s: Session, row: CheckpointRow) -> str | None:
    """A checkpoint's note with every cosignature received so far under the service's signature."""
    return cosigned(s, row)[0]


def cosigned(s: Session, row: CheckpointRow) -> tuple[str | None, list[str]]:
    """A checkpoint's note with every cosignature received so far under the service's signature, and the
    parties whose cosignatures those are, in order: read in one statement, so that the parties named are the
    lines in the note (two reads could see a cosignature committed between them: named, and not in the note)."""
    if row.note is None:  # no note, nothing to cosign
        return None, []
    found = s.execute(
        select(CosignatureRow.party, CosignatureRow.line)
        .where(CosignatureRow.mechanism_id == row.mechanism_id, CosignatureRow.seq == row.seq)
        .order_by(CosignatureRow.party)
    ).all()
    return row.note + "".join(f"{line}\n" for _, line in found), [party for party, _ in found]


def add_cosignature(ctx: Context, mechanism_id: str, seq: int, party: str, line: str) -> dict[str, Any]:
    """Keep ``party``'s cosignature of checkpoint ``seq`` after checking it with the party's registered key.

    Raises:
        NotFound: no such checkpoint, or it has no note (signed before notes existed).
        InvalidInput: the line is not a signature line, names another cosigner, or does not verify.
        Forbidden: the key is not one of the party's keys in force held by the party alone.
    """
    ctx.pictures.get(mechanism_id)
    text = line.strip("\n")
    if "\n" in text or not text:
        raise InvalidInput("cosignature: expected one signature line '— <name> <base64>'", field="cosignature")
    with ctx.lock, ctx.store.transaction() as s:
        row = s.get(CheckpointRow, (mechanism_id, seq))
        if row is None or row.note is None:
            what = "no checkpoint" if row is None else "no checkpoint note (signed before notes existed)"
            raise NotFound(f"checkpoint {seq}: the service has {what} of entry {seq}", field="seq")
        signed = note.parse_note(row.note + text + "\n")
        sig = signed.signatures[-1]
        name = note.cosigner_name(mechanism_id, party)
        if sig.name != name:
            raise InvalidInput(f"cosignature: {party} cosigns as {name}, not {sig.name}", field="cosignature")
        found = _party_verifiers(s, mechanism_id, party).get(sig.key_id)
        if found is None:
            raise Forbidden(
                f"cosignature: key id {sig.key_id:08x} is not a key in force that {party} alone holds "
                "(a party cosigns with its own record key)"
            )
        key_row, verifier = found
        if verifier.check(signed.text, sig.raw) is None:
            raise InvalidInput(f"cosignature: does not verify with {party}'s key {key_row.key_id}", field="cosignature")
        kept = s.get(CosignatureRow, (mechanism_id, seq, party))
        if kept is None:
            s.add(
                CosignatureRow(
                    mechanism_id=mechanism_id,
                    seq=seq,
                    party=party,
                    key_id=key_row.key_id,
                    line=sig.line().rstrip("\n"),
                    received_at=ctx.clock(),
                )
            )
        s.flush()
        cosigned = cosigned_note(s, row)
    return {"seq": seq, "party": party, "key_id": key_row.key_id, "kept": kept is None, "note": cosigned}
