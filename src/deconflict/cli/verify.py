"""What ``deconflict ledger verify`` says of a bundle: the chain, the keys and who held them, the signed
checkpoints and how far each party cosigned, what this copy withholds, and whether the service's own
entries are what the entries before them call for (recomputed with the service's code).

The chain, signatures, authority, time and checkpoints are checked by :mod:`deconflict.record.bundle`
(the record layer only); the recomputation needs the domain model and runs after, as a second pass
over the file (:mod:`deconflict.service.recheck`).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer

if TYPE_CHECKING:
    from deconflict.record.chain import ChainReport
    from deconflict.service.recheck import Recheck

__all__ = ["HELD_BY_OPERATOR", "say_chain", "verify_bundle"]

HELD_BY_OPERATOR = 3
"""``ledger verify``'s exit status when the record verifies but the service holds a party's key."""


def say_chain(name: str, report: ChainReport) -> bool:
    """Say whether a chain verifies (its head) or where it breaks (on stderr); True when it verifies."""
    if report.ok:
        typer.echo(f"{name}: {report.entries} entries verify; head {report.head_seq} {report.head_hash}")
    elif report.first_bad_seq is not None and report.first_bad_seq == report.entries + 1 and report.entries:
        typer.echo(f"{name}: BROKEN: {report.problem} (entries 1–{report.entries} before it verify)", err=True)
    else:
        typer.echo(f"{name}: BROKEN: {report.problem}", err=True)
    return report.ok


def _held_keys(report: ChainReport) -> list[dict[str, Any]]:
    """Keys of parties that the record says the service holds (any custody but the party's own), and keys the
    operator bound for a party after founding (whatever custody it claims: the operator may have made it)."""
    from deconflict.record import signing
    from deconflict.record.chain import SERVICE

    return [
        k
        for k in report.keys
        if k["owner"] != SERVICE
        and (k["custody"] != signing.PARTY_CUSTODY or (k.get("authorised_by") == "operator" and k["signed"]))
    ]


def verify_bundle(path: Path, checkpoints: Path | None, *, recompute: bool) -> int:
    """Check a bundle and say what was found; returns the exit status (0, 1 or HELD_BY_OPERATOR)."""
    from deconflict.record import bundle
    from deconflict.record.verify import withheld_ranges

    kept = bundle.read_checkpoints(checkpoints) if checkpoints is not None else []
    report = bundle.verify(path, checkpoints=kept)
    held = _held_keys(report) if report.ok else []
    held_by_service = [k for k in held if k.get("authorised_by") != "operator" or k["custody"] != "party"]
    bound = [k for k in held if k not in held_by_service]
    if held_by_service:
        owners = ", ".join(sorted({k["owner"] for k in held_by_service}))
        custody = ", ".join(sorted({repr(k["custody"]) for k in held_by_service}))
        typer.echo(
            f"CAUTION: the service holds the keys of {owners} (custody {custody} in the record): entries signed "
            "with them prove nothing against the operator"
        )
    if bound:
        owners = ", ".join(sorted({k["owner"] for k in bound}))
        typer.echo(
            f"CAUTION: the operator bound keys of {owners} after founding, and entries are signed with them: they "
            "prove nothing against the operator until the party confirms the key's fingerprint out of band"
        )
    if not say_chain(report.mechanism, report):
        if report.evidence is not None:
            typer.echo(
                f"evidence (the signed note, checkable with the record's service key):\n{report.evidence}", err=True
            )
        return 1
    if report.withheld:
        n = len(report.withheld)
        typer.echo(
            f"  {'entry' if n == 1 else 'entries'} {withheld_ranges(report.withheld)} withheld "
            "(payload not in this copy; their hashes are chained and signed)"
        )
    typer.echo(f"  {report.checkpoints} signed checkpoints agree with the chain")
    if report.notes:
        typer.echo(f"  {report.notes} checkpoint notes signed by the service over the Merkle root of the entries")
    for c in report.cosigned if report.notes else ():
        reach = f"cosigned up to entry {c['size']} (at {c['at']})" if c["size"] else "never cosigned"
        typer.echo(f"  {c['party']} {reach}")
    for key in report.keys:
        state = f", revoked at entry {key['revoked_seq']}" if key["revoked_seq"] else ""
        if key.get("authorised_by") == "operator":  # after founding: the operator bound it, in plain sight
            state = f", registered by the operator at entry {key['registered_seq']}{state}"
        entries = "entry" if key["signed"] == 1 else "entries"
        typer.echo(
            f"  key {key['key_id']} of {key['owner']} ({key['custody']}{state}): signed {key['signed']} {entries}"
        )
    if recompute:
        from deconflict.service.recheck import recheck

        mechanism, docs = bundle.entries(path)
        until = bundle.vouched_at(path, report.head_seq, kept=kept)
        if not _say_recheck(mechanism, recheck(docs, mechanism=mechanism, until=until)):
            return 1
    else:
        typer.echo("  the service's own entries are not recomputed (--no-recompute)")
    return HELD_BY_OPERATOR if held else 0


def _say_recheck(mechanism: str, r: Recheck) -> bool:
    """Say what recomputing the service's own entries found; True when every one is as the rules give."""
    aside = ""
    if r.not_recomputed:
        counts = ", ".join(f"{n} {why}" for why, n in sorted(r.not_recomputed.items()))
        aside = f"; not recomputable from the record alone (track reports are not entries): {counts}"
    stopped = f"; recomputed only up to where {r.skipped}" if r.skipped else ""
    if r.ok:
        typer.echo(
            f"  the service's own entries: {r.derived} recomputed, each as the rules give, from what called for "
            f"them in the record ({r.triggers} notices, zones, resolutions and duty-loop runs looked at){aside}"
            f"{stopped}"
        )
        return True
    n = len(r.problems)
    typer.echo(
        f"{mechanism}: DOES NOT HOLD: {n} {'entry' if n == 1 else 'entries'} of the service "
        f"{'is' if n == 1 else 'are'} not what the entries before {'it' if n == 1 else 'them'} call for "
        f"({r.derived} others are as the rules give{aside}{stopped}):",
        err=True,
    )
    for problem in r.problems:
        typer.echo(f"  {problem}", err=True)
    return False
