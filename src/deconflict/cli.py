"""The ``deconflict`` command line: batch checks, the ledger, the demo."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from functools import wraps
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer

from deconflict.errors import DeconflictError

app = typer.Typer(
    name="deconflict",
    help="Deconfliction between parties sharing a theatre: notices, conflicts, hotline, signed record.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
ledger_app = typer.Typer(help="The hash-chained record of every state change.", no_args_is_help=True)
app.add_typer(ledger_app, name="ledger")

F = TypeVar("F", bound=Callable[..., Any])


def fail(message: str) -> typer.Exit:
    """Print an error for a person on stderr and return the exit to raise (code 2)."""
    typer.echo(f"error: {message}", err=True)
    return typer.Exit(2)


def user_errors(fn: F) -> F:
    """Turn domain errors and unreadable files into a one-line message and exit code 2."""

    @wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except DeconflictError as e:
            raise fail(e.message) from None
        except OSError as e:
            raise fail(f"{e.filename or ''}: {e.strerror or e}".lstrip(": ")) from None

    return wrapper  # type: ignore[return-value]


def _read_text(path: Path) -> str:
    if str(path) == "-":
        return sys.stdin.read()
    if not path.exists():
        raise DeconflictError(f"{path}: no such file")
    if path.is_dir():
        raise DeconflictError(f"{path}: is a folder, not a file")
    try:
        return path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise DeconflictError(f"{path}: not UTF-8 text") from None


@app.command()
@user_errors
def check(
    volumes: Annotated[Path, typer.Argument(help="GeoJSON FeatureCollection of volumes ('-' for stdin).")],
    separation_m: Annotated[
        float, typer.Option(min=0, help="Horizontal separation M, metres (0: touching or overlapping).")
    ] = 0.0,
    vertical_separation_m: Annotated[
        float, typer.Option(min=0, help="Vertical separation V, metres (0: bands overlap).")
    ] = 0.0,
) -> None:
    """Find every pair of volumes of different parties that conflict; print JSON.

    Each Feature is one volume: Polygon/MultiPolygon (lon, lat) or Point with
    properties.radius_m; properties id, party, optional activity, start, end (ISO 8601
    UTC), floor_m, ceiling_m (metres AMSL).

    Example: deconflict check volumes.geojson --separation-m 5000 --vertical-separation-m 300
    """
    from deconflict.detect import find_conflicts
    from deconflict.formats.geojson import load_json, volumes_from_geojson

    doc = load_json(_read_text(volumes), source=str(volumes))
    vols = volumes_from_geojson(doc, source=str(volumes))
    found = find_conflicts(vols, separation_m=separation_m, vertical_separation_m=vertical_separation_m)
    out = {"conflicts": [conflict_json(c) for c in found]}
    sys.stdout.write(json.dumps(out, ensure_ascii=False) + "\n")


def conflict_json(c: Any) -> dict[str, Any]:
    from deconflict.clock import iso

    return {
        "a": c.a,
        "b": c.b,
        "distance_m": round(c.distance_m, 2),
        "vertical_gap_m": round(c.vertical_gap_m, 2),
        "party_a": c.party_a,
        "party_b": c.party_b,
        "activity_a": c.activity_a,
        "activity_b": c.activity_b,
        "start": iso(c.start) if c.start else None,
        "end": iso(c.end) if c.end else None,
    }


def main() -> None:
    app()


DEFAULT_DB = "deconflict-demo.db"


@app.command()
@user_errors
def demo(
    db: Annotated[
        str | None, typer.Option(help="SQLite file (or database URL); default: a new temporary file for --script.")
    ] = None,
    script: Annotated[bool, typer.Option("--script", help="Play the scenario in the terminal and exit.")] = True,
) -> None:
    """Run the bundled Syria scenario: notices from both parties, the conflicts found, the red-line hit,
    the short notice, an acknowledgement and an amendment, then check the record.

    Example: deconflict demo --script --db /tmp/demo.db
    """
    from rich.console import Console

    from deconflict.clock import system_clock
    from deconflict.demo import run_script

    if db is None:
        import tempfile

        db = str(Path(tempfile.mkdtemp(prefix="deconflict-demo-")) / "demo.db")
    run_script(Console(), db=db, start=system_clock())
    typer.echo(f"record kept in {db}; check it with: deconflict ledger check --db {db}")


@ledger_app.command("check")
@user_errors
def ledger_check(
    db: Annotated[str, typer.Option(help="SQLite file or database URL.")] = DEFAULT_DB,
    mechanism: Annotated[str | None, typer.Option(help="Only this mechanism (default: all).")] = None,
) -> None:
    """Recompute every record chain in the database; exit 1 if one does not verify.

    Example: deconflict ledger check --db deconflict-demo.db
    """
    from deconflict.service import Service
    from deconflict.store import open_store

    if "://" not in db and not Path(db).exists():
        raise DeconflictError(f"{db}: no such database file")
    service = Service(open_store(db, migrate=False))
    ids = [mechanism] if mechanism else service.mechanism_ids()
    bad = False
    for mid in ids:
        report = service.verify(mid)
        if report.entries == 0 and report.ok:
            raise DeconflictError(f"mechanism {mid!r} has no record in {db}")
        if report.ok:
            typer.echo(f"{mid}: {report.entries} entries verify; head {report.head_seq} {report.head_hash}")
        else:
            bad = True
            typer.echo(f"{mid}: BROKEN after {report.entries} good entries: {report.problem}", err=True)
    if bad:
        raise typer.Exit(1)


mechanism_app = typer.Typer(help="Mechanism files: members, rules, zones as data.", no_args_is_help=True)
app.add_typer(mechanism_app, name="mechanism")


@mechanism_app.command("check")
@user_errors
def mechanism_check(path: Annotated[Path, typer.Argument(help="Mechanism file (TOML).")]) -> None:
    """Validate a mechanism file and summarise it.

    Example: deconflict mechanism check src/deconflict/scenarios/syria.toml
    """
    from deconflict.mechanisms import load_mechanism

    if not path.is_file():
        raise DeconflictError(f"{path}: no such file")
    m = load_mechanism(path)
    typer.echo(
        f"{m.id}: {m.name}; {len(m.members)} members ({', '.join(x.id + '/' + x.role.value for x in m.members)}); "
        f"{len(m.zones)} zones; rules ok"
    )
