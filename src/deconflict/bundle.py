"""Record bundles: a mechanism's chain written to one file and checked offline, with no database.

Format (JSON Lines, UTF-8): the first line is a header
``{"format": "deconflict-record", "version": 1, "mechanism": ..., "entries": N, "head_seq": ..., "head_hash": ...}``,
then one entry per line as ``ledger.entry_doc`` gives it, in sequence order. Signatures,
public keys and signed checkpoints (issue 5) will join the header and entries; until then
the header is not itself protected, so a tail cut together with an edited header is not caught.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from deconflict import ledger
from deconflict.errors import InvalidInput

FORMAT = "deconflict-record"
VERSION = 1


def export(entries: Iterator[dict[str, Any]], *, mechanism: str, head: ledger.Head, count: int, out: Path) -> int:
    """Write a bundle; returns the number of entries written."""
    header = {
        "format": FORMAT,
        "version": VERSION,
        "mechanism": mechanism,
        "entries": count,
        "head_seq": head.seq,
        "head_hash": head.hash,
    }
    written = 0
    tmp = out.with_name(out.name + ".part")
    with tmp.open("w", encoding="utf-8") as f:
        f.write(json.dumps(header, ensure_ascii=False) + "\n")
        for entry in entries:
            f.write(json.dumps(entry, ensure_ascii=False, sort_keys=True) + "\n")
            written += 1
    tmp.replace(out)
    return written


def verify(path: Path) -> ledger.ChainReport:
    """Check a bundle offline; the report names the first entry that does not verify."""
    try:
        f = path.open(encoding="utf-8")
    except OSError as e:
        raise InvalidInput(f"{path}: cannot be read: {e.strerror}") from None
    with f:
        try:
            first = f.readline()
            header = json.loads(first)
        except (json.JSONDecodeError, UnicodeDecodeError):
            raise InvalidInput(f"{path}: line 1 is not a record bundle header") from None
        if not isinstance(header, dict) or header.get("format") != FORMAT:
            raise InvalidInput(f"{path}: not a deconflict record bundle")
        if header.get("version") != VERSION:
            raise InvalidInput(
                f"{path}: bundle version {header.get('version')!r} is not supported (expected {VERSION})"
            )
        mechanism = str(header.get("mechanism"))
        bad: list[ledger.ChainReport] = []

        def docs() -> Iterator[dict[str, Any]]:
            for number, line in enumerate(f, start=2):
                try:
                    doc = json.loads(line)
                except json.JSONDecodeError:
                    bad.append(
                        ledger.ChainReport(
                            mechanism,
                            number - 2,
                            False,
                            number - 2,
                            "",
                            number - 1,
                            f"entry {number - 1} (line {number}): unreadable, the file was changed",
                        )
                    )
                    return
                yield doc

        report = ledger.verify_docs(mechanism, docs())
        if bad and (report.ok or (report.first_bad_seq or 0) > (bad[0].first_bad_seq or 0)):
            return bad[0]
    if not report.ok:
        return report
    if report.entries != header.get("entries") or report.head_hash != header.get("head_hash"):
        return ledger.ChainReport(
            mechanism,
            report.entries,
            False,
            report.head_seq,
            report.head_hash,
            report.head_seq + 1,
            f"the bundle holds {report.entries} entries ending at {report.head_hash[:12]}…, but its header says "
            f"{header.get('entries')} ending at {str(header.get('head_hash'))[:12]}… (entries were cut or added)",
        )
    return report
