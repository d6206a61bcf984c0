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

from deconflict.cli.common import (
    DEFAULT_DB,
    DbFileOpt,
    MechanismChoiceOpt,
    catch_up,
    chosen_mechanism,
    open_service,
    say,
    user_errors,
)
from deconflict.errors import DeconflictError

if TYPE_CHECKING:
    from deconflict.model import Member
    from deconflict.record.signing import KeyPair
    from deconflict.service import Outcome, Service, SignatureMode

__all__ = [
    "AsMemberOpt",
    "OutOpt",
    "export_app",
    "all_notams",
    "export_geojson",
    "export_notam",
    "import_app",
    "import_notam",
    "import_notams",
    "notam",
    "notam_text",
    "picture_for",
    "reader",
    "write_out",
]

import_app = typer.Typer(help="Read other systems' formats into a mechanism.", no_args_is_help=True)
export_app = typer.Typer(help="Write the picture in other systems' formats.", no_args_is_help=True)

AsMemberOpt = Annotated[
    str,
    typer.Option(
        "--as",
        help="The member whose view is written, or who makes the entries (a member id, e.g. TR).",
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
    mechanism: MechanismChoiceOpt = None,
    out: OutOpt = None,
) -> None:
    """Write the picture a member may see as RFC 7946 GeoJSON.

    Zones, notices, overlap parts and tracks: lon/lat, exterior rings counterclockwise,
    circles drawn as rings (centre and radius kept in the properties). Under
    conflicts-only another party's notice appears only as the parts that conflict with
    the member's own.

    Example: deconflict export geojson --db deconflict-demo.db --as TR --out picture.geojson
    """
    service = open_service(db, read_only=True)
    mechanism = chosen_mechanism(service, mechanism, db)
    member = reader(service, mechanism, as_member)
    write_out(json.dumps(picture_for(service, mechanism, member), ensure_ascii=False), out)


# --- NOTAM ---------------------------------------------------------------------------------------

FIELD_ITEMS = {
    "start": "B",
    "valid_from": "B",
    "end": "C",
    "valid_to": "C",
    "floor_m": "F",
    "ceiling_m": "G",
    "kind": "Q",
    "geometry": "E",
    "radius_m": "E",
}
"""The NOTAM item a field the service refuses was read from (anything else: item E)."""


def notam_text(service: Service, mechanism: str, member: Member, target: str) -> str:
    """The draft NOTAM of the activity or zone ``target`` as ``member`` may read it.

    An activity the member may not see whole (another party's, under conflicts-only) is answered as one
    that does not exist (disclosure.sees_whole_notices): a NOTAM carries the whole notice.

    Raises:
        NotFound: no activity or zone ``target`` the member may see (one answer for both, as the API's).
        InvalidState: the activity is cancelled or ended (by its state, as the API's NOTAM route).
        InvalidInput: its centre is in no FIR known.
    """
    from deconflict.errors import NotFound
    from deconflict.formats.notam import reader_activity_notam, zone_notam

    zones = {z["id"]: z for z in service.zones(mechanism)}
    if target in zones:
        return zone_notam(zones[target])
    try:
        activity = service.activity(mechanism, target)
    except NotFound:
        activity = None
    disclosure = service.mechanism(mechanism).rules.disclosure
    text = None if activity is None else reader_activity_notam(activity, member, disclosure)
    if text is None and activity is not None:  # seen in part (in a conflict the member sees): said why, as the API
        from deconflict.disclosure import sees_conflict
        from deconflict.service.queries import no_notam_in_part

        if any(sees_conflict(member, c) for c in service.conflicts(mechanism, activities={activity.id})):
            raise no_notam_in_part(target)
    if text is None:  # one answer for what does not exist and what the reader may not see; zones too
        raise NotFound(f"no activity or zone {target!r} that you may see", field="activity")
    return text


@user_errors
def notam(
    target: Annotated[str, typer.Argument(help="An activity id (e.g. TR-0003) or a zone id.")],
    as_member: AsMemberOpt,
    db: DbFileOpt = DEFAULT_DB,
    mechanism: MechanismChoiceOpt = None,
    out: OutOpt = None,
) -> None:
    """Draft the ICAO NOTAM of an activity or a zone.

    Q-line (FIR, code from the kind, flight levels, centre to the minute, radius in NM
    covering every volume) and items A to G; item E says each volume exactly. Only what
    the member may see: another party's activity under conflicts-only is unknown to it.

    Example: deconflict notam TR-0003 --db deconflict-demo.db --as TR
    """
    service = open_service(db, read_only=True)
    mechanism = chosen_mechanism(service, mechanism, db)
    member = reader(service, mechanism, as_member)
    write_out(notam_text(service, mechanism, member, target), out)


def all_notams(service: Service, mechanism: str, member: Member) -> tuple[list[str], list[str]]:
    """(the draft NOTAM of every live activity ``member`` may see whole and of every zone in force, numbered
    from 1 in that order; why any was left out, one line each).

    Live is the API's NOTAM rule (formats.notam.not_live): a cancelled or ended activity has none, and
    so has one whose every window has ended by the service's clock, whatever its state says (the duty
    loop moves it on a little later): ``import notam`` refuses such a notice, so the file reads back.
    What the member may not see whole is neither written nor counted."""
    from deconflict.cli.common import utc_text
    from deconflict.disclosure import sees_whole_notices
    from deconflict.formats.notam import not_live, reader_activity_notam, zone_notam

    disclosure = service.mechanism(mechanism).rules.disclosure
    now = service.clock()
    texts: list[str] = []
    left_out: list[str] = []
    for activity in service.activities(mechanism):
        if not sees_whole_notices(member, disclosure, activity.party):
            continue
        if why := not_live(activity, now):
            ends = [v.end for v in activity.volumes if v.end is not None]
            last = f", its last window ended {utc_text(max(ends).isoformat())}" if why == "ended" and ends else ""
            left_out.append(f"{activity.id}: {why}{last}")
            continue
        try:
            text = reader_activity_notam(activity, member, disclosure, number=len(texts) + 1, now=now)
        except DeconflictError as e:
            left_out.append(f"{activity.id}: {e.message}")
            continue
        if text is not None:
            texts.append(text)
    for zone in service.zones(mechanism):
        try:
            texts.append(zone_notam(zone, number=len(texts) + 1))
        except DeconflictError as e:
            left_out.append(f"zone {zone['id']}: {e.message}")
    return texts, left_out


@export_app.command("notam")
@user_errors
def export_notam(
    as_member: AsMemberOpt,
    db: DbFileOpt = DEFAULT_DB,
    mechanism: MechanismChoiceOpt = None,
    out: OutOpt = None,
) -> None:
    """Draft the NOTAMs of every live activity a member may see whole and every zone.

    One after another, numbered from A0001; 'deconflict import notam' reads the file
    back. Live: still to come or under way (a cancelled activity, or one whose every
    window has ended, has none). What is left out, and why, is named on stderr, with
    how many: also an activity or zone whose centre is in no FIR known.

    Example: deconflict export notam --db deconflict-demo.db --as TR --out notams.txt
    """
    service = open_service(db, read_only=True)
    mechanism = chosen_mechanism(service, mechanism, db)
    member = reader(service, mechanism, as_member)
    texts, left_out = all_notams(service, mechanism, member)
    for why in left_out:
        typer.echo(f"left out: {why}", err=True)
    if left_out:
        typer.echo(
            f"{len(texts)} NOTAM{'' if len(texts) == 1 else 's'} written, {len(left_out)} left out "
            "(a NOTAM is for activity still to come or under way, in a FIR known)",
            err=True,
        )
    write_out("\n".join(texts), out)


@import_app.command("notam")
@user_errors
def import_notam(
    file: Annotated[
        Path, typer.Argument(help="NOTAM text: one NOTAM or several, each from its 'A0003/25 NOTAMN' line.")
    ],
    as_member: AsMemberOpt,
    db: DbFileOpt = DEFAULT_DB,
    mechanism: MechanismChoiceOpt = None,
    key: Annotated[
        Path | None, typer.Option(help="Your party's private key file: each entry is signed with it here.")
    ] = None,
) -> None:
    """Read NOTAMs into notices and zones of your party.

    A restricted, prohibited or danger area NOTAM (QRR, QRP, QRD) declares a zone; any
    other known code notifies an activity; each through the service's own rules. Every
    NOTAM is read and checked before any is stored: a file with one bad NOTAM stores
    nothing, and the error names the NOTAM and its item.

    Example: deconflict import notam notams.txt --db deconflict-demo.db --as TR
    """
    from deconflict.cli.common import read_text
    from deconflict.record import signing

    pair = None
    if key is not None:
        party, pair = signing.read_key_file(key)
    service = open_service(db)
    mechanism = chosen_mechanism(service, mechanism, db)
    member = reader(service, mechanism, as_member)
    if key is not None and party != member.party:
        raise DeconflictError(f"--key: {key} is {party}'s key, not {member.party}'s", field="--key")
    for line in import_notams(service, mechanism, member, read_text(file), key=pair):
        say(line)


def import_notams(
    service: Service, mechanism: str, member: Member, text: str, *, key: KeyPair | None = None
) -> list[str]:
    """Store the NOTAMs in ``text`` as ``member``'s notices and zones; a line for each, saying what it became.

    Every NOTAM is read, then run through the service's own use case in prepare mode (every rule checked,
    nothing written), before the first is stored: one bad NOTAM and nothing is stored. With ``key`` (a
    party that holds its own key) each entry is prepared again and stored with the party's signature of it.

    Raises:
        DeconflictError: the first bad NOTAM, naming it and its item (``NOTAM 2 (A0124/26) item C: ...``).
    """
    from deconflict.formats._notam_read import read_notams

    drafts = read_notams(text, party=member.party)
    _duplicates(drafts)
    _not_recorded(service, mechanism, drafts)
    for draft in drafts:  # every NOTAM through the service's own checks first, writing nothing
        _prepare(service, mechanism, member.id, draft)
    catch_up(service)
    lines: list[str] = []
    for draft in drafts:
        try:
            lines.append(_store(service, mechanism, member.id, draft, key=key))
        except DeconflictError as e:  # a rule the prepared run could not see (two NOTAMs of the file together)
            stored = ", ".join(str(d.n) for d in drafts[: drafts.index(draft)])
            if not stored:
                raise
            raise DeconflictError(f"{e.message} (NOTAMs stored before it: {stored})", field=e.field) from None
    return lines


def _duplicates(drafts: list[Any]) -> None:
    from deconflict.formats._notam_read import ZoneDraft

    seen: dict[str, int] = {}
    for d in drafts:
        if isinstance(d, ZoneDraft):
            zid = d.zone["id"]
            if zid in seen:
                raise DeconflictError(
                    f"NOTAM {d.n} ({d.ident}) item E: zone {zid} is also declared by NOTAM {seen[zid]}", field="item E"
                )
            seen[zid] = d.n


def _not_recorded(service: Service, mechanism: str, drafts: list[Any]) -> None:
    """A NOTAM deconflict drafted of an activity the record holds is that activity: imported again, it became a
    second activity of the same volumes (a copy of TR-0001 as TR-0003, in conflict with the first). The same id
    with other volumes or windows is another activity (a draft from another mechanism's record, or an old draft
    reused with new windows): it is imported as a new one."""
    from deconflict.errors import NotFound
    from deconflict.formats._notam_read import NoticeDraft
    from deconflict.formats.docs import activity_to_doc

    for d in drafts:
        if not isinstance(d, NoticeDraft) or d.activity is None:
            continue
        try:
            held = activity_to_doc(service.activity(mechanism, d.activity))
        except NotFound:
            continue
        if not _same_volumes(d.volumes, held["volumes"]):
            continue
        raise DeconflictError(
            f"NOTAM {d.n} ({d.ident}) item E: it is the NOTAM of activity {d.activity}, which the record holds "
            f"already; to change the activity, amend it (deconflict amend {d.activity} ...)",
            field="item E",
        )


def _same_volumes(drafted: list[dict[str, Any]], held: list[dict[str, Any]]) -> bool:
    """Whether a draft's volumes are an activity's: the same ids, bands (item E says them to the metre) and
    windows (item E writes them to the minute, outward)."""
    from datetime import timedelta

    from deconflict.clock import parse_utc

    def near(a: str | None, b: str | None) -> bool:
        if a is None or b is None:
            return a == b
        return abs(parse_utc(a, field="start") - parse_utc(b, field="start")) < timedelta(minutes=1)

    by_id = {v["id"]: v for v in held}
    return len(drafted) == len(held) and all(
        (h := by_id.get(v["id"])) is not None
        and abs(float(v["floor_m"]) - float(h["floor_m"])) < 1.0
        and abs(float(v["ceiling_m"]) - float(h["ceiling_m"])) < 1.0
        and near(v.get("start"), h.get("start"))
        and near(v.get("end"), h.get("end"))
        for v in drafted
    )


def _run(service: Service, mechanism: str, actor: str, draft: Any, mode: SignatureMode | None) -> Outcome:
    """Notify or declare one draft in ``mode``; a refusal names the NOTAM and the item its field came from."""
    from deconflict.errors import Forbidden
    from deconflict.formats._notam_read import ZoneDraft

    try:
        if isinstance(draft, ZoneDraft):
            return service.declare_zone(mechanism_id=mechanism, actor=actor, zone=draft.zone, mode=mode)
        return service.notify(
            mechanism_id=mechanism, actor=actor, kind=draft.kind, volumes=draft.volumes, title=draft.title, mode=mode
        )
    except Forbidden as e:  # not the NOTAM's fault: who may write, and how the entry is signed
        raise DeconflictError(f"NOTAM {draft.n} ({draft.ident}): {e.message}", field=e.field) from None
    except DeconflictError as e:
        item = FIELD_ITEMS.get(str(e.field), "E")
        raise DeconflictError(
            f"NOTAM {draft.n} ({draft.ident}) item {item}: {e.message}", field=f"item {item}"
        ) from None


def _prepare(service: Service, mechanism: str, actor: str, draft: Any) -> dict[str, Any]:
    """Run every check of the service on one draft, writing nothing: the entry it would append."""
    from deconflict.service import Prepared, SignatureMode

    try:
        _run(service, mechanism, actor, draft, SignatureMode(prepare=True))
    except Prepared as p:
        return p.entry
    raise AssertionError("a prepared use case stops at its entry")  # pragma: no cover


def _store(service: Service, mechanism: str, actor: str, draft: Any, *, key: KeyPair | None = None) -> str:
    """Store one draft (signed by the service, or with ``key``: prepared, then signed here); what it became."""
    from deconflict.clock import parse_utc
    from deconflict.formats._notam_read import ZoneDraft
    from deconflict.service import SignatureMode, Signed

    mode = None
    if key is not None:
        entry = _prepare(service, mechanism, actor, draft)
        signature = key.sign_entry(str(entry["hash"]))
        at = parse_utc(entry["at"], field="at")
        mode = SignatureMode(
            signed=Signed(at=at, entry_hash=str(entry["hash"]), key_id=key.key_id, signature=signature)
        )
    out = _run(service, mechanism, actor, draft, mode)
    if isinstance(draft, ZoneDraft):
        what = f"zone {draft.zone['id']} declared"
    else:
        assert out.activity is not None
        what = f"{out.activity.id} notified"
    from deconflict.cli.common import utc_text

    raised = "".join(f"\n  conflict {c['id']}: {c['kind']}, deadline {utc_text(c['deadline'])}" for c in out.raised)
    return f"NOTAM {draft.n} ({draft.ident}): {what} (record now at entry {out.seq}){raised}"
