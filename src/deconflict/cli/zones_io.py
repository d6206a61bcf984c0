"""``deconflict export kml``, ``import kml`` and ``import ed269``: the picture as KML/KMZ, and zones and
footprints from KML or from published UAS geographical zone files (ED-269, ED-318).

The formats are read and written in ``formats/kml.py``, ``formats/kml_read.py`` and ``formats/ed269.py``;
this module opens the database through the service, names the member (``--as``: the export carries only
what that member may see; an import's entries are that member's), and stores through the service's own
use cases. An import checks every zone or volume first, each through the service itself (a prepared run
that writes nothing), so a bad file stores nothing and the error names the element.

Nothing heavier than Typer is imported until a command runs.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from deconflict.cli.common import (
    DEFAULT_DB,
    DbFileOpt,
    MechanismChoiceOpt,
    catch_up,
    chosen_mechanism,
    open_service,
    parse_altitude,
    parse_time_option,
    say,
    user_errors,
)
from deconflict.cli.interop import AsMemberOpt, OutOpt, reader
from deconflict.errors import DeconflictError

if TYPE_CHECKING:
    from deconflict.record.signing import KeyPair
    from deconflict.service import Outcome, Service

__all__ = ["export_kml", "import_ed269", "import_kml", "register"]

ForbidOpt = Annotated[
    list[str] | None,
    typer.Option("--forbid", help="An activity kind the zones forbid (repeat for several), e.g. uav_patrol."),
]
KeyOpt = Annotated[
    Path | None, typer.Option(help="Your party's private key file, if it signs its own entries: each is signed here.")
]
DryRunOpt = Annotated[
    bool, typer.Option("--dry-run", help="Check everything and say what would be stored; store nothing.")
]


@user_errors
def export_kml(
    as_member: AsMemberOpt,
    db: DbFileOpt = DEFAULT_DB,
    mechanism: MechanismChoiceOpt = None,
    out: OutOpt = None,
) -> None:
    """Write the picture a member may see as KML (KMZ when --out ends in .kmz).

    For Google Earth or any GIS: zones and activity volumes at their ceiling, extruded,
    floor and ceiling in metres above sea level; windows as TimeSpans; conflicts where
    they are; tracks with their time; a folder each, styled by party and kind. Under
    conflicts-only another party's notice appears only as the parts that conflict with
    the member's own.

    An --out ending in anything but .kml or .kmz is refused.

    Example: deconflict export kml --db deconflict-demo.db --as TR --out picture.kmz
    """
    from deconflict.formats.kml import picture_kml, to_kmz

    if out is not None and out.suffix.lower() not in (".kml", ".kmz"):
        raise DeconflictError(
            f"--out: {out.name} ends in {out.suffix or 'no suffix'}, but a KML picture is written to a .kml or "
            ".kmz file (e.g. picture.kmz)",
            field="--out",
        )
    service = open_service(db, read_only=True)
    mechanism = chosen_mechanism(service, mechanism, db)
    member = reader(service, mechanism, as_member)
    text = picture_kml(
        mechanism_id=mechanism,
        reader=member,
        disclosure=service.mechanism(mechanism).rules.disclosure,
        activities=service.activities(mechanism),
        zones=service.zones(mechanism),
        conflicts=service.conflicts(mechanism),
        tracks=service.tracks(mechanism, reader=member),
        at=service.clock(),
    )
    if out is not None and out.suffix.lower() == ".kmz":
        out.write_bytes(to_kmz(text))
    elif out is not None:
        out.write_text(text, encoding="utf-8")
    else:
        say(text.rstrip("\n"))


def _prepared(call: Callable[[Any], Outcome]) -> dict[str, Any]:
    """Run a use case with every check and nothing written: the entry it would append."""
    from deconflict.service import Prepared, SignatureMode

    try:
        call(SignatureMode(prepare=True))
    except Prepared as p:
        return p.entry
    raise AssertionError("a prepared use case stops at its entry")  # pragma: no cover


def _write(call: Callable[[Any], Outcome], key: KeyPair | None) -> Outcome:
    """Run a use case for real: signed by a key the service holds, or (``key``) prepared, signed here, sent."""
    from deconflict.clock import parse_utc
    from deconflict.service import SignatureMode, Signed

    if key is None:
        return call(None)
    entry = _prepared(call)
    signed = Signed(
        at=parse_utc(entry["at"], field="at"),
        entry_hash=str(entry["hash"]),
        key_id=key.key_id,
        signature=key.sign_entry(str(entry["hash"])),
    )
    return call(SignatureMode(signed=signed))


def _raised(out: Outcome) -> str:
    from deconflict.cli.common import utc_text

    return "".join(f"\n  conflict {c['id']}: {c['kind']}, deadline {utc_text(c.get('deadline'))}" for c in out.raised)


def _store_zones(
    service: Service, mechanism: str, actor: str, docs: list[dict[str, Any]], *, dry_run: bool, key: KeyPair | None
) -> None:
    """Each zone through ``declare_zone`` prepared (every check, nothing written), then each for real.

    A zone is one record entry, so the file is not one transaction: should a zone be refused after the
    prepared pass (another writer took its id meanwhile), the error says which zones were stored before it.
    """

    def declare(doc: dict[str, Any]) -> Callable[[Any], Outcome]:
        return lambda mode: service.declare_zone(mechanism_id=mechanism, actor=actor, zone=doc, mode=mode)

    for doc in docs:
        _prepared(declare(doc))
    if not dry_run:
        catch_up(service)
    stored: list[str] = []
    for doc in docs:
        if dry_run:
            say(f"zone {doc['id']} would be declared: {doc['kind']}, forbids {', '.join(doc['forbids'])}")
            continue
        try:
            out = _write(declare(doc), key)
        except DeconflictError as e:
            if not stored:
                raise
            raise DeconflictError(f"{e.message} (zones stored before it: {', '.join(stored)})", field=e.field) from None
        stored.append(doc["id"])
        say(f"zone {doc['id']} declared (record now at entry {out.seq}){_raised(out)}")


def _key(path: Path | None, party: str) -> KeyPair | None:
    """The party's own key from ``--key`` (None: the service signs with a key it holds)."""
    from deconflict.record import signing

    if path is None:
        return None
    owner, pair = signing.read_key_file(path)
    if owner != party:
        raise DeconflictError(f"--key: {path} is {owner}'s key, not {party}'s", field="--key")
    return pair


@user_errors
def import_kml(
    file: Annotated[Path, typer.Argument(help="A .kml or .kmz file.")],
    as_member: AsMemberOpt,
    zones: Annotated[bool, typer.Option("--zones", help="Each Placemark declares a zone of your party.")] = False,
    activity: Annotated[
        str | None, typer.Option("--activity", help="Notify one activity of this kind, a volume per Placemark.")
    ] = None,
    db: DbFileOpt = DEFAULT_DB,
    mechanism: MechanismChoiceOpt = None,
    folder: Annotated[str | None, typer.Option(help="Only the Placemarks in the folder of this name.")] = None,
    kind: Annotated[str, typer.Option(help="Zones: their kind, unless a Placemark says.")] = "restricted",
    forbid: ForbidOpt = None,
    valid_from: Annotated[str | None, typer.Option(help="Zones: in force from (default: now).")] = None,
    valid_to: Annotated[str | None, typer.Option(help="Zones: in force until (default: no end).")] = None,
    start: Annotated[str | None, typer.Option(help="Activity: the window's start, unless a Placemark says.")] = None,
    end: Annotated[str | None, typer.Option(help="Activity: the window's end, unless a Placemark says.")] = None,
    floor: Annotated[str | None, typer.Option(help="Floor (1500, 5000ft, FL50), unless a Placemark says.")] = None,
    ceiling: Annotated[str | None, typer.Option(help="Ceiling, unless a Placemark says.")] = None,
    activity_id: Annotated[str | None, typer.Option("--id", help="Activity: its id (default: the next).")] = None,
    title: Annotated[str, typer.Option(help="Activity: its title.")] = "",
    key: KeyOpt = None,
    dry_run: DryRunOpt = False,
) -> None:
    """Read zones (--zones) or one activity's footprints (--activity KIND) from KML or KMZ.

    A Placemark is a Polygon, a MultiGeometry of polygons, or a Point with radius_m in
    its ExtendedData. Altitudes: floor_m/ceiling_m in ExtendedData, else absolute
    altitudes, else --floor/--ceiling; windows: the TimeSpan, else the options. Every
    Placemark is checked by the service before anything is stored; an error names the
    Placemark (number and name) and what is wrong.

    Example: deconflict import kml areas.kml --db deconflict-demo.db --as TR --zones --forbid deployment
    """
    from deconflict.formats.kml_read import read_kml, volume_docs, zone_docs

    if zones == (activity is not None):
        raise DeconflictError("give --zones or --activity KIND (one of them)", field="--zones")
    service = open_service(db)
    mechanism = chosen_mechanism(service, mechanism, db)
    member = reader(service, mechanism, as_member)
    if not file.is_file():
        raise DeconflictError(f"{file}: no such file")
    marks = read_kml(file.read_bytes(), source=str(file), folder=folder)
    band = {
        "floor_m": parse_altitude(floor, "--floor") if floor else None,
        "ceiling_m": parse_altitude(ceiling, "--ceiling") if ceiling else None,
    }
    _say_own_bands(marks, band)
    if zones:
        m = service.mechanism(mechanism)
        defaults = band | {
            "kind": kind,
            "forbids": forbid or [],
            "valid_from": parse_time_option(valid_from, "--valid-from") if valid_from else service.clock(),
            "valid_to": parse_time_option(valid_to, "--valid-to") if valid_to else None,
        }
        docs = zone_docs(marks, mechanism=mechanism, party=member.party, parties=m.parties(), defaults=defaults)
        _store_zones(service, mechanism, member.id, docs, dry_run=dry_run, key=_key(key, member.party))
        return
    window = {
        "start": parse_time_option(start, "--start") if start else None,
        "end": parse_time_option(end, "--end") if end else None,
    }
    volumes = volume_docs(marks, party=member.party, defaults=band | window)
    args = {"mechanism_id": mechanism, "kind": activity, "volumes": volumes, "activity_id": activity_id, "title": title}
    _notify(service, member.id, args, dry_run=dry_run, key=_key(key, member.party))


def _say_own_bands(marks: list[Any], band: dict[str, float | None]) -> None:
    """A Placemark's own altitudes (ExtendedData, or absolute altitudes) come before --floor and --ceiling, as
    documented; an officer who typed them is told where they did not apply (an interop walk-through: --floor 1000
    --ceiling 2000 stored as -500 to 3000 m without a word)."""
    for m in marks:
        own = [
            f"{option} {m_value:g} m"
            for option, key, m_value in (("floor", "floor_m", m.floor_m), ("ceiling", "ceiling_m", m.ceiling_m))
            if band[key] is not None and m_value is not None and m_value != band[key]
        ]
        if own:
            say(f"note: {m.where}: its own {' and '.join(own)} (from the file) used, not the --floor/--ceiling given")


def _notify(service: Service, actor: str, args: dict[str, Any], *, dry_run: bool, key: KeyPair | None) -> None:
    def notify(mode: Any) -> Outcome:
        return service.notify(actor=actor, **args, mode=mode)

    _prepared(notify)
    if dry_run:
        say(f"a {args['kind']} of {len(args['volumes'])} volume(s) would be notified")
        return
    catch_up(service)
    out = _write(notify, key)
    assert out.activity is not None
    say(f"{out.activity.id} notified: {len(args['volumes'])} volume(s) (record now at entry {out.seq}){_raised(out)}")


@user_errors
def import_ed269(
    file: Annotated[Path, typer.Argument(help="An ED-269 (or ED-318) UAS geographical zone file, JSON.")],
    as_member: AsMemberOpt,
    db: DbFileOpt = DEFAULT_DB,
    mechanism: MechanismChoiceOpt = None,
    ground_max_m: Annotated[
        float | None, typer.Option(help="Highest ground under the zones, metres AMSL (needed for AGL ceilings).")
    ] = None,
    ground_min_m: Annotated[float, typer.Option(help="Lowest ground under the zones, metres AMSL.")] = -500.0,
    horizon_days: Annotated[float, typer.Option(help="Scheduled zones: occurrences this many days ahead.")] = 7.0,
    forbid: ForbidOpt = None,
    key: KeyOpt = None,
    dry_run: DryRunOpt = False,
) -> None:
    """Declare a published UAS zone file's zones (ED-269 or ED-318) as your party's.

    PROHIBITED, REQ_AUTHORISATION and CONDITIONAL zones forbid uav_patrol (--forbid to
    say otherwise); NO_RESTRICTION zones are left out. Feet become metres. There is no
    terrain model, so AGL limits are made conservative: give --ground-max-m. A schedule
    becomes one zone per occurrence within --horizon-days. Every zone is checked by the
    service before any is stored; an error names the feature and the field.

    Example: deconflict import ed269 zones.json --db deconflict-demo.db --as TR --ground-max-m 1500
    """
    from datetime import timedelta

    from deconflict.cli.common import read_json
    from deconflict.formats.ed269 import Ground, zones_from_file

    service = open_service(db)
    mechanism = chosen_mechanism(service, mechanism, db)
    member = reader(service, mechanism, as_member)
    if not 0 < horizon_days <= 366:
        raise DeconflictError("--horizon-days: give a number of days from above 0 up to 366", field="--horizon-days")
    docs, notes = zones_from_file(
        read_json(file),
        source=str(file),
        mechanism=mechanism,
        party=member.party,
        parties=service.mechanism(mechanism).parties(),
        area=service.mechanism(mechanism).area,
        now=service.clock(),
        ground=Ground(min_m=ground_min_m, max_m=ground_max_m),
        horizon=timedelta(days=horizon_days),
        forbids=forbid,
    )
    for note in notes:
        say(f"{'note' if 'outside the mechanism' in note else 'left out'}: {note}")
    _store_zones(service, mechanism, member.id, docs, dry_run=dry_run, key=_key(key, member.party))


def register(import_app: typer.Typer, export_app: typer.Typer) -> None:
    """Attach ``import kml``, ``import ed269`` and ``export kml`` to the ``import`` and ``export`` groups."""
    import_app.command("kml")(import_kml)
    import_app.command("ed269")(import_ed269)
    export_app.command("kml")(export_kml)
