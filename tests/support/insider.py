"""An insider holding every key, as the record's tests play one: read a bundle, edit entries, re-hash,
re-chain and re-sign them with the demo's keys (the service holds every key in the demo), and sign a
fresh checkpoint, so that only the rules the verifier holds the record to can catch the edit.
"""

from __future__ import annotations

import copy
import json
import sqlite3
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

from deconflict.clock import iso, parse_utc
from deconflict.record import chain, signing

__all__ = [
    "Bundle",
    "Demo",
    "Docs",
    "demo_bundle",
    "demo_keys",
    "entry",
    "first",
    "forge",
    "fork",
    "key_of",
    "read",
    "reseal",
    "verify",
    "write",
]

Bundle = tuple[dict[str, Any], list[dict[str, Any]]]
"""A bundle's header and its entry documents."""


def demo_keys(db: Path) -> dict[str, signing.KeyPair]:
    """Every key the demo's service holds, by key id (its own and the parties')."""
    con = sqlite3.connect(db)
    try:
        rows = con.execute("select seed from custody_keys").fetchall()
    finally:
        con.close()
    pairs = [signing.KeyPair.from_seed(signing.unb64(seed, field="seed", size=32)) for (seed,) in rows]
    return {p.key_id: p for p in pairs}


def read(path: Path) -> Bundle:
    lines = path.read_text(encoding="utf-8").splitlines()
    return json.loads(lines[0]), [json.loads(line) for line in lines[1:] if line.strip()]


def write(path: Path, bundle: Bundle) -> Path:
    header, docs = bundle
    text = json.dumps(header, ensure_ascii=False) + "\n"
    text += "".join(json.dumps(d, ensure_ascii=False, sort_keys=True) + "\n" for d in docs)
    path.write_text(text, encoding="utf-8")
    return path


def reseal(
    bundle: Bundle,
    keys: dict[str, signing.KeyPair],
    *,
    signer: Callable[[dict[str, Any]], str] | None = None,
    at: datetime | None = None,
) -> Bundle:
    """Re-hash, re-chain and re-sign every entry (each with the key that signed it, or ``signer(doc)``'s key
    id), make the header agree and replace the checkpoints with one of the head, signed by the service
    at ``at`` (default: the last entry's time). Withheld entries keep their payload hash."""
    header, docs = bundle
    prev = chain.GENESIS_HASH
    service = next(k for k in keys.values() if _owner(header, docs, k.key_id) == chain.SERVICE)
    for seq, doc in enumerate(docs, start=1):
        doc["seq"], doc["prev_hash"] = seq, prev
        if "payload" in doc:
            doc["payload_hash"] = chain.sha256_hex(chain.canonical(doc["payload"]))
        doc["hash"] = chain.entry_hash(
            mechanism=header["mechanism"],
            seq=seq,
            at=parse_utc(doc["at"], field="at"),
            actor=doc["actor"],
            type=doc["type"],
            payload_hash=doc["payload_hash"],
            prev_hash=prev,
        )
        key = keys[signer(doc) if signer else doc["key_id"]]
        doc["key_id"], doc["signature"] = key.key_id, key.sign_entry(doc["hash"])
        prev = doc["hash"]
    when = iso(at or parse_utc(docs[-1]["at"], field="at")) if docs else header["exported_at"]
    message = signing.checkpoint_message(mechanism=header["mechanism"], seq=len(docs), hash=prev, at=when)
    header.update(entries=len(docs), head_seq=len(docs), head_hash=prev)
    header["checkpoints"] = (
        [
            chain.checkpoint_doc(
                mechanism=header["mechanism"],
                seq=len(docs),
                hash=prev,
                at=parse_utc(when, field="at"),
                key_id=service.key_id,
                signature=service.sign(message),
            )
        ]
        if docs
        else []
    )
    return header, docs


def _owner(header: dict[str, Any], docs: list[dict[str, Any]], key_id: str) -> str | None:
    for k in header["keys"]:
        if k["key_id"] == key_id:
            return str(k["owner"])
    return None


def key_of(keys: dict[str, signing.KeyPair], header: dict[str, Any], owner: str) -> signing.KeyPair:
    """The held key of ``owner`` ('service' or a party)."""
    for k in header["keys"]:
        if k["owner"] == owner and k["key_id"] in keys:
            return keys[k["key_id"]]
    raise KeyError(owner)


def fork(db: str, mechanism: str, *, from_seq: int, entries: int, prefix: str = "X") -> None:
    """The operator, holding the service's key, rewrites ``mechanism``'s record in the database ``db``
    from entry ``from_seq`` on: the checkpoints (and cosignatures) that covered it go, and ``entries``
    other entries (observers ``<prefix>0``, ``<prefix>1`` … added), validly signed by the service, take
    its place."""
    from sqlalchemy import delete, select

    from deconflict.store import ledger, open_store
    from deconflict.store.schema import CheckpointRow, CosignatureRow, CustodyKeyRow, LedgerEntry

    store = open_store(db)
    with store.transaction() as s:
        row = s.get(CustodyKeyRow, chain.SERVICE)
        assert row is not None
        key = signing.KeyPair.from_seed(signing.unb64(row.seed, field="seed", size=32))
        s.execute(delete(CosignatureRow).where(CosignatureRow.seq >= from_seq))
        s.execute(delete(CheckpointRow).where(CheckpointRow.seq >= from_seq))
        s.execute(delete(LedgerEntry).where(LedgerEntry.seq >= from_seq))
        head = ledger.read_head(s, mechanism)
        at = max(e.at for e in s.scalars(select(LedgerEntry).where(LedgerEntry.mechanism_id == mechanism)))
        for n in range(entries):
            member = {"id": f"{prefix}{n}", "party": f"{prefix}{n}", "role": "observer", "name": "never there"}
            head = ledger.append(
                s,
                mechanism=mechanism,
                actor="operator",
                type=chain.EntryType.MEMBER_ADDED,
                payload=member,
                at=at,
                sign=lambda r: (key.key_id, key.sign_entry(r["hash"])),
                after=head,
            )
    store.close()


# --- the record tests' insider, played against the scripted demo's export -------------------------------------

Demo = tuple[Path, Bundle, dict[str, signing.KeyPair]]
"""The demo's exported bundle file, its re-sealed bundle (checkpoints re-dated at its last entry), every key."""
Docs = list[dict[str, Any]]
Edit = Callable[[dict[str, Any], Docs, Callable[[str], str]], None]
"""An insider's edit of a bundle: (header, entries, key id of an owner) -> None, in place."""


def demo_bundle(folder: Path) -> Demo:
    """Run the scripted demo into ``folder``, export its record, and re-seal it with every key it holds."""
    from typer.testing import CliRunner

    from deconflict.cli import app

    db = folder / "demo.db"
    run = CliRunner().invoke
    assert run(app, ["demo", "--script", "--db", str(db)]).exit_code == 0
    out = db.with_name("record.jsonl")
    assert run(app, ["ledger", "export", "--db", str(db), "--out", str(out)]).exit_code == 0
    keys = demo_keys(db)
    return out, reseal(read(out), keys), keys


def verify(folder: Path, bundle: Bundle, *extra: str) -> tuple[int, str]:
    """``deconflict ledger verify`` of ``bundle`` written in ``folder``: (exit status, what it printed)."""
    from typer.testing import CliRunner

    from deconflict.cli import app

    path = write(folder / "edited.jsonl", bundle)
    result = CliRunner().invoke(app, ["ledger", "verify", str(path), *extra])
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    return result.exit_code, result.output


def first(docs: Docs, type: str, **payload: Any) -> int:
    """Index of the first entry of ``type`` whose payload has these values."""
    for i, d in enumerate(docs):
        if d["type"] == type and all(d.get("payload", {}).get(k) == v for k, v in payload.items()):
            return i
    raise AssertionError(f"no {type} {payload}")


def forge(demo: Demo, edit: Edit, keys: dict[str, signing.KeyPair] | None = None) -> Bundle:
    """A copy of the demo's record edited by ``edit`` and re-sealed (with ``keys``, default the demo's)."""
    _, bundle, held = demo
    keys = keys or held
    header, docs = copy.deepcopy(bundle)
    edit(header, docs, lambda owner: key_of(keys, header, owner).key_id)
    return reseal((header, docs), keys)


def entry(actor: str, type: str, payload: dict[str, Any], at: str, key_id: str) -> dict[str, Any]:
    """A new entry of the demo's mechanism, to be chained and signed by :func:`reseal`."""
    return {"mechanism": "tr-il-syria", "actor": actor, "type": type, "payload": payload, "at": at, "key_id": key_id}
