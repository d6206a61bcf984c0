"""Your party's activities on a running service: ``notify`` a planned one, report track ``positions``,
list the ``activities`` you may see, ``amend`` or ``cancel`` one of yours."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path
from typing import Annotated, Any

import typer

from deconflict.cli.common import (
    activity_head,
    natural_key,
    parse_altitude,
    parse_instant,
    parse_shift,
    parse_time_option,
    read_json,
    read_text,
    safe_text,
    say,
    user_errors,
    utc_text,
    window_text,
)
from deconflict.cli.remote import (
    KeyOpt,
    TokenOpt,
    UrlOpt,
    client_for,
    outcome_lines,
    own_activity,
    signed_by,
)
from deconflict.errors import DeconflictError
from deconflict.units import FPM_MPS, FT_M, KT_MPS

__all__ = ["VOLUME_KEYS", "activities", "amend", "cancel", "notify", "positions"]

VOLUME_KEYS = ("id", "geometry", "radius_m", "floor_m", "ceiling_m", "start", "end")
"""The fields of a volume that an amendment sends (the rest of a volume document is the service's)."""

VersionOpt = Annotated[
    int | None,
    typer.Option(min=1, help="The version you looked at; refused if the activity has changed since."),
]


@user_errors
def notify(
    notice: Annotated[Path, typer.Argument(help='JSON: {"kind": ..., "volumes": [...], "id"?: ..., "title"?: ...}')],
    key: KeyOpt = None,
    url: UrlOpt = "http://127.0.0.1:8080",
    token: TokenOpt = "",
) -> None:
    """Notify a planned activity to a running service; with --key the entry is signed here, with your
    party's private key, so that nobody else (not the service's operator) could have made it.

    Example: deconflict notify patrol.json --key tr.key --token $TR
    """
    body = read_json(notice)
    if not isinstance(body, dict) or "kind" not in body or not isinstance(body.get("volumes"), list):
        raise DeconflictError(f"{notice}: expected an object with kind and a list of volumes")
    client = client_for(url, token, key)
    out = client.notify(kind=body["kind"], volumes=body["volumes"], id=body.get("id"), title=body.get("title", ""))
    typer.echo(f"{out['activity']['id']} notified (record now at entry {out['seq']}{signed_by(client)})")
    for c in out["raised"]:
        typer.echo(f"  conflict {c['id']}: {c['kind']}, deadline {utc_text(c['deadline'])}")


@user_errors
def positions(
    path: Annotated[
        Path | None,
        typer.Argument(
            help="CSV: id,lat,lon,alt_ft,gs_kt,trk_deg,vs_fpm (as 'deconflict tracks').", show_default=False
        ),
    ] = None,
    at: Annotated[
        str | None, typer.Option(help="When the positions were measured, ISO 8601 UTC (default: now).")
    ] = None,
    sbs: Annotated[
        str | None,
        typer.Option(help="Instead of a file, a live ADS-B receiver's BaseStation feed, HOST:PORT (TCP 30003)."),
    ] = None,
    beast: Annotated[
        str | None,
        typer.Option(help="Instead of a file, a receiver's Mode S Beast feed, HOST:PORT (TCP 30005; pyModeS)."),
    ] = None,
    aircraft_json: Annotated[
        str | None,
        typer.Option(help="Instead of a file, poll a readsb/dump1090 aircraft.json every second: URL or file."),
    ] = None,
    icao: Annotated[
        list[str] | None,
        typer.Option(help="Live feeds: send only this aircraft, by ICAO hex (repeat; default: all heard)."),
    ] = None,
    once: Annotated[bool, typer.Option("--once", help="--aircraft-json: read it once, send, stop.")] = False,
    url: UrlOpt = "http://127.0.0.1:8080",
    token: TokenOpt = "",
) -> None:
    """Send your party's track positions to a running service (one batch: all stored, or none) and print the
    conflicts they raise: predicted loss of separation, a track outside your notices, a track in another's.

    With --sbs, --beast or --aircraft-json it keeps your picture fed from a live ADS-B receiver:
    aircraft merged by ICAO address, a batch every second, reconnecting when the feed drops;
    a bad line is skipped with a warning naming it; Ctrl-C stops.

    Example: deconflict positions tracks.csv --token $TR
    (live: deconflict positions --sbs 127.0.0.1:30003 --icao 738065 --token $TR)
    """
    from datetime import UTC, datetime

    from deconflict.clock import iso

    live = {"sbs": sbs, "beast": beast, "aircraft-json": aircraft_json}
    given = [(k, v) for k, v in live.items() if v is not None]
    if len(given) + (path is not None) != 1:
        raise DeconflictError("give one source: a CSV file, --sbs or --beast HOST:PORT, or --aircraft-json URL|FILE")
    if path is None:
        if at is not None:  # it was ignored without a word
            raise DeconflictError("--at is for a CSV file: a live feed's positions carry the time each was heard")
        _feed(*given[0], icao or [], once=once, client=client_for(url, token))
        return
    if icao or once:
        raise DeconflictError("--icao and --once are for live feeds (--sbs, --beast, --aircraft-json), not a CSV")
    from deconflict.formats.tracks_csv import read_tracks_csv

    measured = parse_instant(at, "--at")  # the option as typed ('at:' before), and before the file is read
    # the CSV's own errors name row and column, and so do the ids the service would refuse
    tracks = read_tracks_csv(read_text(path), source=str(path), service_ids=True)
    if not tracks.ids:  # the service's own words were "reports: needs at least 1 item"
        raise DeconflictError(f"{path}: no track in the file, only its header: nothing to send")
    when = iso(measured or datetime.now(UTC))
    reports = [
        {
            "id": tracks.ids[i],
            "at": when,
            "lat": float(tracks.lat_deg[i]),
            "lon": float(tracks.lon_deg[i]),
            "alt_ft": round(float(tracks.alt_m[i]) / FT_M, 3),
            "gs_kt": round(float(tracks.gs_mps[i]) / KT_MPS, 3),
            "trk_deg": float(tracks.trk_deg[i]) % 360.0,
            "vs_fpm": round(float(tracks.vs_mps[i]) / FPM_MPS, 3),
        }
        for i in range(len(tracks))
    ]
    _print_stored(client_for(url, token).report_tracks(reports))


def _print_stored(out: dict[str, Any]) -> None:
    typer.echo(f"{out['stored']} positions stored")
    for c in out["raised"]:
        other = f" and {c['other_activity']}" if c.get("other_activity") else ""
        typer.echo(
            f"  conflict {c['id']}: {c['kind']}, {c['activity']}{other}; acknowledge by {utc_text(c['deadline'])}"
        )
    for cid in out["cleared"]:
        typer.echo(f"  conflict {cid} cleared")


def _feed(kind: str, source: str, icao: list[str], *, once: bool, client: Any) -> None:
    """Keep the member's picture fed from a live receiver until Ctrl-C (formats/_adsb_feed.follow)."""
    from datetime import UTC, datetime

    from deconflict.client import raise_for
    from deconflict.clock import parse_utc
    from deconflict.formats._adsb_feed import follow, retime

    def post(reports: list[dict[str, Any]]) -> None:
        # the reports' times onto the service's clock, which decides what is stale or in the future
        me = client.http.get("/me")
        raise_for(me)
        offset = parse_utc(me.json()["now"], field="now") - datetime.now(UTC)
        _print_stored(client.report_tracks(retime(reports, offset)))

    def warn(text: str) -> None:
        typer.echo(f"warning: {safe_text(text)}", err=True)

    only = frozenset(h.strip().upper() for h in icao)
    stats = follow(kind, source, post, only=only, once=once, say=lambda t: typer.echo(t, err=True), warn=warn)
    if not once:
        typer.echo(f"stopped: {stats.summary()}", err=True)


@user_errors
def activities(
    all_: Annotated[bool, typer.Option("--all", help="Also cancelled and ended activities.")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="The activities as JSON.")] = False,
    url: UrlOpt = "http://127.0.0.1:8080",
    token: TokenOpt = "",
) -> None:
    """The activities you may see on a running service: id, party, kind, current version, state, windows, band.

    Example: deconflict activities --token $TR
    """
    client = client_for(url, token)
    found = sorted(client.activities(include_closed=all_), key=lambda a: natural_key(a["id"]))
    if as_json:
        say(json.dumps(found, ensure_ascii=False, indent=2))
        return
    if not found:  # as `conflicts` says (it printed nothing)
        say("no activities" if all_ else "no activities in force or to come")
    for a in found:
        if a.get("partial"):
            say(
                safe_text(f"{a['id']}  {a['party']}  {a.get('kind', '')}")
                + "  (only the part in conflict with yours is shown)"
            )
            continue
        vols = a.get("volumes") or []
        band = f"{min(v['floor_m'] for v in vols):g}–{max(v['ceiling_m'] for v in vols):g} m" if vols else ""
        say(safe_text(f"{activity_head(a)}  {a['state']}  {window_text(a['start'], a['end'])}  {band}"))


@user_errors
def amend(
    activity: Annotated[str, typer.Argument(help="Your activity's id, e.g. TR-0003.")],
    file: Annotated[
        Path | None,
        typer.Option("--file", help="JSON with what changes: kind, title and/or volumes (replaces them all)."),
    ] = None,
    start: Annotated[str | None, typer.Option(help="New start, UTC, e.g. 2026-12-02T08:00Z.")] = None,
    end: Annotated[str | None, typer.Option(help="New end, UTC.")] = None,
    shift: Annotated[
        str | None, typer.Option(help="Move the whole window: +2h later, -30m earlier, +1h30m ...")
    ] = None,
    floor: Annotated[
        str | None, typer.Option(help="New floor: metres above sea level (1500), feet (5000ft) or FL50.")
    ] = None,
    ceiling: Annotated[str | None, typer.Option(help="New ceiling: metres (4500), feet (15000ft) or FL150.")] = None,
    radius_m: Annotated[float | None, typer.Option(help="New radius of a circle footprint, metres.")] = None,
    lat: Annotated[float | None, typer.Option(min=-90, max=90, help="New centre latitude of a circle.")] = None,
    lon: Annotated[float | None, typer.Option(min=-180, max=180, help="New centre longitude of a circle.")] = None,
    kind: Annotated[str | None, typer.Option(help="New kind, e.g. uav_patrol.")] = None,
    title: Annotated[str | None, typer.Option(help="New title.")] = None,
    volume: Annotated[
        list[str] | None, typer.Option(help="Change only this volume (repeat; default: every volume).")
    ] = None,
    version: VersionOpt = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Show what would change and send nothing.")] = False,
    key: KeyOpt = None,
    url: UrlOpt = "http://127.0.0.1:8080",
    token: TokenOpt = "",
) -> None:
    """Amend one of your activities on a running service: a new version with only what you give changed
    (the rest is read from the current version). Its open conflicts close as amended and the new version
    is checked again; the conflicts it raises are printed.

    Example: deconflict amend TR-0003 --shift +2h --token $TR
    (also: --start 2026-12-02T10:00Z --end 2026-12-02T12:00Z, --floor FL100 --ceiling 4500, --radius-m 8000)
    """
    import copy

    from deconflict.clock import iso

    if shift is not None and (start is not None or end is not None):
        raise DeconflictError("give either --shift (move the window) or --start/--end (set it), not both")
    delta: timedelta | None = parse_shift(shift) if shift is not None else None
    new_start = parse_time_option(start, "--start") if start is not None else None
    new_end = parse_time_option(end, "--end") if end is not None else None
    new_floor = parse_altitude(floor, "--floor") if floor is not None else None
    new_ceiling = parse_altitude(ceiling, "--ceiling") if ceiling is not None else None
    if radius_m is not None and not 0 < radius_m <= 500_000:
        raise DeconflictError(f"--radius-m: {radius_m:g} is not a radius; give metres above 0 (at most 500 km)")
    changes_file = _read_amendment(file, activity) if file is not None else {}

    client = client_for(url, token, key)
    current = own_activity(client, activity, version=version)
    seen = int(current["version"])
    if changes_file.get("version") not in (None, seen):
        raise DeconflictError(
            f"{file}: written for version {changes_file['version']}, but {activity} is now at version {seen}"
        )
    new = {
        "kind": changes_file.get("kind", current["kind"]) if kind is None else kind,
        "title": changes_file.get("title", current.get("title", "")) if title is None else title,
        "volumes": [
            _volume_fields(v) if isinstance(v, dict) else v
            for v in copy.deepcopy(changes_file.get("volumes", current["volumes"]))
        ],
    }
    ids = [v.get("id") if isinstance(v, dict) else None for v in new["volumes"]]
    chosen = set(volume or [v for v in ids if v is not None])
    missing = sorted(chosen - set(ids))
    if missing:
        raise DeconflictError(
            f"--volume: {activity} has no volume {', '.join(missing)} (its volumes: {', '.join(map(str, ids))})",
            field="--volume",
        )
    for v in new["volumes"]:
        if not isinstance(v, dict) or v.get("id") not in chosen:
            continue
        where = f"volume {v['id']}" if len(new["volumes"]) > 1 else activity
        if delta is not None:
            v["start"] = iso(parse_time_option(v["start"], "start") + delta)
            v["end"] = iso(parse_time_option(v["end"], "end") + delta)
        if new_start is not None:
            v["start"] = iso(new_start)
        if new_end is not None:
            v["end"] = iso(new_end)
        if new_floor is not None:
            v["floor_m"] = new_floor
        if new_ceiling is not None:
            v["ceiling_m"] = new_ceiling
        circle = (v.get("geometry") or {}).get("type") == "Point"
        if (radius_m is not None or lat is not None or lon is not None) and not circle:
            raise DeconflictError(
                f"{where} has a polygon footprint: --radius-m, --lat and --lon change circles only; "
                "give the new footprint in a file with --file",
                field="--radius-m",
            )
        if radius_m is not None:
            v["radius_m"] = radius_m
        if lat is not None or lon is not None:
            x, y = v["geometry"]["coordinates"][:2]
            v["geometry"] = {
                "type": "Point",
                "coordinates": [lon if lon is not None else x, lat if lat is not None else y],
            }
        if parse_time_option(v["end"], "end") <= parse_time_option(v["start"], "start"):
            raise DeconflictError(
                f"{where}: the window would end ({utc_text(v['end'])}) before it starts ({utc_text(v['start'])}); "
                "give both --start and --end",
                field="--end",
            )
        if float(v["floor_m"]) >= float(v["ceiling_m"]):
            raise DeconflictError(
                f"{where}: the floor ({float(v['floor_m']):g} m) would not be below the ceiling "
                f"({float(v['ceiling_m']):g} m); give both --floor and --ceiling",
                field="--floor",
            )
    old = {
        "kind": current["kind"],
        "title": current.get("title", ""),
        "volumes": [_volume_fields(v) for v in current["volumes"]],
    }
    described = _describe_changes(old, new)
    if not described:
        raise DeconflictError(
            "nothing to change: give what changes, e.g. --shift +2h, --start/--end, --floor/--ceiling, "
            "--radius-m, --kind, --title or --file"
        )
    if dry_run:
        say(f"{activity} version {seen} would become version {seen + 1} (nothing sent):")
        for line in described:
            say(f"  {line}")
        return
    # the kind and title always sent, changed or not: signed with --key, the client then holds the prepared
    # version to them too (a service could otherwise turn a patrol into live fire under an amended window)
    body: dict[str, Any] = {"volumes": new["volumes"], "kind": new["kind"], "title": new["title"]}
    out = client.amend(activity, version=seen, **body)
    a = out["activity"]
    say(f"{a['id']} amended: version {seen} → {a['version']} (record now at entry {out['seq']}{signed_by(client)})")
    for line in described:
        say(f"  {line}")
    for line in outcome_lines(out, "amended"):
        say(line)


@user_errors
def cancel(
    activity: Annotated[str, typer.Argument(help="Your activity's id, e.g. TR-0003.")],
    version: VersionOpt = None,
    key: KeyOpt = None,
    url: UrlOpt = "http://127.0.0.1:8080",
    token: TokenOpt = "",
) -> None:
    """Cancel one of your activities on a running service; its open conflicts close.

    Example: deconflict cancel TR-0003 --token $TR
    """
    client = client_for(url, token, key)
    own_activity(client, activity, version=version)
    out = client.cancel(activity, version=version)
    a = out["activity"]
    say(f"{a['id']} cancelled: version {a['version']} (record now at entry {out['seq']}{signed_by(client)})")
    for line in outcome_lines(out, "activity cancelled"):
        say(line)


# --- amend's helpers -----------------------------------------------------------------------------


def _volume_fields(v: dict[str, Any]) -> dict[str, Any]:
    """The fields of a volume an amendment sends (:data:`VOLUME_KEYS`), those that are set."""
    return {k: v[k] for k in VOLUME_KEYS if k in v and v[k] is not None}


def _read_amendment(path: Path, activity_id: str) -> dict[str, Any]:
    """A JSON file with what changes: kind, title and/or volumes (a notice file as 'notify' reads will do)."""
    doc = read_json(path)
    if not isinstance(doc, dict):
        raise DeconflictError(f"{path}: expected an object with kind, title and/or volumes")
    unknown = sorted(set(doc) - {"kind", "title", "volumes", "id", "version"})
    if unknown:
        raise DeconflictError(f"{path}: {', '.join(unknown)} cannot be amended (give kind, title and/or volumes)")
    if doc.get("id") not in (None, activity_id):
        raise DeconflictError(f"{path}: it is about activity {doc['id']!r}, not {activity_id!r}")
    if "volumes" in doc and (not isinstance(doc["volumes"], list) or not doc["volumes"]):
        raise DeconflictError(f"{path}: volumes must be a list of at least one volume")
    return doc


def _describe_changes(old: dict[str, Any], new: dict[str, Any]) -> list[str]:
    """What an amendment changes, in words, volume by volume."""
    lines = []
    if old["kind"] != new["kind"]:
        lines.append(f"kind {old['kind']} → {new['kind']}")
    if (old.get("title") or "") != (new.get("title") or ""):
        lines.append(f"title {old.get('title')!r} → {new.get('title')!r}")
    before = {v.get("id"): v for v in old["volumes"]}
    after = {v.get("id"): v for v in new["volumes"]}
    for vid, v in after.items():
        was = before.get(vid)
        if was is None:
            lines.append(
                f"{vid}: new volume, {window_text(v['start'], v['end'])}, {v['floor_m']:g}–{v['ceiling_m']:g} m"
            )
            continue
        if (was["start"], was["end"]) != (v["start"], v["end"]):
            lines.append(f"{vid}: window {window_text(was['start'], was['end'])} → {window_text(v['start'], v['end'])}")
        if (was["floor_m"], was["ceiling_m"]) != (v["floor_m"], v["ceiling_m"]):
            lines.append(
                f"{vid}: band {was['floor_m']:g}–{was['ceiling_m']:g} m → {v['floor_m']:g}–{v['ceiling_m']:g} m"
            )
        if (was.get("geometry"), was.get("radius_m")) != (v.get("geometry"), v.get("radius_m")):
            lines.append(f"{vid}: footprint {_footprint(was)} → {_footprint(v)}")
    for vid in before.keys() - after.keys():
        lines.append(f"{vid}: removed")
    return lines


def _footprint(v: dict[str, Any]) -> str:
    g = v.get("geometry") or {}
    if g.get("type") == "Point" and v.get("radius_m"):
        lon, lat = g["coordinates"][:2]
        return f"circle {float(v['radius_m']) / 1000:g} km around {lat:.4f}, {lon:.4f}"
    return f"{g.get('type', '?')} footprint"
