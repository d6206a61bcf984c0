"""Other systems' formats, in and out: ``deconflict import ...`` reads them into a mechanism,
``deconflict export ...`` writes the picture in them (and ``deconflict notam`` drafts one NOTAM).

Each format's own module under ``formats/`` does the reading and writing; this module opens the
database through the service, names the member whose view is written (``--as``: an export carries
only what that member may see, by the disclosure rules) or who makes the entries an import writes
(through the service's own use cases, so every rule applies), and words the outcome.

Other modules attach their subcommands to :data:`import_app` and :data:`export_app` (``import kml``,
``import ed269``, ``export kml``...): they are registered in ``cli/__init__``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from deconflict.cli.common import DEFAULT_DB, DbFileOpt, MechanismIdOpt, open_service, say, user_errors
from deconflict.errors import DeconflictError

if TYPE_CHECKING:
    from deconflict.model import Member
    from deconflict.service import Service

__all__ = ["AsMemberOpt", "OutOpt", "export_app", "export_geojson", "import_app", "reader"]

import_app = typer.Typer(help="Read other systems' formats into a mechanism.", no_args_is_help=True)
export_app = typer.Typer(help="Write the picture in other systems' formats.", no_args_is_help=True)

AsMemberOpt = Annotated[
    str,
    typer.Option(
        "--as",
        help="The member whose view is written, or who makes the entries (a member id, e.g. TR-1).",
    ),
]
OutOpt = Annotated[Path | None, typer.Option("--out", help="The file to write (default: standard output).")]


def reader(service: Service, mechanism: str, member_id: str) -> Member:
    """The member ``--as`` names, with a clear error when the mechanism or the member does not exist."""
    from deconflict.errors import NotFound

    service.mechanism(mechanism)  # NotFound names the mechanism
    try:
        return service.member(mechanism, member_id)
    except NotFound:
        raise DeconflictError(f"--as: {mechanism} has no member {member_id!r}", field="--as") from None


def write_out(text: str, out: Path | None) -> None:
    """``text`` to ``out``, or to standard output."""
    if out is None:
        say(text.rstrip("\n"))
    else:
        out.write_text(text if text.endswith("\n") else text + "\n", encoding="utf-8")


def picture_for(service: Service, mechanism: str, member: Member) -> dict[str, Any]:
    """The picture ``member`` may see now as an RFC 7946 FeatureCollection (formats/geojson)."""
    from deconflict.formats.geojson import picture_geojson

    return picture_geojson(
        mechanism_id=mechanism,
        reader=member,
        disclosure=service.mechanism(mechanism).rules.disclosure,
        activities=service.activities(mechanism),
        zones=service.zones(mechanism),
        conflicts=service.conflicts(mechanism),
        tracks=service.tracks(mechanism, reader=member),
    )


@export_app.command("geojson")
@user_errors
def export_geojson(
    as_member: AsMemberOpt,
    db: DbFileOpt = DEFAULT_DB,
    mechanism: MechanismIdOpt = "tr-il-syria",
    out: OutOpt = None,
) -> None:
    """Write the picture a member may see as RFC 7946 GeoJSON.

    Zones, notices, overlap parts and tracks: lon/lat, exterior rings counterclockwise, circles drawn
    as rings (centre and radius kept in the properties). Under conflicts-only another
    party's notice appears only as the parts that conflict with the member's own.

    Example: deconflict export geojson --db deconflict-demo.db --as TR-1 --out picture.geojson
    """
    service = open_service(db)
    member = reader(service, mechanism, as_member)
    write_out(json.dumps(picture_for(service, mechanism, member), ensure_ascii=False), out)
