"""The bundled Syria scenario played end to end in the terminal (``deconflict demo --script``)."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from rich.console import Console
from rich.table import Table

from deconflict.clock import FixedClock, iso
from deconflict.mechanisms import load_mechanism
from deconflict.record.chain import EntryType
from deconflict.scenarios import scenario_path
from deconflict.service import Outcome, Service
from deconflict.store import open_store
from deconflict.units import FT_M

MECHANISM = "tr-il-syria"
SCRIPT_SPAN = timedelta(hours=3, minutes=10)
"""How far the script's clock moves from ``start`` to its last step. The record keeps one clock: a
service opened later on the same database (``ledger export``, ``demo``) on the system clock dates
its entries and checkpoints no earlier than the script's last entry (clamped, with a warning, while
the system clock is behind it); start the script at ``now - SCRIPT_SPAN`` to end it at now."""
T4 = (37.6298, 34.5226)
PALMYRA = (38.3169, 34.5574)
HAMA = (36.7114, 35.1183)


def circle(
    centre: tuple[float, float], radius_m: float, floor_m: float, ceiling_m: float, start: datetime, hours: float
) -> dict[str, Any]:
    return {
        "geometry": {"type": "Point", "coordinates": list(centre)},
        "radius_m": radius_m,
        "floor_m": floor_m,
        "ceiling_m": ceiling_m,
        "start": iso(start),
        "end": iso(start + timedelta(hours=hours)),
    }


def seed(service: Service) -> None:
    """Declare the Syria mechanism (members, rules, Israel's Palmyra red line) if it is not there yet."""
    if MECHANISM not in service.mechanism_ids():
        service.declare_mechanism(mechanism=load_mechanism(scenario_path("syria")), demo_custody=True)


def _say(console: Console, clock: FixedClock, who: str, text: str) -> None:
    console.print(f"[dim]{iso(clock())}[/dim]  [bold]{who}[/bold]  {text}")


def _report(console: Console, outcome: Outcome) -> None:
    for c in outcome.raised:
        if c["kind"] == "separation":
            detail = (
                f"with {c['other_activity']} ({c['other_party']}): {c['distance_m'] / 1000:.1f} km apart "
                f"(minimum {c['separation_m'] / 1000:.2f} km), {c['start'][11:16]}–{c['end'][11:16]} UTC, "
                f"{c['floor_m']:.0f}–{c['ceiling_m']:.0f} m"
            )
        elif c["kind"] == "tracks":
            detail = (
                f"{c['activity']} and {c['other_activity']} predicted to lose separation in "
                f"{c['t_in_s'] / 60:.1f} min, closest {c['distance_m'] / 1000:.1f} km "
                f"(minimum {c['separation_m'] / 1000:.2f} km)"
            )
        elif c["kind"] in ("conformance", "intrusion"):
            detail = f"track {c['activity']}" + (f" inside {c['other_activity']}" if c.get("other_activity") else "")
        elif c["kind"] == "zone":
            detail = f"inside {c['zone_kind'].replace('_', ' ')} {c['zone']} declared by {c['zone_owner']}"
        else:
            detail = f"given {c['lead_time_s'] / 60:.0f} min ahead; the rules ask for {c['min_notice_s'] / 60:.0f} min"
        console.print(
            f"    [bold red]CONFLICT {c['id']}[/bold red] {c['kind'].replace('_', ' ')} {detail}; "
            f"acknowledge by {c['deadline'][11:16]} UTC ({', '.join(c['awaiting'])})"
        )
    for cid in outcome.resolved:
        console.print(f"    [green]{cid} closed[/green] (amended)")


def _hotline(console: Console, service: Service, outcome: Outcome) -> None:
    """Print the hotline messages a notice raised, each to its recipient in its language: the alert to the
    party that must acknowledge, the information copy to the party that caused it, the facilitator's copy."""
    raised = {c["id"] for c in outcome.raised}
    if not raised:
        return
    shown: list[tuple[int, str, str, dict[str, Any]]] = []
    for member in service.mechanism(MECHANISM).members:
        for m in service.messages(MECHANISM, reader=member):
            if (m.get("about") or {}).get("id") in raised and m["to"] == [member.party]:
                shown.append((m["seq"], member.party, m["id"], m))
            elif (m.get("about") or {}).get("id") in raised and member.party in m["to"] and len(m["to"]) > 1:
                shown.append((m["seq"], member.party, m["id"], m))
    for _, party, mid, seen in sorted(shown, key=lambda x: (x[0], x[1])):
        if seen["needs_ack"]:
            label = f"[bold yellow]HOTLINE {mid} → {party} ({seen['lang']})[/bold yellow]"
            tail = f" [dim](acknowledge by {seen['deadline'][11:16]} UTC, or it climbs the ladder)[/dim]"
        else:
            label, tail = f"[yellow]copy {mid} → {party} ({seen['lang']})[/yellow]", " [dim](for information)[/dim]"
        console.print(f"    {label}: {seen['text']}{tail}")


def run_script(console: Console, *, db: str, start: datetime) -> Service:
    """Play the scenario against the database ``db`` from instant ``start``; returns the service.

    Every time in the record (entries, the checkpoints the ticks sign) comes from the service's one
    clock, the script's, which moves on by hand and ends at ``start + SCRIPT_SPAN``.
    """
    clock = FixedClock(start.replace(second=0, microsecond=0))
    service = Service(open_store(db), clock=clock)
    seed(service)
    m = service.mechanism(MECHANISM)
    r = m.rules
    console.rule(f"[bold]{m.name}")
    console.print(
        f"Area: {m.area_name} (Natural Earth boundary). Members: "
        + ", ".join(f"{x.name} ({x.role.value})" for x in m.members)
    )
    console.print(
        f"Rules: notice ≥ {r.min_notice_s / 60:.0f} min, separation {r.separation_m / 1000:.2f} km / "
        f"{r.vertical_separation_m:.0f} m, acknowledge within {r.ack_deadline_s / 60:.0f} min, ladder: "
        + " → ".join(g.name for g in r.ladder)
    )
    for z in service.zones(MECHANISM):
        console.print(f"Zone {z['id']} ({z['kind'].replace('_', ' ')}, {z['owner']}): {z['name']}")
    console.print()
    t0 = clock()

    _say(console, clock, "TR", "notifies a UAV patrol over T4 (Tiyas), 25 km radius, 1,500–4,500 m, in 2 h for 3 h")
    patrol = service.notify(
        mechanism_id=MECHANISM,
        actor="TR",
        kind="uav_patrol",
        title="UAV patrol, T4",
        volumes=[circle(T4, 25_000, 1500, 4500, t0 + timedelta(hours=2), 3)],
    )
    _report(console, patrol)

    clock.advance(seconds=300)
    _say(console, clock, "IL", "notifies an air sortie along a corridor east of T4, 3,000–9,000 m, in 3 h for 1 h")
    corridor = [[37.95, 34.2], [38.1, 34.2], [38.1, 34.9], [37.95, 34.9], [37.95, 34.2]]
    sortie = service.notify(
        mechanism_id=MECHANISM,
        actor="IL",
        kind="air_sortie",
        title="Air sortie, corridor east of T4",
        volumes=[
            {
                "geometry": {"type": "Polygon", "coordinates": [corridor]},
                "floor_m": 3000,
                "ceiling_m": 9000,
                "start": iso(t0 + timedelta(hours=3)),
                "end": iso(t0 + timedelta(hours=4)),
            }
        ],
    )
    _report(console, sortie)
    _hotline(console, service, sortie)

    clock.advance(seconds=240)
    _say(console, clock, "TR", "notifies a deployment at Palmyra (Tadmur) airfield from tomorrow for 30 days")
    deployment = service.notify(
        mechanism_id=MECHANISM,
        actor="TR",
        kind="deployment",
        title="Deployment, Palmyra airfield",
        volumes=[circle(PALMYRA, 3000, 0, 150, t0 + timedelta(days=1), 24 * 30)],
    )
    _report(console, deployment)
    _hotline(console, service, deployment)

    clock.advance(seconds=120)
    _say(console, clock, "IL", "notifies an air sortie near Hama starting in 20 minutes")
    late = service.notify(
        mechanism_id=MECHANISM,
        actor="IL",
        kind="air_sortie",
        title="Air sortie, Hama",
        volumes=[circle(HAMA, 15_000, 2000, 8000, clock() + timedelta(minutes=20), 1)],
    )
    _report(console, late)
    _hotline(console, service, late)

    clock.advance(seconds=180)
    first = sortie.raised[0]["id"] if sortie.raised else None
    if first:
        _say(console, clock, "TR", f"acknowledges {first}, which settles its hotline alert with it")
        service.acknowledge_conflict(mechanism_id=MECHANISM, actor="TR", conflict_id=first)
        clock.advance(seconds=120)
        _say(console, clock, "TR", "amends the UAV patrol: 10 km west of T4, 1,500–2,500 m")
        assert patrol.activity is not None
        _report(
            console,
            service.amend(
                mechanism_id=MECHANISM,
                actor="TR",
                activity_id=patrol.activity.id,
                seen_version=patrol.activity.version,
                volumes=[circle((37.30, 34.52), 10_000, 1500, 2500, t0 + timedelta(hours=2), 3)],
            ),
        )

    clock.advance(seconds=11 * 60)
    _say(console, clock, "--", "11 minutes on: alerts nobody answered climb the ladder")
    before = service.entries_after(MECHANISM, 0, limit=100_000)[-1]["seq"]
    service.tick()
    for e in service.entries_after(MECHANISM, before):
        if e["type"] == EntryType.MESSAGE_ESCALATED:
            p = e["payload"]
            console.print(
                f"    [bold red]ESCALATED[/bold red] {p['id']} to the {p['name']} "
                f"(no acknowledgement by {p['due_at'][11:16]} UTC)"
            )
    lines = service.line_status(MECHANISM)
    console.print("    Line status: " + ", ".join(f"{party} {state}" for party, state in lines.items()))

    before = service.entries_after(MECHANISM, 0, limit=100_000)[-1]["seq"]
    while clock() + timedelta(minutes=1) < t0 + SCRIPT_SPAN:  # the duty loop runs on, as it would live
        clock.advance(seconds=60)
        service.tick()
    ran = service.entries_after(MECHANISM, before, limit=100_000)
    steps = sum(e["type"] == EntryType.MESSAGE_ESCALATED for e in ran)
    checks = sum(e["payload"].get("template") == "line_check" for e in ran)
    _say(console, clock, "--", f"the duty loop ran each minute: {steps} escalation steps, {checks} line checks")
    clock.advance(seconds=(t0 + SCRIPT_SPAN - clock()).total_seconds())
    _say(console, clock, "--", "3 h 10 min in: both activities are flying; tracks reach the mechanism")
    _say(console, clock, "TR", "reports UAV-1 on its patrol west of T4, 2,000 m, heading east at 100 kt")
    service.report_tracks(
        mechanism_id=MECHANISM,
        actor="TR",
        reports=[_track("UAV-1", clock(), (37.38, 34.52), 2000, 100, 90)],
    )
    _say(console, clock, "IL", "reports F-16 'A2' at the west edge of its corridor, 2,300 m, heading west at 250 kt")
    converging = service.report_tracks(
        mechanism_id=MECHANISM,
        actor="IL",
        reports=[_track("A2", clock(), (37.97, 34.52), 2300, 250, 270)],
    )
    outcome = Outcome(raised=tuple(converging["raised"]))
    _report(console, outcome)
    _hotline(console, service, outcome)

    console.print()
    table = Table(title="Conflicts", show_lines=False)
    for col in ("id", "kind", "activity", "with", "status", "acknowledged by", "deadline (UTC)"):
        table.add_column(col)
    for c in service.conflicts(MECHANISM):
        other = c.get("other_activity") or c.get("zone") or "-"
        table.add_row(
            c["id"],
            c["kind"],
            f"{c['activity']} v{c['activity_version']}" if "activity_version" in c else c["activity"],
            other,
            c["status"] + (f" ({c['resolution']})" if c["resolution"] else ""),
            ", ".join(sorted(c["acknowledged"])) or "-",
            c["deadline"][11:16],
        )
    console.print(table)
    report = service.verify(MECHANISM)
    state = "[green]verifies[/green]" if report.ok else f"[red]BROKEN: {report.problem}[/red]"
    console.print(f"Record: {report.entries} entries, head {report.head_hash[:16]}…, chain {state}")
    _write_formats(console, service, db, deployment)
    return service


def _write_formats(console: Console, service: Service, db: str, deployment: Outcome) -> None:
    """Beside an SQLite record, the formats operations centres read: Türkiye's picture as KML (Google Earth,
    any GIS) and the draft NOTAM of its Palmyra deployment (ICAO format)."""
    from pathlib import Path

    from deconflict.formats.kml import picture_kml
    from deconflict.formats.notam import reader_activity_notam

    if "://" in db or deployment.activity is None:
        return
    folder = Path(db).parent
    reader = service.member(MECHANISM, "TR")
    mechanism = service.mechanism(MECHANISM)
    kml = picture_kml(
        mechanism_id=MECHANISM,
        reader=reader,
        disclosure=mechanism.rules.disclosure,
        activities=service.activities(MECHANISM),
        zones=service.zones(MECHANISM),
        conflicts=service.conflicts(MECHANISM),
        tracks=service.tracks(MECHANISM, reader=reader),
        at=service.clock(),
    )
    activity = service.activity(MECHANISM, deployment.activity.id)
    notam = reader_activity_notam(activity, reader, mechanism.rules.disclosure) or ""
    (folder / "picture-TR.kml").write_text(kml, encoding="utf-8")
    (folder / f"notam-{activity.id}.txt").write_text(notam + "\n", encoding="utf-8")
    console.print(
        f"Beside the record: picture-TR.kml (Türkiye's picture, for Google Earth or any GIS) and "
        f"notam-{activity.id}.txt (the draft NOTAM of its Palmyra deployment)"
    )


def _track(
    tid: str, at: datetime, where: tuple[float, float], alt_m: float, gs_kt: float, trk_deg: float
) -> dict[str, Any]:
    """A position report in the API's aviation units."""
    return {
        "id": tid,
        "at": iso(at),
        "lat": where[1],
        "lon": where[0],
        "alt_ft": round(alt_m / FT_M),
        "gs_kt": gs_kt,
        "trk_deg": trk_deg,
        "vs_fpm": 0,
    }


DEMO_MEMBERS = ("TR", "IL", "AZ", "US")


def prepare_server(db: str) -> tuple[Service, dict[str, str]]:
    """Open (or create) the demo database, seed it when empty, and get a token for each demo member.

    The tokens are kept in ``<db>.tokens`` beside an SQLite file (demo only: a real installation
    hands each token to its member once and keeps only hashes) so a second start prints the same ones.
    """
    from pathlib import Path

    from deconflict.clock import system_clock

    service = Service(open_store(db, group_commit=True), clock=system_clock)
    seed(service)
    keep = Path(db + ".tokens") if "://" not in db else None
    tokens: dict[str, str] = {}
    if keep is not None and keep.exists():
        for line in keep.read_text(encoding="utf-8").splitlines():
            member, _, token = line.partition(" ")
            found = service.authenticate(token)
            if found is not None and found[1].id == member:
                tokens[member] = token
    for member in DEMO_MEMBERS:
        if member not in tokens:
            tokens[member] = service.issue_token(mechanism_id=MECHANISM, member_id=member, label="demo")
    if keep is not None:
        keep.write_text("".join(f"{m} {t}\n" for m, t in tokens.items()), encoding="utf-8")
        keep.chmod(0o600)
    return service, tokens
