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
    separation_m: Annotated[float, typer.Option(min=0, help="Horizontal separation M, metres (0: touching or overlapping).")] = 0.0,
    vertical_separation_m: Annotated[float, typer.Option(min=0, help="Vertical separation V, metres (0: bands overlap).")] = 0.0,
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
