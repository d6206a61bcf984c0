"""Offline commands over files, no service and no database: ``check`` (volumes in GeoJSON), ``tracks``
(track states in CSV) and ``mechanism check`` (a mechanism file)."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated, Any

import typer

from deconflict.cli.common import TerminalGuard, fail, read_text, user_errors

__all__ = ["check", "conflict_json", "mechanism_app", "tracks"]

mechanism_app = typer.Typer(help="Mechanism files: members, rules, zones as data.", no_args_is_help=True)


@user_errors
def check(
    volumes: Annotated[Path, typer.Argument(help="GeoJSON FeatureCollection of volumes ('-' for stdin).")],
    separation_m: Annotated[
        float, typer.Option(help="Horizontal separation M, metres, 0 or more (0: touching or overlapping).")
    ] = 0.0,
    vertical_separation_m: Annotated[
        float, typer.Option(help="Vertical separation V, metres, 0 or more (0: bands overlap).")
    ] = 0.0,
) -> None:
    """Find every pair of volumes of different parties that conflict; print JSON.

    Each Feature is one volume: Polygon/MultiPolygon (lon, lat) or Point with
    properties.radius_m; properties id, party, optional activity, start, end (ISO 8601
    UTC), floor_m, ceiling_m (metres AMSL).

    Example: deconflict check volumes.geojson --separation-m 5000 --vertical-separation-m 300
    """
    from deconflict.detect import find_conflict_table
    from deconflict.detect_batch import conflict_blocks, write_conflict_blocks
    from deconflict.formats.geojson import load_json, volumes_from_geojson, write_conflicts

    for name, value in (("--separation-m", separation_m), ("--vertical-separation-m", vertical_separation_m)):
        if not value >= 0 or value == float("inf"):  # one line, as for tracks (NaN fails both comparisons)
            raise fail(f"{name} must be a number, 0 or more, got {value:g}")
    doc = load_json(read_text(volumes), source=str(volumes))
    vols = volumes_from_geojson(doc, source=str(volumes))
    del doc
    rules = {"separation_m": separation_m, "vertical_separation_m": vertical_separation_m}
    blocks = conflict_blocks(vols, **rules)
    if blocks is not None:  # one frame: found and written a block at a time, in order
        out = sys.stdout
        if isinstance(out, TerminalGuard) and all(
            v.id.isprintable() and v.party.isprintable() and (v.activity or "").isprintable() for v in vols
        ):
            out = out.inner  # what the guard would pass unchanged (JSON escapes the rest): not scanned again
        write_conflict_blocks(blocks, vols, out)
    else:  # an input wider than one frame: the whole table, then written
        write_conflicts(find_conflict_table(vols, **rules), vols, sys.stdout)


@user_errors
def tracks(
    tracks_csv: Annotated[Path, typer.Argument(help="CSV of track states ('-' for stdin).")],
    rpz_m: Annotated[float, typer.Option(help="Horizontal separation R, metres (above 0).")] = 9260.0,
    hpz_m: Annotated[float, typer.Option(help="Vertical separation H, metres (above 0).")] = 304.8,
    lookahead_s: Annotated[float, typer.Option(help="Look-ahead T, seconds (above 0).")] = 300.0,
) -> None:
    """Predict which pairs of tracks lose separation within the look-ahead; print JSON.

    Columns id,lat,lon,alt_ft,gs_kt,trk_deg,vs_fpm (WGS84 degrees, feet, knots, degrees
    from true north, feet per minute). Each track flies on in a straight line; two conflict
    when, at one moment of [0, T], they are less than R apart horizontally and less than H
    vertically. Prints {"conflicts": [{"a", "b", "tcpa_s", "dcpa_m", "t_in_s", "t_out_s"}]}.

    Example: deconflict tracks tracks.csv --rpz-m 9260 --hpz-m 304.8 --lookahead-s 300
    """
    from deconflict.formats.tracks_csv import read_tracks_csv, write_track_conflicts
    from deconflict.tactical import find_track_conflicts, one_shot_numba_from

    for name, value in (("--rpz-m", rpz_m), ("--hpz-m", hpz_m), ("--lookahead-s", lookahead_s)):
        if not value > 0 or value == float("inf"):
            raise fail(f"{name} must be a number above 0, got {value:g}")
    states = read_tracks_csv(read_text(tracks_csv), source=str(tracks_csv))
    table = find_track_conflicts(  # numba only where it pays for its start-up in this one-shot process
        states, rpz_m=rpz_m, hpz_m=hpz_m, lookahead_s=lookahead_s, numba_from=one_shot_numba_from()
    )
    write_track_conflicts(table, states, sys.stdout)


def conflict_json(c: Any) -> dict[str, Any]:
    """One VolumeConflict as the object ``check`` prints for it (``write_conflicts`` writes a whole table)."""
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


@mechanism_app.command("check")
@user_errors
def mechanism_check(path: Annotated[Path, typer.Argument(help="Mechanism file (TOML).")]) -> None:
    """Validate a mechanism file and summarise it.

    Example: deconflict mechanism check src/deconflict/scenarios/syria.toml
    """
    from deconflict.mechanisms import load_mechanism

    m = load_mechanism(path)
    typer.echo(
        f"{m.id}: {m.name}; {len(m.members)} members ({', '.join(x.id + '/' + x.role.value for x in m.members)}); "
        f"{len(m.zones)} zones; rules ok"
    )
