"""Record bundles: a mechanism's signed chain written to one file and checked offline, with no database.

Format (JSON Lines, UTF-8): the first line is a header

``{"format": "deconflict-record", "version": 2, "mechanism": ..., "entries": N, "head_seq": ..., "head_hash": ...,
"keys": [...], "checkpoints": [...], "exported_at": ...}``

then one entry per line as :func:`deconflict.store.ledger.entry_doc` gives it, in sequence order. ``keys`` lists the
public keys the record registered (for reading; the verifier trusts only the record's own
``key.registered`` entries and flags any difference); ``checkpoints`` are the service's signed
heads, the last one made at export, so a cut or rewritten tail is caught. A member holds the
checkpoints it received on its stream and can give them to the verifier as well: then even an
exporter who signs a fresh, shorter history is caught.

A checkpoint may carry ``note``: the same head as a C2SP checkpoint note over the RFC 6962 root of
entries ``1..seq`` with the service's signature and every party's cosignature collected (an additive
field: version 2 readers that do not know it are unaffected, so the version stays 2). :func:`verify`
roots the entries while streaming them, holds every note to that root, checks the service's signature
with the key entry 1 declares and each cosignature with the cosigning party's key in the record, and
reports how far each party cosigned. :func:`compare` finds a fork between two copies (bundles, notes)
and gives a proof anyone can check with the service's key alone.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Iterator
from datetime import datetime
from pathlib import Path
from typing import IO, Any

from deconflict.clock import parse_utc
from deconflict.errors import InvalidInput
from deconflict.record import merkle, note
from deconflict.record.chain import ChainReport, Head
from deconflict.record.checkpoints import check_checkpoints
from deconflict.record.cosigned import Comparison, Copy, Only, Rooting, check_notes, find_fork, open_notes, read_note
from deconflict.record.signing import unb64
from deconflict.record.strict_json import load_json
from deconflict.record.verify import KeyRing, verify_lines

__all__ = [
    "FORMAT",
    "PARALLEL_FROM",
    "VERSION",
    "Comparison",
    "compare",
    "entries",
    "export",
    "read_checkpoints",
    "verify",
    "vouched_at",
]

FORMAT = "deconflict-record"
VERSION = 2
PARALLEL_FROM = 50_000
"""Bundles with at least this many entries have their signatures checked in several processes."""


def export(
    entries: Iterator[dict[str, Any]],
    *,
    mechanism: str,
    head: Head,
    count: int,
    out: Path,
    keys: list[dict[str, Any]],
    checkpoints: list[dict[str, Any]],
    exported_at: str,
) -> int:
    """Write a bundle (atomically: a temporary file renamed into place); returns the entries written."""
    header = {
        "format": FORMAT,
        "version": VERSION,
        "mechanism": mechanism,
        "entries": count,
        "head_seq": head.seq,
        "head_hash": head.hash,
        "keys": [{k: key[k] for k in ("key_id", "owner", "public_key", "custody")} for key in keys],
        "checkpoints": checkpoints,
        "exported_at": exported_at,
    }
    written = 0
    tmp = out.with_name(out.name + ".part")
    try:
        with tmp.open("w", encoding="utf-8") as f:
            f.write(json.dumps(header, ensure_ascii=False) + "\n")
            for entry in entries:
                f.write(json.dumps(entry, ensure_ascii=False, sort_keys=True) + "\n")
                written += 1
    except OSError as e:
        raise InvalidInput(f"{out}: cannot be written: {e.strerror}", field="out") from None
    tmp.replace(out)
    return written


def read_checkpoints(path: Path) -> list[dict[str, Any]]:
    """Checkpoints a member kept: a JSON list, ``{"checkpoints": [...]}`` (as the API gives), or JSON Lines."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as e:
        raise InvalidInput(f"{path}: cannot be read: {e.strerror}", field="checkpoints") from None
    try:
        doc = load_json(text)
        items = doc.get("checkpoints", [doc] if "seq" in doc else None) if isinstance(doc, dict) else doc
    except ValueError:
        try:
            items = [load_json(line) for line in text.splitlines() if line.strip()]
        except ValueError as e:
            raise InvalidInput(f"{path}: not checkpoints (JSON or JSON Lines): {e}", field="checkpoints") from None
    if not isinstance(items, list):
        raise InvalidInput(f"{path}: expected a list of checkpoints with seq, hash, at, key_id, signature")
    return _checked_checkpoints(items, str(path))


def _checked_checkpoints(items: list[Any], where: str) -> list[dict[str, Any]]:
    """Checkpoint documents, each with a whole seq ≥ 1 and text hash, at, key_id and signature."""
    for n, c in enumerate(items, start=1):
        ok = isinstance(c, dict) and type(c.get("seq")) is int and c["seq"] >= 1
        if not ok or not all(isinstance(c.get(k), str) for k in ("hash", "at", "key_id", "signature")):
            raise InvalidInput(
                f"{where}: checkpoint {n} is not a checkpoint (a whole seq from 1, and hash, at, key_id, signature "
                "as text)",
                field="checkpoints",
            )
    return items


def _distinct(checkpoints: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The checkpoints, each the same signed head once (its entry, hash, time and signature), in order."""
    seen: set[tuple[str, ...]] = set()
    out = []
    for cp in checkpoints:
        key = tuple(str(cp.get(k)) for k in ("seq", "hash", "at", "key_id", "signature"))
        if key not in seen:
            seen.add(key)
            out.append(cp)
    return out


def verify(path: Path, *, checkpoints: Iterable[dict[str, Any]] = (), workers: int | None = None) -> ChainReport:
    """Check a bundle offline: chain, signatures, keys and checkpoints; the report names the first bad entry.

    ``checkpoints`` are more signed heads to hold the bundle against (those a member kept).
    ``workers`` is how many processes check signatures (default: all cores for large bundles).
    """
    try:
        f = path.open("rb")  # lines are decoded by the JSON reader: a broken byte names its entry
    except OSError as e:
        raise InvalidInput(f"{path}: cannot be read: {e.strerror}") from None
    with f:
        header = _header(f, path)
        mechanism = str(header.get("mechanism"))
        listed_cps = header.get("checkpoints")
        if not isinstance(listed_cps, list):
            raise InvalidInput(f"{path}: the header's checkpoints are not a list")
        # a checkpoint the member kept that the header holds too is one checkpoint, counted once
        held = _distinct(_checked_checkpoints(listed_cps, f"{path}: header") + list(checkpoints))
        signed_notes = [read_note(c) for c in held if c.get("note") is not None]
        hashes = Rooting([int(c["seq"]) for c in held], [n[2].size for n in signed_notes if n[2] is not None])
        times = Only(n for c in held for n in (int(c["seq"]), int(c["seq"]) + 1))  # each head, and the entry after
        ring = KeyRing()
        if workers is None:
            entries_said = header.get("entries")
            many = type(entries_said) is int and entries_said >= PARALLEL_FROM
            workers = min(2, os.cpu_count() or 1) if many else 1
        keys = header.get("keys")
        listed: list[Any] = keys if isinstance(keys, list) else []
        known = {str(k.get("key_id")): str(k.get("public_key")) for k in listed if isinstance(k, dict)}
        report = verify_lines(
            mechanism,
            path,
            f.tell(),
            known_keys=known,
            workers=workers,
            ring=ring,
            hashes=hashes,
            times=times,
        )
    if not report.ok:
        return report
    if report.entries == 0:
        return _broken(report, 1, "the bundle holds no entries (a record starts with its mechanism.declared entry)")
    problem = _keys_differ(header.get("keys"), ring)
    if problem is not None:
        return _broken(report, None, problem)
    report = check_checkpoints(mechanism, held, hashes, report, ring, times)
    if not report.ok:
        return report
    report = check_notes(mechanism, signed_notes, hashes.roots, ring, report)
    if not report.ok:
        return report
    said = {k: header.get(k) for k in ("entries", "head_seq", "head_hash")}
    if said != {"entries": report.entries, "head_seq": report.head_seq, "head_hash": report.head_hash}:
        return _broken(
            report,
            None,
            f"the bundle holds {report.entries} entries ending at entry {report.head_seq} "
            f"{report.head_hash[:12]}…, but its header says {said['entries']!r} entries ending at entry "
            f"{said['head_seq']!r} {str(said['head_hash'])[:12]}… (entries were cut or added, or the header edited)",
        )
    return report


def _header(f: IO[bytes], path: Path) -> dict[str, Any]:
    """The bundle's header line, checked for format and version (the file positioned at the first entry)."""
    try:
        header = load_json(f.readline())
    except ValueError as e:
        raise InvalidInput(f"{path}: line 1 is not a record bundle header ({e})") from None
    if not isinstance(header, dict) or header.get("format") != FORMAT:
        raise InvalidInput(f"{path}: not a deconflict record bundle")
    if not isinstance(header.get("mechanism"), str) or not header["mechanism"]:
        raise InvalidInput(f"{path}: the bundle header names no mechanism")
    if header.get("version") != VERSION:
        raise InvalidInput(
            f"{path}: bundle version {header.get('version')!r} is not supported (expected {VERSION}; "
            "version 1 bundles carried no signatures)"
        )
    return header


def vouched_at(path: Path, seq: int | None = None, *, kept: Iterable[dict[str, Any]] = ()) -> datetime | None:
    """The latest time a checkpoint in the bundle's header, or one a member ``kept``, says the record's head
    was entry ``seq`` (by default the bundle's head, as its header says: the service vouching that nothing else
    was due by then; None: no checkpoint of that head). Read, not checked: :func:`verify` checks the checkpoints'
    signatures, and that the header's head is the entries'."""
    with path.open("rb") as f:
        header = _header(f, path)
    if seq is None:
        seq = header.get("head_seq")
    times = []
    for c in [*(header.get("checkpoints") or ()), *kept]:
        if isinstance(c, dict) and c.get("seq") == seq:
            try:
                times.append(parse_utc(c.get("at"), field="at"))
            except InvalidInput:
                continue
    return max(times, default=None)


def entries(path: Path, *, mechanism: str | None = None) -> tuple[str, Iterator[dict[str, Any]]]:
    """(mechanism id, its entry documents in order) read from a bundle, parsed but not verified.

    The header is checked at once (format, version, and ``mechanism`` when given); a line that
    is not an entry is named when the iterator reaches it.
    """
    if path.is_dir():
        raise InvalidInput(f"{path}: is a folder, not a record bundle")
    try:
        f = path.open("rb")
    except OSError as e:
        raise InvalidInput(f"{path}: cannot be read: {e.strerror}") from None
    try:
        header = _header(f, path)
    except InvalidInput:
        f.close()
        raise
    found = str(header.get("mechanism"))
    if mechanism is not None and mechanism != found:
        f.close()
        raise InvalidInput(f"{path}: the bundle holds mechanism {found!r}, not {mechanism!r}")

    def read() -> Iterator[dict[str, Any]]:
        with f:
            number = 1
            try:
                for number, line in enumerate(f, start=2):  # noqa: B007 - number names the bad line
                    if line.strip():
                        yield load_json(line)
            except ValueError:
                raise InvalidInput(
                    f"{path}: line {number} is not a record entry (check the file with deconflict ledger verify)"
                ) from None

    return found, read()


def _keys_differ(listed: Any, ring: KeyRing) -> str | None:
    """The first difference between the header's key list and the keys the record registered, or None."""
    if not isinstance(listed, list):
        return "the bundle's key list is missing"
    seen = set()
    for key in listed:
        kid = key.get("key_id") if isinstance(key, dict) else None
        known = ring.keys.get(str(kid))
        if known is None:
            return f"the bundle lists key {kid}, which the record never registered (a key was replaced)"
        if key.get("public_key") != known["public_key"] or key.get("owner") != known["owner"]:
            return (
                f"the bundle lists key {kid} with a different public key or owner than the record registered "
                f"at entry {known['registered_seq']} (a key was replaced)"
            )
        if key.get("custody") != known["custody"]:
            return (
                f"the bundle lists key {kid} as held by {key.get('custody')!r}, but the record registered it "
                f"at entry {known['registered_seq']} as held by {known['custody']!r}"
            )
        seen.add(kid)
    missing = sorted(set(ring.keys) - seen)
    if missing:
        return f"the bundle's key list leaves out key {missing[0]}, which the record registered"
    return None


def _broken(report: ChainReport, first_bad: int | None, problem: str) -> ChainReport:
    """``report`` turned into a failure: ``first_bad`` names an entry, or None when the fault is the bundle's own
    (its header) rather than an entry's."""
    return ChainReport(
        report.mechanism,
        report.entries,
        False,
        report.head_seq,
        report.head_hash,
        first_bad,
        problem,
        report.keys,
        withheld=report.withheld,
    )


def compare(a: Path, b: Path, *, service_vkey: str | None = None) -> Comparison:
    """Two copies side by side (each a bundle, a signed note file, or a folder of ``*.note`` files such as a
    mirror's ``cosigned/``): a fork proof when the service signed two checkpoints that cannot both be true.

    The service's key is ``service_vkey`` (a C2SP vkey) or else the one a bundle's entry 1 declares.
    Bundles are read, not verified: verify them with :func:`verify`; the proof itself is checked here.
    """
    service = (
        note.parse_vkey(service_vkey) if service_vkey is not None else _declared_service(a) or _declared_service(b)
    )
    if service is None:
        raise InvalidInput("neither copy is a bundle: give the service's vkey to check the notes with", field="vkey")
    return find_fork(_copy(a, service), _copy(b, service), service)


def _is_bundle(path: Path) -> bool:
    if not path.is_file():
        return False
    with path.open("rb") as f:
        return f.read(1) == b"{"


def _declared_service(path: Path) -> note.Verifier | None:
    """The service's note verifier as a bundle's entry 1 declares it (None: not a bundle)."""
    if not _is_bundle(path):
        return None
    mechanism, docs = entries(path)
    first = next(docs, None)
    payload = first.get("payload") if isinstance(first, dict) and first.get("seq") == 1 else None
    key = payload.get("service_key") if isinstance(payload, dict) else None
    if not isinstance(key, dict) or not isinstance(key.get("public_key"), str):
        raise InvalidInput(f"{path}: entry 1 declares no service key")
    raw = unb64(key["public_key"], field="public_key", size=32)
    return note.Verifier(note.origin(mechanism), note.ED25519, raw)


def _copy(path: Path, service: note.Verifier) -> Copy:
    """A copy's service-signed notes (and a bundle's entry leaves)."""
    if path.is_dir():
        files = sorted(path.glob("*.note"), key=lambda p: (len(p.name), p.name))
        if not files:
            raise InvalidInput(f"{path}: a folder with no .note files")
        return Copy(str(path), open_notes((_text(p) for p in files), service, where=str(path)))
    if not _is_bundle(path):
        return Copy(str(path), open_notes([_text(path)], service, where=str(path)))
    with path.open("rb") as f:
        header = _header(f, path)
    listed = header.get("checkpoints")
    cps = _checked_checkpoints(listed if isinstance(listed, list) else [], f"{path}: header")
    texts = [str(c["note"]) for c in cps if c.get("note") is not None]
    _, docs = entries(path)
    try:
        leaves = tuple(merkle.entry_leaf(str(d.get("hash"))) for d in docs)
    except (InvalidInput, AttributeError):
        raise InvalidInput(
            f"{path}: an entry without a readable hash (check it with deconflict ledger verify)"
        ) from None
    return Copy(str(path), open_notes(texts, service, where=str(path)), leaves)


def _text(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as e:
        raise InvalidInput(f"{path}: cannot be read as a note ({e})") from None
