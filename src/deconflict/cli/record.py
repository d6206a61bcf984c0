"""The signed record and what is read back from it: ``ledger`` (check the chains in a database, export a
bundle, verify a bundle offline), ``report`` (compliance per party), ``timeline`` (the story around a
place) and ``replay`` (the state at an instant).

The record is read from a database through the service, or from a bundle file through
``deconflict.record.bundle``; ``ledger verify`` never opens a database file (it recomputes the
service's own entries on tables it builds in memory, :mod:`deconflict.cli.verify`).
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from deconflict.cli.common import (
    DEFAULT_DB,
    DbFileOpt,
    MechanismChoiceOpt,
    activity_head,
    chosen_mechanism,
    instant_text,
    natural_key,
    open_service,
    parse_instant,
    say,
    shown_db,
    unserved_since,
    user_errors,
    utc_text,
    window_text,
)
from deconflict.cli.verify import say_chain, verify_bundle
from deconflict.clock import parse_utc, system_clock
from deconflict.errors import DeconflictError

if TYPE_CHECKING:
    from deconflict.record.chain import Head
    from deconflict.service import Service

__all__ = ["ledger_app", "replay", "report", "timeline"]

ledger_app = typer.Typer(help="The hash-chained record of every state change.", no_args_is_help=True)

DbOpt = Annotated[
    str | None, typer.Option(help="SQLite file or database URL to read the record from (default: deconflict-demo.db).")
]
BundleOpt = Annotated[
    Path | None,
    typer.Option(
        help="Read the record from a bundle written by 'deconflict ledger export' instead (verified first: "
        "one that does not verify is not read)."
    ),
]
MechanismOpt = Annotated[
    str | None, typer.Option(help="Mechanism id (default: the only one in the database, or the bundle's).")
]

Entries = tuple[str, Iterator[dict[str, Any]]]
"""A mechanism's id and its record's entry documents, in order."""


# --- ledger: the chains themselves ---------------------------------------------------------------


@ledger_app.command("check")
@user_errors
def ledger_check(
    db: DbFileOpt = DEFAULT_DB,
    mechanism: Annotated[str | None, typer.Option(help="Only this mechanism (default: all).")] = None,
) -> None:
    """Recompute every record chain in the database; exit 1 if one does not verify.

    Example: deconflict ledger check --db deconflict-demo.db
    """

    service = open_service(db, read_only=True)
    ids = [mechanism] if mechanism else service.mechanism_ids()
    if not ids:  # nothing checked is not a record that holds
        raise DeconflictError(f"{shown_db(db)} holds no mechanism's record: nothing to check")
    bad = False
    for mid in ids:
        report = service.verify(mid)
        if report.entries == 0 and report.ok:
            raise DeconflictError(f"mechanism {mid!r} has no record in {shown_db(db)}")
        bad |= not say_chain(mid, report)
    if bad:
        raise typer.Exit(1)


@ledger_app.command("export")
@user_errors
def ledger_export(
    out: Annotated[Path, typer.Option(help="The bundle file to write.")],
    db: DbFileOpt = DEFAULT_DB,
    mechanism: MechanismChoiceOpt = None,
    url: Annotated[
        str | None, typer.Option(help="Save your member's own copy from this service instead (with --token).")
    ] = None,
    token: Annotated[
        str | None,
        typer.Option(help="Your bearer token, with --url (or set DECONFLICT_TOKEN).", envvar="DECONFLICT_TOKEN"),
    ] = None,
    from_mirror: Annotated[
        Path | None, typer.Option("--from-mirror", help="Save what a 'deconflict mirror --dir' folder holds instead.")
    ] = None,
) -> None:
    """Write a mechanism's whole signed record, its public keys and signed checkpoints to one file that
    anyone can check offline. The service first signs a checkpoint of the current head.

    With --url and --token: your member's own copy as the service shows it to you (what you may
    not see with hashes only), its signed checkpoints and their notes. With --from-mirror: what
    a party's mirror holds and the checkpoints it cosigned. The copy is checked as it is saved
    (exit 1: it does not verify; written all the same, as evidence); 'ledger verify' checks it
    offline and lists the withheld entries by number.

    Example: deconflict ledger export --db deconflict-demo.db --out record.jsonl
    Example: deconflict ledger export --url http://127.0.0.1:8080 --token dcf_... --out my-copy.jsonl
    """
    if url is not None or from_mirror is not None:
        from deconflict.cli.copies import export_copy

        export_copy(url=url, token=token, from_mirror=from_mirror, out=out)
        return
    service = open_service(db)
    mechanism = chosen_mechanism(service, mechanism, db)
    service.mechanism(mechanism)  # a clear error when it does not exist
    since = unserved_since(service)
    if since is None:  # a server's duty loop runs on it: the head as it stands now
        service.checkpoint(mechanism)
    else:
        # No server runs on it (stopped, or a copy): nothing has checked the deadlines since its duty loop last
        # ran, so the head is vouched for as it stood then (at the latest entry's time if later). Signed for now,
        # the checkpoint said every escalation fallen due since was in the record, and the bundle did not verify.
        done = service.checkpoint(mechanism, as_of=since)
        if done is not None:
            typer.echo(
                f"note: no server is running on {shown_db(db)}; the checkpoint signed vouches for entry "
                f"{done['seq']} as the record stood at {done['at']}, when its duty loop last ran or its last "
                "entry was written, not now: deadlines passed since are not checked until a server runs on it",
                err=True,
            )
    if service.head(mechanism).seq == 0:
        raise DeconflictError(f"mechanism {mechanism!r} has no record in {shown_db(db)}")
    n, head = write_bundle(service, mechanism, out)
    typer.echo(f"{mechanism}: {n} entries written to {out}; head {head.seq} {head.hash}")


def write_bundle(service: Service, mechanism: str, out: Path) -> tuple[int, Head]:
    """Write ``mechanism``'s whole record, its keys and its signed checkpoints (with their cosignatures) to the
    bundle ``out``, dated by the service's clock; the entries written and the head. What ``ledger export
    --db`` writes once it has signed a checkpoint of the head."""
    from deconflict.clock import iso
    from deconflict.record import bundle

    head = service.head(mechanism)
    checkpoints: list[dict[str, Any]] = []
    while page := service.checkpoints(
        mechanism, after=checkpoints[-1]["seq"] if checkpoints else 0, with_cosignatures=True
    ):
        checkpoints += page
    n = bundle.export(
        service.record(mechanism, upto=head.seq),
        mechanism=mechanism,
        head=head,
        count=head.seq,
        out=out,
        keys=service.keys(mechanism),
        checkpoints=checkpoints,
        exported_at=iso(service.clock()),
    )
    return n, head


@ledger_app.command("verify")
@user_errors
def ledger_verify(
    path: Annotated[Path, typer.Argument(help="A bundle written by 'deconflict ledger export'.")],
    checkpoints: Annotated[
        Path | None,
        typer.Option(help="Checkpoints you kept from the service (JSON or JSON Lines) to hold the bundle against."),
    ] = None,
    recompute: Annotated[
        bool,
        typer.Option(
            help="Recompute the service's own entries (conflicts, alerts, escalations) from the entries before them."
        ),
    ] = True,
) -> None:
    """Check a record bundle offline: its chain, signatures, authority, time, checkpoints and derived entries.

    No database file is opened. Checked: the hash chain, every signature against the keys the record
    registered, who may say what (the authority rules), time, the signed checkpoints, and whether the
    service's own entries (conflicts, alerts, escalations, line checks) are exactly what the entries
    before them call for, recomputed with the service's code.

    Exit 0: it verifies. Exit 1: it does not; the first bad entry, or each entry of the service that
    should or should not be there, is named. Exit 2: not a bundle.
    Exit 3: it verifies, but the record says the service (its operator) holds a party's key, or the
    operator bound one after founding (registered late, or after a revocation): entries signed with it
    prove nothing against the operator; the first lines say so. Entries whose payload this copy
    withholds are listed by number. The verdict is the exit status even when the reader of the output
    goes away (| head).

    Example: deconflict ledger verify record.jsonl --checkpoints kept-checkpoints.json
    """
    from deconflict.cli.common import output_may_be_cut

    with output_may_be_cut():  # the verdict is the exit status, read to the end or not
        status = verify_bundle(path, checkpoints, recompute=recompute)
    if status:
        raise typer.Exit(status)


@ledger_app.command("compare")
@user_errors
def ledger_compare(
    a: Annotated[Path, typer.Argument(help="A bundle, a signed checkpoint note, or a folder of .note files.")],
    b: Annotated[Path, typer.Argument(help="The other copy (the same kinds).")],
    vkey: Annotated[
        str | None,
        typer.Option(help="The service's note key (vkey); by default the one a bundle's entry 1 declares."),
    ] = None,
) -> None:
    """Look for a fork between two copies of a record (bundles, or the notes parties' mirrors cosigned).

    A fork is two checkpoints the service signed that cannot both be true: one size, two roots; or a
    larger tree, held with its entries, that begins with another tree than the one signed.

    Exit 0: no fork. Exit 1: a fork; the proof is printed, and anyone can check it with the service's
    key alone. Exit 2: unreadable input. Bundles are read, not verified: verify each with 'ledger verify'.

    Example: deconflict ledger compare tr-record.jsonl il-mirror/cosigned
    """
    from deconflict.record import bundle

    found = bundle.compare(a, b, service_vkey=vkey)
    typer.echo(found.sentence)
    if found.proof is not None:
        typer.echo(found.proof, nl=False)
        raise typer.Exit(1)


# --- the record read back: compliance report, incident timeline, replay --------------------------


BUNDLE_CHECKED = "bundle {path}: chain, signatures and checkpoints verified, not recomputed"
"""What a reader of a bundle says it checked (``ledger verify`` also recomputes the service's own entries)."""


def verified_bundle(path: Path) -> None:
    """The bundle ``path``, checked as ``ledger verify`` checks it, before a reader reads it.

    Raises:
        DeconflictError: no such file, or it does not verify (it is not read further: what it says is not
            the record).
    """
    from deconflict.record import bundle

    if path.is_dir() or not path.exists():
        raise DeconflictError(
            f"{path}: {'is a folder, not' if path.is_dir() else 'no such file, expected'} a record bundle"
        )
    verified = bundle.verify(path)
    if not verified.ok:
        raise DeconflictError(
            f"{path} does not verify, so it is not read: after {verified.entries} good entries, {verified.problem} "
            f"(see 'deconflict ledger verify {path}')"
        )


def _one_source(db: str | None, bundle_path: Path | None) -> None:
    if db is not None and bundle_path is not None:
        raise DeconflictError("give either --db or --bundle, not both")


def record_entries(db: str | None, bundle_path: Path | None, mechanism: str | None) -> Entries:
    """(mechanism id, entry documents in order) from a database or a bundle. A bundle is someone's copy handed
    over: it is verified first (:func:`verified_bundle`), so that a report, a timeline or a replay never tells
    a story an edited line made up; a database is read as it stands (``ledger check`` checks it).

    Without ``mechanism``, the database must hold exactly one record (a bundle holds one).

    Raises:
        DeconflictError: both sources given, no such database, no such mechanism, or several to choose from; a
            bundle that does not verify.
    """
    _one_source(db, bundle_path)
    if bundle_path is not None:
        from deconflict.record import bundle

        verified_bundle(bundle_path)
        return bundle.entries(bundle_path, mechanism=mechanism)
    db = db or DEFAULT_DB
    service = open_service(db, read_only=True)
    mechanism = chosen_mechanism(service, mechanism, db, with_record=True)
    return mechanism, service.record(mechanism)


@user_errors
def report(
    db: DbOpt = None,
    bundle: BundleOpt = None,
    mechanism: MechanismOpt = None,
    start: Annotated[
        str | None, typer.Option("--from", help="Start of the period, ISO 8601 UTC (default: the record's start).")
    ] = None,
    end: Annotated[
        str | None, typer.Option("--to", help="End of the period, excluded (default: the record's last entry).")
    ] = None,
    party: Annotated[
        list[str] | None,
        typer.Option(
            help="Only this party, or the facilitator by its code (repeat for several; default: every party)."
        ),
    ] = None,
    out: Annotated[
        Path | None, typer.Option(help="Folder for report.json, report.csv and report.png (default: here).")
    ] = None,
    as_json: Annotated[
        bool, typer.Option("--json", help="Print the report as JSON instead (files only with --out).")
    ] = False,
) -> None:
    """Compliance report per party and period: notice lead times against the minimum notice, time to
    acknowledge conflicts and hotline messages, missed deadlines, escalations, missed line checks.

    Writes report.json, report.csv (one row per party and metric) and report.png (a chart) and prints
    a summary. Deadlines are judged at --to, or at the record's last entry.

    Example: deconflict report --db deconflict-demo.db --from 2025-04-09T00:00Z --to 2025-04-10T00:00Z --out rep
    """
    from deconflict.analysis import report_output
    from deconflict.analysis.report import compliance_report

    mid, entries = record_entries(db, bundle, mechanism)
    result = compliance_report(
        entries, start=parse_instant(start, "--from"), end=parse_instant(end, "--to"), parties=party or None
    )
    doc = report_output.report_to_json(result)
    folder = out if out is not None else (None if as_json else Path("."))
    if folder is not None:
        if folder.exists() and not folder.is_dir():
            raise DeconflictError(f"--out {folder}: is a file, not a folder")
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "report.json").write_text(json.dumps(doc, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
        report_output.write_csv(result, folder / "report.csv")
        report_output.write_chart(result, folder / "report.png")
    if as_json:
        typer.echo(json.dumps(doc, ensure_ascii=False, indent=2))
        return
    for line in report_output.summary_lines(result):
        typer.echo(line)
    assert folder is not None
    typer.echo(f"wrote report.json, report.csv and report.png in {folder}")


@user_errors
def timeline(
    lat: Annotated[float, typer.Option(min=-90, max=90, help="Latitude of the place, degrees (WGS84).")],
    lon: Annotated[float, typer.Option(min=-180, max=180, help="Longitude of the place, degrees (WGS84).")],
    radius_km: Annotated[float, typer.Option(min=0, help="Radius around the place, kilometres.")],
    start: Annotated[str, typer.Option("--from", help="Start of the window, ISO 8601 UTC.")],
    end: Annotated[str, typer.Option("--to", help="End of the window, ISO 8601 UTC.")],
    db: DbOpt = None,
    bundle: BundleOpt = None,
    mechanism: MechanismOpt = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the events as a JSON list.")] = False,
) -> None:
    """The story of what happened around a place in a window: who notified what and when, which conflicts
    were raised, who acknowledged when, what was resolved, the hotline messages and what escalated.

    Activities count when a volume comes within the radius while its window overlaps [from, to); the
    story shows all their versions, whenever they were notified. One line per event, time first, then
    the record entry number.

    Example: deconflict timeline --lat 34.52 --lon 37.63 --radius-km 30 --from 2025-04-09T08:00Z --to 2025-04-09T12:00Z
    """
    from deconflict.analysis import timeline as story

    mid, entries = record_entries(db, bundle, mechanism)
    events = story.incident_timeline(
        entries,
        lat=lat,
        lon=lon,
        radius_km=radius_km,
        start=parse_instant(start, "--from"),
        end=parse_instant(end, "--to"),
    )
    if as_json:
        typer.echo(json.dumps(story.timeline_to_json(events), ensure_ascii=False, indent=2))
        return
    typer.echo(f"{mid}: {len(events)} events within {radius_km:g} km of {lat:g}, {lon:g} from {start} to {end}")
    typer.echo(story.timeline_text(events), nl=False)


MOST_WINDOW_H = 48
"""The widest window replay around an instant serves from a snapshot's live piece (``replay.KEEP``), as the
API's ``window_h`` does."""


@user_errors
def replay(
    at: Annotated[
        str | None,
        typer.Option(help="The instant, ISO 8601 UTC, e.g. 2025-04-09T06:30:00Z (needed unless --check-snapshots)."),
    ] = None,
    db: DbOpt = None,
    bundle: Annotated[
        Path | None,
        typer.Option(
            help="Replay a bundle written by 'deconflict ledger export' (verified first) instead of a database."
        ),
    ] = None,
    mechanism: MechanismOpt = None,
    as_json: Annotated[bool, typer.Option("--json", help="The state as JSON.")] = False,
    window_h: Annotated[
        int | None,
        typer.Option(
            "--window-h",
            help="Only what matters around the instant, as the page's time bar shows it: activities not "
            "cancelled nor ended more than this many hours before it, conflicts open then or resolved within "
            "them, messages awaited then or sent within them (1 to 48). From a database it reads a snapshot's "
            "live piece and the entries after it, so it answers as fast on a year's record as on a day's; "
            "without it, every activity, conflict and message ever recorded up to the instant.",
        ),
    ] = None,
    check_snapshots: Annotated[
        bool,
        typer.Option(
            "--check-snapshots",
            help="Instead of replaying, rebuild the record from entry 1 and compare every replay snapshot "
            "the database keeps with it (exit 1 when one does not hold).",
        ),
    ] = False,
) -> None:
    """Rebuild a mechanism's state as it stood at an instant, from its record alone: activities in force
    (their window holds the instant), later and past ones, zones, conflicts and their status, hotline
    messages awaiting acknowledgement. A bundle is verified (chain, signatures, checkpoints) before replay.

    From a database, replay starts at the newest snapshot before the instant that holds against the record.

    Example: deconflict replay --db deconflict-demo.db --at 2025-04-09T06:30:00Z
    (from an exported record: deconflict replay --bundle record.jsonl --at 2025-04-09T06:30:00Z;
    only the 24 hours before the instant and what was still open then: add --window-h 24)
    """
    if check_snapshots:
        if at is not None or window_h is not None or as_json:
            given = " and ".join(
                name for name, value in (("--at", at), ("--window-h", window_h), ("--json", as_json)) if value
            )
            raise DeconflictError(
                f"--check-snapshots checks every snapshot against the whole record, at no one instant: drop {given}, "
                "or replay without --check-snapshots"
            )
        _check_snapshots(db, bundle, mechanism)
        return
    if at is None:
        raise DeconflictError("give the instant with --at (or --check-snapshots)")
    instant = parse_instant(at, "--at")
    if window_h is not None and not 1 <= window_h <= MOST_WINDOW_H:
        raise DeconflictError(
            f"--window-h: {window_h} hours; give 1 to {MOST_WINDOW_H} (a snapshot's live piece reaches back "
            f"{MOST_WINDOW_H} hours), or leave it out for the whole state"
        )
    from deconflict.record import bundle as bundles
    from deconflict.service import replay_around_entries, replay_entries  # (after the input is checked: 2 s)

    source = shown_db(db or DEFAULT_DB) if bundle is None else BUNDLE_CHECKED.format(path=bundle)
    service: Service | None = None
    if bundle is None:  # one service for the state and the note (its entries are the snapshots' to read)
        service = open_service(db or DEFAULT_DB, read_only=True)
        mid = chosen_mechanism(service, mechanism, db or DEFAULT_DB, with_record=True)
    else:
        mid, entries = record_entries(db, bundle, mechanism)  # verified first
    window = timedelta(hours=window_h) if window_h is not None else None
    try:
        if service is not None and window is None:
            state = service.replay_stored(mid, instant)
        elif service is not None:
            state = service.replay_around(mid, instant, window=window)
        elif window is None:
            state = replay_entries(entries, mechanism=mid, at=instant)
        else:
            state = replay_around_entries(entries, mechanism=mid, at=instant, window=window)
    except ValueError as e:
        raise DeconflictError(f"{source}: {e}") from None
    if state["head"]["seq"] == 0:
        if bundle is not None:
            first = bundles.entries(bundle, mechanism=mid)[1]
        else:
            assert service is not None
            first = iter(service.record(mid))
        start = next(first, {}).get("at", "?")
        raise DeconflictError(f"mechanism {mid!r} had no record yet at {at}; its first entry is at {start}")
    for name in ("activities", "zones", "conflicts", "messages"):
        state[name] = sorted(state[name], key=lambda row: natural_key(str(row["id"])))
    # an instant still to come: the record holds what happened up to now, not what will fall due after it
    ahead = (
        f"{instant_text(state['at'])} is still to come: this is the record as it stands now (up to entry "
        f"{state['head']['seq']}); an alert that would climb or a deadline that would pass by then is not in it"
        if instant > system_clock()
        else _unchecked(service, bundle, mid, instant)
    )
    if as_json:
        say(json.dumps(state, ensure_ascii=False, indent=2, sort_keys=True))  # the same bytes for the same state
        if ahead is not None:
            typer.echo(f"note: {ahead}", err=True)
        return
    typer.echo(
        f"{mid} as it stood at {instant_text(state['at'])} (record up to entry {state['head']['seq']}; {source}):"
    )
    if ahead is not None:
        typer.echo(f"  note: {ahead}")
    if window is not None:
        typer.echo(
            f"  only what mattered around it: what was in force, open or awaited then, and what ended, was "
            f"resolved or was sent in the {window_h} h before (since {instant_text(state['window']['since'])})"
        )
    for line in _state_lines(state, instant):
        typer.echo(line)


def _unchecked(service: Service | None, bundle_path: Path | None, mid: str, instant: datetime) -> str | None:
    """What replay at ``instant`` cannot show, when no duty loop checked the deadlines up to it: a database no
    server runs on (since its duty loop last ran, or its last entry), or a bundle (after the time its last
    checkpoint vouched for its head: the record's last entry, not the one in force at the instant). An alert
    overdue then shows no escalation step the service would have recorded: it was not running, which is not the
    ladder failing. None: checked up to the instant."""
    from collections import deque

    from deconflict.cli.common import unserved_since
    from deconflict.clock import iso
    from deconflict.record import bundle

    if bundle_path is not None:
        checked = bundle.vouched_at(bundle_path)  # its head's, as its header says (verify held them equal)
        why = "the bundle's newest checkpoint of its head vouches for it up to then"
        if checked is None:  # its last entry: the bundle read to its end once more, not held (deque keeps one)
            (last,) = deque(bundle.entries(bundle_path, mechanism=mid)[1], maxlen=1)
            checked = parse_utc(last["at"], field="at")
            why = "no checkpoint in the bundle vouches for its head; its last entry is of then"
    else:
        assert service is not None
        since = unserved_since(service)
        if since is None:
            return None  # a server's duty loop runs on it: every deadline up to now is checked
        seq = service.head(mid).seq  # the record's last entry, not the one in force at the instant
        (last,) = service.entries_after(mid, seq - 1, limit=1)
        written = parse_utc(last["at"], field="at")
        checked = max(since, written)
        why = (
            "when a server's duty loop last ran on this database"
            if since >= written
            else "its last entry; no server's duty loop has run on this database since"
        )
    if instant <= checked:
        return None
    return (
        f"nothing checked the deadlines after {instant_text(iso(checked))} ({why}): an alert whose deadline passed "
        "after then shows overdue, without the escalation steps a running service would have recorded"
    )


PROGRESS_S = 10.0
"""How often ``replay --check-snapshots`` says how far it has got (on standard error)."""


def _check_snapshots(db: str | None, bundle_path: Path | None, mechanism: str | None) -> None:
    """Every replay snapshot of a database's record compared with the record rebuilt from entry 1."""
    if bundle_path is not None:
        raise DeconflictError("--check-snapshots: replay snapshots are kept in a database, not a bundle; give --db")
    mid, _ = record_entries(db, None, mechanism)
    last = [time.monotonic()]

    def progress(done: int, total: int, seq: int) -> None:  # minutes on a long record: said now and then
        if time.monotonic() - last[0] >= PROGRESS_S and done < total:
            typer.echo(f"  {done} of {total} snapshots checked so far (the record rebuilt up to entry {seq})", err=True)
            last[0] = time.monotonic()

    checked, problems = open_service(db or DEFAULT_DB, read_only=True).check_snapshots(mid, progress=progress)
    for p in problems:
        typer.echo(f"  snapshot at entry {p.seq}: {p.problem}")
    verdict = f"{len(problems)} {'does' if len(problems) == 1 else 'do'} not hold" if problems else "all hold"
    typer.echo(f"{mid}: {checked} replay snapshots compared with the record rebuilt from entry 1: {verdict}")
    if problems:
        raise typer.Exit(1)


def _passed(deadline: Any, instant: datetime) -> bool:
    """Whether a deadline (a time, or ISO 8601 text) is at or before the instant."""
    when = deadline if isinstance(deadline, datetime) else parse_utc(str(deadline), field="deadline")
    return when <= instant


def _state_lines(state: dict[str, Any], instant: datetime) -> Iterator[str]:
    """The replayed state in words: activities by phase, zones, conflicts, messages awaiting an answer."""
    from deconflict.analysis.phase import phase  # the one meaning of "in force": the service's, the page's, replay's

    phases: dict[str, list[dict[str, Any]]] = {}
    for a in state["activities"]:
        phases.setdefault(phase(a["doc"], instant), []).append(a)
    in_force, later = phases.get("in_force", []), phases.get("planned", [])
    between = phases.get("between", [])
    yield (
        f"  {len(in_force)} activities in force (their window holds the instant); {len(later)} planned for later, "
        f"{len(between)} between two windows, {len(phases.get('ended', []))} ended, "
        f"{len(phases.get('cancelled', []))} cancelled"
    )
    for a in in_force:
        yield f"    {activity_head(a)}  {window_text(a['start'], a['end'])}"
    for a in between:
        volumes = (a.get("doc") or {}).get("volumes") or [a]
        yield f"    {activity_head(a)}  between windows: " + ", ".join(
            window_text(v.get("start"), v.get("end")) for v in volumes
        )
    for a in later:
        yield f"    {activity_head(a)}  later: {window_text(a['start'], a['end'])}"
    for a in phases.get("cancelled", []):  # which, and when (the version that cancelled it)
        yield f"    {activity_head(a)}  cancelled at {utc_text(a['notified_at'])}: {window_text(a['start'], a['end'])}"
    zones = [z for z in state["zones"] if z["withdrawn_at"] is None]
    yield f"  {len(zones)} zones: " + ", ".join(f"{z['id']} ({z['kind']}, {z['owner']})" for z in zones)
    yield f"  {len(state['conflicts'])} conflicts:"
    for c in state["conflicts"]:
        waiting = ", ".join(p for p in c["doc"].get("awaiting", []) if p not in c["acknowledged"])
        note = f"; awaiting {waiting}" if waiting and c["status"] == "open" else ""
        if note and c.get("deadline") and _passed(c["deadline"], instant):
            note += " (overdue)"
        status = f"{c['status']} ({c['resolution']})" if c.get("resolution") else c["status"]
        yield f"    {c['id']}  {c['kind']}  {status}  deadline {utc_text(c['deadline'])}{note}"
    open_ = [m for m in state["messages"] if m["needs_ack"] and m["acknowledged_at"] is None]
    pending = [m for m in open_ if m.get("closed_at") is None]
    closed = [m for m in open_ if m.get("closed_at") is not None]
    yield f"  {len(state['messages'])} hotline messages, {len(pending)} awaiting acknowledgement:"
    for m in pending:
        awaited = ", ".join(p for p in m["recipients"] if p not in (m.get("acknowledged") or {}))
        late = " (overdue)" if m.get("deadline") and _passed(m["deadline"], instant) else ""
        yield (
            f"    {m['id']}  {m['type']} to {', '.join(m['recipients'])}, awaiting {awaited}, "
            f"deadline {utc_text(m['deadline'])}{late}, {m['steps']} escalation step{'' if m['steps'] == 1 else 's'}"
        )
    if closed:  # alerts whose conflict was resolved before they were acknowledged: they stopped climbing
        yield f"  {len(closed)} closed unacknowledged:"
        for m in closed:
            yield f"    {m['id']}  {m['type']} to {', '.join(m['recipients'])}: {m['closed_note']}"
