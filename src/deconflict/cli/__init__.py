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
from deconflict.units import FPM_MPS, FT_M, KT_MPS

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
        except Exception as e:
            httpx = sys.modules.get("httpx")
            if httpx is not None and isinstance(e, httpx.TransportError):
                raise fail(
                    f"the service did not answer ({type(e).__name__}: {e}); is it running at that address?"
                ) from None
            raise

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
    from deconflict.detect import find_conflict_table
    from deconflict.formats.geojson import load_json, volumes_from_geojson, write_conflicts

    doc = load_json(_read_text(volumes), source=str(volumes))
    vols = volumes_from_geojson(doc, source=str(volumes))
    del doc
    table = find_conflict_table(vols, separation_m=separation_m, vertical_separation_m=vertical_separation_m)
    write_conflicts(table, vols, sys.stdout)


@app.command()
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
    from deconflict.tactical import find_track_conflicts

    for name, value in (("--rpz-m", rpz_m), ("--hpz-m", hpz_m), ("--lookahead-s", lookahead_s)):
        if not value > 0 or value == float("inf"):
            raise fail(f"{name} must be a number above 0, got {value:g}")
    states = read_tracks_csv(_read_text(tracks_csv), source=str(tracks_csv))
    table = find_track_conflicts(states, rpz_m=rpz_m, hpz_m=hpz_m, lookahead_s=lookahead_s)
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


def main() -> None:
    app()


DEFAULT_DB = "deconflict-demo.db"


@app.command()
@user_errors
def demo(
    db: Annotated[
        str | None,
        typer.Option(
            help="SQLite file or database URL (default: deconflict-demo.db here; a new temporary file with --script)."
        ),
    ] = None,
    port: Annotated[int, typer.Option(min=1, max=65535, help="Port to serve on.")] = 8080,
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    script: Annotated[
        bool, typer.Option("--script", help="Play the scenario in the terminal and exit instead.")
    ] = False,
) -> None:
    """Serve the Syria scenario: seeds the database when empty, prints the URL and a token per demo member.

    A second start reuses the same data and tokens. With --script, play the scenario in the terminal
    (notices, a separation conflict, the red-line hit, a short notice, an amendment) and exit.

    Example: deconflict demo --db demo.db --port 8080
    """
    from rich.console import Console

    from deconflict.clock import system_clock

    if script:
        from deconflict.demo import run_script

        if db is None:
            import tempfile

            db = str(Path(tempfile.mkdtemp(prefix="deconflict-demo-")) / "demo.db")
        run_script(Console(), db=db, start=system_clock())
        typer.echo(f"record kept in {db}; check it with: deconflict ledger check --db {db}")
        return
    from deconflict.api.settings import Settings
    from deconflict.demo import prepare_server

    db = db or DEFAULT_DB
    service, tokens = prepare_server(db)
    url = f"http://{host}:{port}"
    console = Console()
    console.print(f"[bold]deconflict demo[/bold]: mechanism tr-il-syria on {db}")
    console.print(f"Page {url}/ (open it in two windows, sign in with two tokens)", soft_wrap=True)
    console.print(f"API {url}/api/v1 (OpenAPI at {url}/openapi.json)", soft_wrap=True)
    for member, token in tokens.items():
        console.print(f"  {member:>3}  {token}")
    console.print(
        f"Try: curl -H 'Authorization: Bearer {tokens['IL']}' -N {url}/api/v1/mechanisms/tr-il-syria/events",
        soft_wrap=True,
    )
    _serve(Settings(db=db, host=host, port=port), service)


def _serve(settings: Any, service: Any = None) -> None:
    import uvicorn

    from deconflict.api import create_app

    app_ = create_app(settings, service)
    uvicorn.run(app_, host=settings.host, port=settings.port, log_level="warning", access_log=False)


@app.command()
@user_errors
def serve(
    db: Annotated[str, typer.Option(help="Database URL, or a path to an SQLite file.")] = "deconflict.db",
    port: Annotated[int, typer.Option(min=1, max=65535)] = 8080,
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    max_body_bytes: Annotated[int, typer.Option(min=1024, help="Largest request body accepted.")] = 1_048_576,
) -> None:
    """Run the HTTP API (OpenAPI at /openapi.json, API under /api/v1).

    Example: deconflict serve --db /var/lib/deconflict/deconflict.db --port 8080
    """
    from deconflict.api.settings import Settings

    typer.echo(f"serving {db} on http://{host}:{port}/api/v1", err=True)
    _serve(Settings(db=db, host=host, port=port, max_body_bytes=max_body_bytes))


member_app = typer.Typer(help="Members of a mechanism and their bearer tokens.", no_args_is_help=True)
app.add_typer(member_app, name="member")


@member_app.command("add")
@user_errors
def member_add(
    mechanism: Annotated[str, typer.Option(help="Mechanism id.")],
    party: Annotated[
        str, typer.Option(help="Party the member acts for (for a facilitator or observer: its own code).")
    ],
    role: Annotated[str, typer.Option(help="party, facilitator or observer.")],
    name: Annotated[str, typer.Option(help="Who this is, e.g. 'Duty officer, Ankara'.")],
    db: Annotated[str, typer.Option(help="Database URL or SQLite file.")] = "deconflict.db",
    language: Annotated[str, typer.Option(help="en, tr, he, ar or ru.")] = "en",
    id: Annotated[str | None, typer.Option(help="Member id (default PARTY-N).")] = None,
) -> None:
    """Add a member and print its bearer token (shown once; only its hash is stored).

    Example: deconflict member add --db demo.db --mechanism tr-il-syria --party TR --role party --name "Duty officer"
    """

    service = _service(db, migrate=True)
    member_id = id or service.next_member_id(mechanism, party)
    doc = {"id": member_id, "name": name, "role": role, "party": party, "language": language}
    added = service.add_member(mechanism_id=mechanism, member=doc)
    token = service.issue_token(mechanism_id=mechanism, member_id=added.id, label=name)
    typer.echo(f"member {added.id} ({added.role.value} for {added.party}) added to {mechanism}", err=True)
    typer.echo(token)


@member_app.command("token")
@user_errors
def member_token(
    mechanism: Annotated[str, typer.Option(help="Mechanism id.")],
    member: Annotated[str, typer.Option(help="Member id.")],
    db: Annotated[str, typer.Option(help="Database URL or SQLite file.")] = "deconflict.db",
) -> None:
    """Print a new bearer token for an existing member.

    Example: deconflict member token --db demo.db --mechanism tr-il-syria --member TR
    """

    service = _service(db, migrate=True)
    typer.echo(service.issue_token(mechanism_id=mechanism, member_id=member, label="cli"))


@member_app.command("revoke")
@user_errors
def member_revoke(
    mechanism: Annotated[str, typer.Option(help="Mechanism id.")],
    member: Annotated[str, typer.Option(help="Member id.")],
    db: Annotated[str, typer.Option(help="Database URL or SQLite file.")] = "deconflict.db",
) -> None:
    """Revoke every token of a member: its requests get 401 from now on.

    Example: deconflict member revoke --db demo.db --mechanism tr-il-syria --member TR-2
    """

    service = _service(db, migrate=True)
    n = service.revoke_tokens(mechanism_id=mechanism, member_id=member)
    typer.echo(f"{n} token(s) of {member} revoked")


def _service(db: str, *, migrate: bool = False) -> Any:
    """The service over an existing database (a clear error when the file does not exist)."""
    from deconflict.service import Service

    return Service.open(_existing(db), migrate=migrate)


def _existing(db: str) -> str:
    if "://" not in db and not Path(db).exists():
        raise DeconflictError(f"{db}: no such database file")
    return db


@ledger_app.command("check")
@user_errors
def ledger_check(
    db: Annotated[str, typer.Option(help="SQLite file or database URL.")] = DEFAULT_DB,
    mechanism: Annotated[str | None, typer.Option(help="Only this mechanism (default: all).")] = None,
) -> None:
    """Recompute every record chain in the database; exit 1 if one does not verify.

    Example: deconflict ledger check --db deconflict-demo.db
    """

    service = _service(db)
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


@ledger_app.command("export")
@user_errors
def ledger_export(
    out: Annotated[Path, typer.Option(help="The bundle file to write.")],
    db: Annotated[str, typer.Option(help="SQLite file or database URL.")] = DEFAULT_DB,
    mechanism: Annotated[str, typer.Option(help="Mechanism id.")] = "tr-il-syria",
) -> None:
    """Write a mechanism's whole signed record, its public keys and signed checkpoints to one file that
    anyone can check offline. The service first signs a checkpoint of the current head.

    Example: deconflict ledger export --db deconflict-demo.db --out record.jsonl
    """
    from deconflict import bundle
    from deconflict.clock import iso

    service = _service(db)
    service.mechanism(mechanism)  # a clear error when it does not exist
    service.checkpoint(mechanism)
    head = service.head(mechanism)
    if head.seq == 0:
        raise DeconflictError(f"mechanism {mechanism!r} has no record in {db}")
    checkpoints = []
    while page := service.checkpoints(mechanism, after=checkpoints[-1]["seq"] if checkpoints else 0):
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
    typer.echo(f"{mechanism}: {n} entries written to {out}; head {head.seq} {head.hash}")


@ledger_app.command("verify")
@user_errors
def ledger_verify(
    path: Annotated[Path, typer.Argument(help="A bundle written by 'deconflict ledger export'.")],
    checkpoints: Annotated[
        Path | None,
        typer.Option(help="Checkpoints you kept from the service (JSON or JSON Lines) to hold the bundle against."),
    ] = None,
) -> None:
    """Check a record bundle offline (no database): the hash chain, every signature against the keys the
    record registered, and the signed checkpoints. Exit 1 and name the first bad entry if it fails.

    Example: deconflict ledger verify record.jsonl --checkpoints kept-checkpoints.json
    """
    from deconflict import bundle

    kept = bundle.read_checkpoints(checkpoints) if checkpoints is not None else []
    report = bundle.verify(path, checkpoints=kept)
    if not report.ok:
        typer.echo(f"{report.mechanism}: BROKEN after {report.entries} good entries: {report.problem}", err=True)
        raise typer.Exit(1)
    typer.echo(f"{report.mechanism}: {report.entries} entries verify; head {report.head_seq} {report.head_hash}")
    typer.echo(f"  {report.checkpoints} signed checkpoints agree with the chain")
    for key in report.keys:
        state = f", revoked at entry {key['revoked_seq']}" if key["revoked_seq"] else ""
        typer.echo(f"  key {key['key_id']} of {key['owner']} ({key['custody']}{state}): signed {key['signed']} entries")


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


hotline_app = typer.Typer(help="The 24/7 hotline from a terminal (talks to a running service).", no_args_is_help=True)
app.add_typer(hotline_app, name="hotline")

UrlOpt = Annotated[str, typer.Option(help="The service's address.", envvar="DECONFLICT_URL")]
TokenOpt = Annotated[str, typer.Option(help="Your bearer token (or set DECONFLICT_TOKEN).", envvar="DECONFLICT_TOKEN")]
KeyOpt = Annotated[Path | None, typer.Option(help="Your party's private key file: sign on your side.")]


def _client(url: str, token: str, key: Path | None = None) -> Any:
    """A client of the running service for the token's member; signing on this side with ``key``."""
    from deconflict import signing
    from deconflict.client import Client

    return Client(url, token, key=signing.read_key_file(key)[1] if key is not None else None)


def _show(message: dict[str, Any]) -> str:
    ack = ""
    if message.get("needs_ack"):
        acked = message.get("acknowledged_at")
        ack = f"  [acknowledged {_t(acked)}]" if acked else f"  [ACK BY {_t(message.get('deadline'))}]"
    kind = "free text" if message.get("free_text") else message["type"]
    # free text is shown as its sender wrote it, with the language the sender declared (not a translation)
    original = f"  (as written, {message['original']['lang']})" if message.get("free_text") else ""
    head = f"{_t(message['sent_at'])}  {message['id']}  {kind} from {message['from']} to {','.join(message['to'])}{ack}"
    text = message["text"]
    if not sys.stdout.isatty():  # directional isolates help a screen that lays out RTL text, not a file or a pipe
        text = text.replace("\u2068", "").replace("\u2069", "")
    return f"{head}\n    {text}{original}"


@hotline_app.command("send")
@user_errors
def hotline_send(
    url: UrlOpt = "http://127.0.0.1:8080",
    token: TokenOpt = "",
    template: Annotated[str | None, typer.Option(help="Standard message, e.g. holding, acknowledged_amending.")] = None,
    param: Annotated[list[str] | None, typer.Option(help="A template parameter as name=value (repeat).")] = None,
    text: Annotated[str | None, typer.Option(help="Free text instead of a standard message.")] = None,
    lang: Annotated[
        str | None,
        typer.Option(help="The language the free text is written in: en, tr, he, ar or ru (default: yours)."),
    ] = None,
    to: Annotated[
        list[str] | None, typer.Option(help="A recipient party code (repeat; default: all who answer).")
    ] = None,
    key: KeyOpt = None,
) -> None:
    """Send a standard message (agreed wording, read by each member in its own language) or free text,
    which every member reads as written, labelled with its language (--lang; default: your member's).

    Example: deconflict hotline send --token $TR --template holding --param ref=C1
    (free text: deconflict hotline send --text "Call us on the secure line." --lang en --to IL)
    """
    from deconflict.hotline import LANGUAGES

    params: dict[str, str] = {}
    for item in param or []:
        name, sep, value = item.partition("=")
        if not sep or not name:
            raise DeconflictError(f"--param {item!r}: give name=value")
        params[name] = _param_value(value)
    if lang is not None and lang not in LANGUAGES:
        raise DeconflictError(f"--lang: {lang!r} is not a hotline language; give one of {', '.join(LANGUAGES)}")
    if lang is not None and text is None:
        raise DeconflictError(
            "--lang: only free text (--text) carries a language; standard messages are worded for each reader"
        )
    client = _client(url, token, key)
    if text is not None and lang is None:
        lang = client.language or None
        typer.echo(
            f"note: free text sent as written in {lang} (your member's language); if it is in another, "
            "say so with --lang, e.g. --lang en",
            err=True,
        )
    body = {"template": template, "params": params or None, "text": text, "lang": lang, "to": to or None}
    sent = client.send_message(**{k: v for k, v in body.items() if v is not None})
    _say(_show(sent))


def _param_value(value: str) -> str:
    """A template parameter as typed; a time such as 2026-12-02T20:33:00Z is given as the wording expects it
    (UTC without the Z, since the agreed wording already says UTC)."""
    from datetime import datetime

    from deconflict.hotline import format_time

    try:
        parsed = datetime.fromisoformat(value.strip())
    except ValueError:
        return value
    return format_time(parsed) if parsed.tzinfo is not None else value


@hotline_app.command("ack")
@user_errors
def hotline_ack(
    message: Annotated[str, typer.Argument(help="Message id, e.g. M7.")],
    url: UrlOpt = "http://127.0.0.1:8080",
    token: TokenOpt = "",
    key: KeyOpt = None,
) -> None:
    """Acknowledge a message addressed to your party (this stops its escalation).

    Example: deconflict hotline ack M7 --token $TR
    """
    _say(_show(_client(url, token, key).acknowledge_message(message)))


@hotline_app.command("tail")
@user_errors
def hotline_tail(
    url: UrlOpt = "http://127.0.0.1:8080",
    token: TokenOpt = "",
    after: Annotated[int, typer.Option(min=0, help="Start after this record sequence number (0: everything).")] = 0,
    follow: Annotated[bool, typer.Option(help="Keep listening for new messages.")] = True,
) -> None:
    """Print the channel in your language, then each new message and escalation as it happens.

    Example: deconflict hotline tail --token $IL
    """
    from deconflict.client import raise_for

    client = _client(url, token)
    path = f"/mechanisms/{client.mechanism}"
    if not follow:
        r = client.http.get(f"{path}/messages", params={"after": after})
        raise_for(r)
        for m in sorted(r.json(), key=lambda m: m.get("seq", 0)):
            _say(_show(m))
        return
    with client.http.stream("GET", f"{path}/events", params={"after": after}, timeout=None) as r:
        raise_for(r)
        event = ""
        for line in r.iter_lines():
            if line.startswith("event:"):
                event = line[6:].strip()
            elif line.startswith("data:") and event in ("message.sent", "message.escalated", "message.acknowledged"):
                entry = json.loads(line[5:])
                if "message" in entry:
                    _say(_show(entry["message"]))
                elif event == "message.escalated" and "payload" in entry:
                    p = entry["payload"]
                    _say(f"{entry['at']}  {p['id']}  ESCALATED to {p['name']}")
                elif event == "message.acknowledged" and "payload" in entry:
                    _say(f"{entry['at']}  {entry['payload']['id']}  acknowledged by {entry['payload']['party']}")


# --- the record read back: compliance report and incident timeline -------------------------------

DbOpt = Annotated[
    str | None, typer.Option(help="SQLite file or database URL to read the record from (default: deconflict-demo.db).")
]
BundleOpt = Annotated[
    Path | None, typer.Option(help="Read the record from a bundle written by 'deconflict ledger export' instead.")
]
MechanismOpt = Annotated[
    str | None, typer.Option(help="Mechanism id (default: the only one in the database, or the bundle's).")
]


def _record_entries(db: str | None, bundle_path: Path | None, mechanism: str | None) -> tuple[str, Any]:
    """(mechanism id, iterator of entry documents in order) from a database or a bundle (parsed, not verified)."""
    if db is not None and bundle_path is not None:
        raise DeconflictError("give either --db or --bundle, not both")
    if bundle_path is not None:
        return _bundle_entries(bundle_path, mechanism)
    return _db_entries(db or DEFAULT_DB, mechanism)


def _db_entries(db: str, mechanism: str | None) -> tuple[str, Any]:
    service = _service(db)
    ids = service.record_ids()
    if mechanism is None:
        if len(ids) != 1:
            found = f"it holds {', '.join(ids)}; choose one with --mechanism" if ids else "it holds no record"
            raise DeconflictError(f"{db}: {found}")
        mechanism = ids[0]
    elif mechanism not in ids:
        raise DeconflictError(f"mechanism {mechanism!r} has no record in {db} (it holds: {', '.join(ids) or 'none'})")

    return mechanism, service.record(mechanism)


def _bundle_entries(path: Path, mechanism: str | None) -> tuple[str, Any]:
    from deconflict import bundle

    return bundle.entries(path, mechanism=mechanism)


def _instant(value: str | None, option: str) -> Any:
    from deconflict.clock import parse_utc

    return None if value is None else parse_utc(value, field=option)


@app.command()
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
    party: Annotated[list[str] | None, typer.Option(help="Only this party (repeat for several; default: all).")] = None,
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
    from deconflict import report as compliance

    mid, entries = _record_entries(db, bundle, mechanism)
    result = compliance.compliance_report(
        entries, start=_instant(start, "--from"), end=_instant(end, "--to"), parties=party or None
    )
    doc = compliance.report_to_json(result)
    folder = out if out is not None else (None if as_json else Path("."))
    if folder is not None:
        if folder.exists() and not folder.is_dir():
            raise DeconflictError(f"--out {folder}: is a file, not a folder")
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "report.json").write_text(json.dumps(doc, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
        compliance.write_csv(result, folder / "report.csv")
        compliance.write_chart(result, folder / "report.png")
    if as_json:
        typer.echo(json.dumps(doc, ensure_ascii=False, indent=2))
        return
    for line in compliance.summary_lines(result):
        typer.echo(line)
    assert folder is not None
    typer.echo(f"wrote report.json, report.csv and report.png in {folder}")


@app.command()
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
    from deconflict import timeline as story

    mid, entries = _record_entries(db, bundle, mechanism)
    events = story.incident_timeline(
        entries,
        lat=lat,
        lon=lon,
        radius_km=radius_km,
        start=_instant(start, "--from"),
        end=_instant(end, "--to"),
    )
    if as_json:
        typer.echo(json.dumps(story.timeline_to_json(events), ensure_ascii=False, indent=2))
        return
    typer.echo(f"{mid}: {len(events)} events within {radius_km:g} km of {lat:g}, {lon:g} from {start} to {end}")
    typer.echo(story.timeline_text(events), nl=False)


@app.command()
@user_errors
def replay(
    at: Annotated[str, typer.Option(help="The instant, ISO 8601 UTC, e.g. 2025-04-09T06:30:00Z.")],
    db: DbOpt = None,
    bundle: Annotated[
        Path | None,
        typer.Option(
            help="Replay a bundle written by 'deconflict ledger export' (verified first) instead of a database."
        ),
    ] = None,
    mechanism: MechanismOpt = None,
    as_json: Annotated[bool, typer.Option("--json", help="The whole state as JSON.")] = False,
) -> None:
    """Rebuild a mechanism's state as it stood at an instant, from its record alone: activities in force
    (their window holds the instant), later and past ones, zones, conflicts and their status, hotline
    messages awaiting acknowledgement. A bundle is verified (chain, signatures, checkpoints) before replay.

    Example: deconflict replay --db deconflict-demo.db --at 2025-04-09T06:30:00Z
    (from an exported record: deconflict replay --bundle record.jsonl --at 2025-04-09T06:30:00Z)
    """
    from deconflict import replay as rebuild

    instant = _instant(at, "--at")
    if bundle is not None:
        from deconflict import bundle as bundles

        if db is not None:
            raise DeconflictError("give either --db or --bundle, not both")
        if bundle.is_dir() or not bundle.exists():
            raise DeconflictError(
                f"{bundle}: {'is a folder, not' if bundle.is_dir() else 'no such file, expected'} a record bundle"
            )
        report = bundles.verify(bundle)
        if not report.ok:
            raise DeconflictError(
                f"{bundle} does not verify, so it is not replayed: after {report.entries} good entries, "
                f"{report.problem} (see 'deconflict ledger verify {bundle}')"
            )
        mid, entries = _bundle_entries(bundle, mechanism)
        source = f"bundle {bundle}, verified"
    else:
        mid, entries = _db_entries(db or DEFAULT_DB, mechanism)
        source = db or DEFAULT_DB
    try:
        state = rebuild.replay(entries, mechanism=mid, at=instant)
    except ValueError as e:
        raise DeconflictError(f"{source}: {e}") from None
    if state["head"]["seq"] == 0:
        _, first = _bundle_entries(bundle, mid) if bundle is not None else _db_entries(db or DEFAULT_DB, mid)
        start = next(iter(first), {}).get("at", "?")
        raise DeconflictError(f"mechanism {mid!r} had no record yet at {at}; its first entry is at {start}")
    for name in ("activities", "zones", "conflicts", "messages"):
        state[name] = sorted(state[name], key=lambda row: _natural(str(row["id"])))
    if as_json:
        _say(json.dumps(state, ensure_ascii=False, indent=2))
        return
    typer.echo(f"{mid} as it stood at {_t(state['at'])} (record up to entry {state['head']['seq']}; {source}):")
    from deconflict.api.views import phase  # the one meaning of "in force": the service's, the page's, replay's

    phases: dict[str, list[dict[str, Any]]] = {}
    for a in state["activities"]:
        phases.setdefault(phase(a["doc"], instant), []).append(a)
    in_force, later = phases.get("in_force", []), phases.get("planned", [])
    between = phases.get("between", [])
    typer.echo(
        f"  {len(in_force)} activities in force (their window holds the instant); {len(later)} planned for later, "
        f"{len(between)} between two windows, {len(phases.get('ended', []))} ended, "
        f"{len(phases.get('cancelled', []))} cancelled"
    )
    for a in in_force:
        typer.echo(f"    {a['id']}  {a['party']}  {a['kind']}  v{a['version']}  {_window(a['start'], a['end'])}")
    for a in between:
        typer.echo(f"    {a['id']}  {a['party']}  {a['kind']}  v{a['version']}  between windows: {_windows(a)}")
    for a in later:
        typer.echo(f"    {a['id']}  {a['party']}  {a['kind']}  v{a['version']}  later: {_window(a['start'], a['end'])}")
    zones = [z for z in state["zones"] if z["withdrawn_at"] is None]
    typer.echo(f"  {len(zones)} zones: " + ", ".join(f"{z['id']} ({z['kind']}, {z['owner']})" for z in zones))
    typer.echo(f"  {len(state['conflicts'])} conflicts:")
    for c in state["conflicts"]:
        waiting = ", ".join(p for p in c["doc"].get("awaiting", []) if p not in c["acknowledged"])
        note = f"; awaiting {waiting}" if waiting and c["status"] == "open" else ""
        status = f"{c['status']} ({c['resolution']})" if c.get("resolution") else c["status"]
        typer.echo(f"    {c['id']}  {c['kind']}  {status}  deadline {_t(c['deadline'])}{note}")
    open_ = [m for m in state["messages"] if m["needs_ack"] and m["acknowledged_at"] is None]
    pending = [m for m in open_ if m.get("closed_at") is None]
    closed = [m for m in open_ if m.get("closed_at") is not None]
    typer.echo(f"  {len(state['messages'])} hotline messages, {len(pending)} awaiting acknowledgement:")
    for m in pending:
        typer.echo(
            f"    {m['id']}  {m['type']} to {', '.join(m['recipients'])}, deadline {_t(m['deadline'])}, "
            f"{m['steps']} escalation steps"
        )
    if closed:  # alerts whose conflict was resolved before they were acknowledged: they stopped climbing
        typer.echo(f"  {len(closed)} closed unacknowledged:")
        for m in closed:
            typer.echo(f"    {m['id']}  {m['type']} to {', '.join(m['recipients'])}: {m['closed_note']}")


def _windows(activity: dict[str, Any]) -> str:
    volumes = (activity.get("doc") or {}).get("volumes") or [activity]
    return ", ".join(_window(v.get("start"), v.get("end")) for v in volumes)


keys_app = typer.Typer(
    help="Signing keys: generate on the party's side, register in a mechanism.", no_args_is_help=True
)
app.add_typer(keys_app, name="keys")


@keys_app.command("generate")
@user_errors
def keys_generate(
    party: Annotated[str, typer.Option(help="The party code the key signs for, e.g. TR.")],
    out: Annotated[Path, typer.Option(help="The private key file to write (never overwritten; mode 0600).")],
) -> None:
    """Make an Ed25519 key pair on the party's side. The private key stays in OUT; give the printed public
    key to the operator, and read the fingerprint to the other members out of band.

    Example: deconflict keys generate --party TR --out tr.key
    """
    from deconflict import signing

    key = signing.KeyPair.generate()
    signing.write_key_file(out, key, party=party)
    typer.echo(f"private key written to {out} (keep it on your side)")
    typer.echo(f"public key:  {key.public_key}")
    typer.echo(f"fingerprint: {key.key_id}")


@keys_app.command("register")
@user_errors
def keys_register(
    party: Annotated[str, typer.Option(help="The party code, e.g. TR.")],
    public_key: Annotated[str, typer.Option(help="The public key (base64) or the party's key file.")],
    db: Annotated[str, typer.Option(help="SQLite file or database URL.")] = DEFAULT_DB,
    mechanism: Annotated[str, typer.Option(help="Mechanism id.")] = "tr-il-syria",
) -> None:
    """Record a party's public key in the mechanism (the operator does this; it is a record entry).

    Example: deconflict keys register --db deconflict.db --party TR --public-key 9dJ3...=
    """
    from deconflict import signing

    service = _service(db)
    key = service.register_key(mechanism_id=mechanism, party=party, public_key=signing.read_public_key(public_key))
    typer.echo(f"registered {key['key_id']} for {key['owner']} at entry {key['registered_seq']}")


@keys_app.command("list")
@user_errors
def keys_list(
    db: Annotated[str, typer.Option(help="SQLite file or database URL.")] = DEFAULT_DB,
    mechanism: Annotated[str, typer.Option(help="Mechanism id.")] = "tr-il-syria",
) -> None:
    """The mechanism's keys, their fingerprints and who holds each private key.

    Example: deconflict keys list --db deconflict-demo.db
    """

    service = _service(db)
    for k in service.keys(mechanism):
        revoked = f"  revoked at entry {k['revoked_seq']}" if k["revoked_seq"] else ""
        typer.echo(f"{k['key_id']}  {k['owner']:<8} held by {k['custody']}{revoked}")


@app.command()
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
    try:
        body = json.loads(_read_text(notice))
    except json.JSONDecodeError as e:
        raise DeconflictError(f"{notice}: not JSON ({e.msg} at line {e.lineno})") from None
    if not isinstance(body, dict) or "kind" not in body or not isinstance(body.get("volumes"), list):
        raise DeconflictError(f"{notice}: expected an object with kind and a list of volumes")
    client = _client(url, token, key)
    out = client.notify(kind=body["kind"], volumes=body["volumes"], id=body.get("id"), title=body.get("title", ""))
    signed = f", signed with {client.key_id}" if client.key is not None else ""
    typer.echo(f"{out['activity']['id']} notified (record entry {out['seq']}{signed})")
    for c in out["raised"]:
        typer.echo(f"  conflict {c['id']}: {c['kind']}, deadline {c['deadline']}")


@app.command()
@user_errors
def positions(
    path: Annotated[Path, typer.Argument(help="CSV: id,lat,lon,alt_ft,gs_kt,trk_deg,vs_fpm (as 'deconflict tracks').")],
    at: Annotated[
        str | None, typer.Option(help="When the positions were measured, ISO 8601 UTC (default: now).")
    ] = None,
    url: UrlOpt = "http://127.0.0.1:8080",
    token: TokenOpt = "",
) -> None:
    """Send your party's track positions to a running service (one batch: all stored, or none) and print the
    conflicts they raise: predicted loss of separation, a track outside your notices, a track in another's.

    Example: deconflict positions tracks.csv --token $TR
    """
    from datetime import UTC, datetime

    from deconflict.clock import iso
    from deconflict.formats.tracks_csv import read_tracks_csv

    tracks = read_tracks_csv(_read_text(path), source=str(path))  # the CSV's own errors name row and column
    when = iso(_instant(at, "at") or datetime.now(UTC))
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
    out = _client(url, token).report_tracks(reports)
    typer.echo(f"{out['stored']} positions stored")
    for c in out["raised"]:
        other = f" and {c['other_activity']}" if c.get("other_activity") else ""
        typer.echo(f"  conflict {c['id']}: {c['kind']}, {c['activity']}{other}; acknowledge by {c['deadline']}")
    for cid in out["cleared"]:
        typer.echo(f"  conflict {cid} cleared")


# --- the duty officer's loop from a terminal: list, amend, cancel, acknowledge, resolve ----------


def _say(line: str = "") -> None:
    """One line to stdout, flushed at once (a pipe or a file sees it now); a closed pipe ends quietly."""
    try:
        sys.stdout.write(line + "\n")
        sys.stdout.flush()
    except BrokenPipeError:
        import os

        try:  # the reader went away (| head): stop without a traceback at exit
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        except (OSError, ValueError):
            pass
        raise typer.Exit(0) from None


def _t(value: Any) -> str:
    """An instant as ISO 8601 UTC to the second: 2026-12-02T08:00:00Z (the Z says UTC; no microseconds)."""
    from deconflict.clock import parse_utc

    if not value:
        return "-"
    t = parse_utc(value, field="time")
    return t.strftime("%Y-%m-%dT%H:%M:%SZ")


def _window(start: Any, end: Any) -> str:
    a, b = (_t(start) if start else "open"), (_t(end) if end else "open-ended")
    if a[:10] == b[:10]:
        return f"{a[:10]} {a[11:]}–{b[11:]}"  # one day: the date once
    return f"{a} – {b}"


def _natural(value: str) -> tuple[Any, ...]:
    """Sort key that puts M2 before M10 (numbers inside ids compared as numbers)."""
    import re

    return tuple(int(p) if p.isdigit() else p for p in re.split(r"(\d+)", value))


def _altitude(value: str, option: str) -> float:
    """Metres above mean sea level from '1500', '1500m', '5000ft' or 'FL120' (hundreds of feet)."""
    import math
    import re

    text = value.strip().lower().replace(" ", "").replace("_", "")
    number = text.removeprefix("fl").removesuffix("ft").removesuffix("m")
    if re.fullmatch(r"\d{1,3}([.,]\d{3})+", number) or "," in number:
        # '1.000' is one thousand to a Turkish reader and one to an English one: say which, never guess
        raise DeconflictError(
            f"{option}: {value!r} is ambiguous; write the number without separators (1000 or 1.5), in metres, "
            "feet (5000ft) or a flight level (FL120)",
            field=option,
        )
    try:
        if text.startswith("fl"):
            metres = float(text[2:]) * 100 * FT_M
        elif text.endswith("ft"):
            metres = float(text[:-2]) * FT_M
        else:
            metres = float(text[:-1] if text.endswith("m") else text)
    except ValueError:
        metres = math.nan
    if not math.isfinite(metres):
        raise DeconflictError(
            f"{option}: {value!r} is not an altitude; give metres above sea level (1500), feet (5000ft) "
            "or a flight level (FL120)",
            field=option,
        )
    return round(metres, 1)


def _shift(value: str) -> Any:
    """A signed duration: +2h, -30m, 1h30m, +90m, 45s."""
    import re
    from datetime import timedelta

    found = re.fullmatch(r"\s*([+-]?)\s*(?:(\d+(?:\.\d+)?)h)?\s*(?:(\d+(?:\.\d+)?)m(?:in)?)?\s*(?:(\d+)s)?\s*", value)
    if not found or not any(found.groups()[1:]):
        raise DeconflictError(
            f"--shift: {value!r} is not a duration; write it like +2h, -30m or +1h30m (later with +, earlier with -)",
            field="--shift",
        )
    sign, h, m, s = found.groups()
    delta = timedelta(hours=float(h or 0), minutes=float(m or 0), seconds=int(s or 0))
    return -delta if sign == "-" else delta


def _instant_option(value: str, option: str) -> Any:
    from deconflict.clock import parse_utc
    from deconflict.errors import InvalidInput

    try:
        return parse_utc(value, field=option)
    except InvalidInput:
        raise DeconflictError(
            f"{option}: {value!r} is not a time; give date and time in UTC with a Z, e.g. 2026-12-02T08:00Z",
            field=option,
        ) from None


def _read_activity(client: Any, activity_id: str) -> dict[str, Any]:
    """The current version of one of the member's own activities, with clear words when it is not."""
    from deconflict.client import ClientError

    try:
        current: dict[str, Any] = client.activity(activity_id)
    except ClientError as e:
        if e.status == 404:
            raise DeconflictError(
                f"{activity_id}: no activity with this id is visible to you ('deconflict activities' lists them)",
                field="activity",
            ) from None
        raise
    if current.get("partial") or current.get("party") != client.party:
        raise DeconflictError(
            f"{activity_id} belongs to {current.get('party')}; only {current.get('party')} can change it",
            field="activity",
        )
    if current.get("state") not in ("notified", "acknowledged", "active"):
        raise DeconflictError(f"{activity_id} is {current.get('state')}; it can no longer change", field="activity")
    return current


def _stale(activity_id: str, version: int, current: dict[str, Any]) -> str:
    seen = int(current["version"])
    if version > seen:
        return f"--version: {activity_id} has no version {version}; it is at version {seen}"
    return (
        f"--version: you looked at version {version}, but {activity_id} is now at version {seen} "
        f"(changed {_t(current.get('notified_at'))}); look again with 'deconflict activities'"
    )


VOLUME_KEYS = ("id", "geometry", "radius_m", "floor_m", "ceiling_m", "start", "end")


def _read_amendment(path: Path, activity_id: str) -> dict[str, Any]:
    """A JSON file with what changes: kind, title and/or volumes (a notice file as 'notify' reads will do)."""
    try:
        doc = json.loads(_read_text(path))
    except json.JSONDecodeError as e:
        raise DeconflictError(f"{path}: not JSON ({e.msg} at line {e.lineno})") from None
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
            lines.append(f"{vid}: new volume, {_window(v['start'], v['end'])}, {v['floor_m']:g}–{v['ceiling_m']:g} m")
            continue
        if (was["start"], was["end"]) != (v["start"], v["end"]):
            lines.append(f"{vid}: window {_window(was['start'], was['end'])} → {_window(v['start'], v['end'])}")
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


def _conflict_line(c: dict[str, Any]) -> str:
    """One conflict in a line: id, kind, what, status, who must still acknowledge and by when."""
    kind = str(c.get("kind", "")).replace("_", " ")
    what = [str(c[k]) for k in ("activity", "other_activity") if c.get(k)]
    subject = " and ".join(what)
    if c.get("zone"):
        subject += f" in zone {c['zone']}"
    if c.get("kind") == "separation" and c.get("distance_m") is not None and c.get("separation_m"):
        apart = float(c["distance_m"])
        subject += ", overlapping" if apart == 0 else f", {apart / 1000:.1f} km apart"
        subject += f" (separation {float(c['separation_m']) / 1000:.2f} km)"
    status = str(c.get("status", ""))
    if status == "resolved":
        status = f"resolved ({c.get('resolution')})"
    waiting = [p for p in c.get("awaiting") or [] if p not in (c.get("acknowledged") or {})]
    tail = f", awaiting {', '.join(waiting)}, acknowledge by {_t(c.get('deadline'))}" if waiting else ""
    if c.get("status") == "resolved":
        tail = ""
    return f"{c.get('id')}  {kind}  {subject}  {status}{tail}"


def _outcome_lines(out: dict[str, Any], why: str) -> list[str]:
    lines = [f"  conflict {cid} closed ({why})" for cid in out.get("resolved") or []]
    for c in out.get("raised") or []:
        lines.append(f"  new conflict {_conflict_line({**c, 'status': c.get('status', 'open')})}")
    return lines


def _signed(client: Any) -> str:
    return f", signed with {client.key_id}" if client.key is not None else ""


@app.command()
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
    client = _client(url, token)
    found = sorted(client.activities(include_closed=all_), key=lambda a: _natural(a["id"]))
    if as_json:
        _say(json.dumps(found, ensure_ascii=False, indent=2))
        return
    for a in found:
        if a.get("partial"):
            _say(f"{a['id']}  {a['party']}  {a.get('kind', '')}  (only the part in conflict with yours is shown)")
            continue
        vols = a.get("volumes") or []
        band = f"{min(v['floor_m'] for v in vols):g}–{max(v['ceiling_m'] for v in vols):g} m" if vols else ""
        _say(
            f"{a['id']}  {a['party']}  {a['kind']}  v{a['version']}  {a['state']}  "
            f"{_window(a['start'], a['end'])}  {band}"
        )


@app.command()
@user_errors
def conflicts(
    all_: Annotated[bool, typer.Option("--all", help="Also resolved conflicts.")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="The conflicts as JSON.")] = False,
    url: UrlOpt = "http://127.0.0.1:8080",
    token: TokenOpt = "",
) -> None:
    """The conflicts that concern you on a running service (unresolved ones unless --all): kind, activities,
    status, who must still acknowledge and by when.

    Example: deconflict conflicts --token $IL
    """
    client = _client(url, token)
    found = sorted(client.conflicts(status=None if all_ else "unresolved"), key=lambda c: _natural(c["id"]))
    if as_json:
        _say(json.dumps(found, ensure_ascii=False, indent=2))
        return
    if not found:
        _say("no conflicts" if all_ else "no unresolved conflicts")
    for c in found:
        _say(_conflict_line(c))


@app.command()
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
    version: Annotated[
        int | None,
        typer.Option(min=1, help="The version you looked at; refused if the activity has changed since."),
    ] = None,
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
    from datetime import timedelta

    from deconflict.clock import iso

    if shift is not None and (start is not None or end is not None):
        raise DeconflictError("give either --shift (move the window) or --start/--end (set it), not both")
    delta: timedelta | None = _shift(shift) if shift is not None else None
    new_start = _instant_option(start, "--start") if start is not None else None
    new_end = _instant_option(end, "--end") if end is not None else None
    new_floor = _altitude(floor, "--floor") if floor is not None else None
    new_ceiling = _altitude(ceiling, "--ceiling") if ceiling is not None else None
    if radius_m is not None and not 0 < radius_m <= 500_000:
        raise DeconflictError(f"--radius-m: {radius_m:g} is not a radius; give metres above 0 (at most 500 km)")
    changes_file = _read_amendment(file, activity) if file is not None else {}

    client = _client(url, token, key)
    current = _read_activity(client, activity)
    seen = int(current["version"])
    if version is not None and version != seen:
        raise DeconflictError(_stale(activity, version, current), field="--version")
    if changes_file.get("version") not in (None, seen):
        raise DeconflictError(
            f"{file}: written for version {changes_file['version']}, but {activity} is now at version {seen}"
        )
    new = {
        "kind": changes_file.get("kind", current["kind"]) if kind is None else kind,
        "title": changes_file.get("title", current.get("title", "")) if title is None else title,
        "volumes": copy.deepcopy(changes_file.get("volumes", current["volumes"])),
    }
    new["volumes"] = [
        {k: v[k] for k in VOLUME_KEYS if k in v and v[k] is not None} if isinstance(v, dict) else v
        for v in new["volumes"]
    ]
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
            v["start"] = iso(_instant_option(v["start"], "start") + delta)
            v["end"] = iso(_instant_option(v["end"], "end") + delta)
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
        if _instant_option(v["end"], "end") <= _instant_option(v["start"], "start"):
            raise DeconflictError(
                f"{where}: the window would end ({_t(v['end'])}) before it starts ({_t(v['start'])}); "
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
        "volumes": [{k: v[k] for k in VOLUME_KEYS if k in v and v[k] is not None} for v in current["volumes"]],
    }
    described = _describe_changes(old, new)
    if not described:
        raise DeconflictError(
            "nothing to change: give what changes, e.g. --shift +2h, --start/--end, --floor/--ceiling, "
            "--radius-m, --kind, --title or --file"
        )
    if dry_run:
        _say(f"{activity} version {seen} would become version {seen + 1} (nothing sent):")
        for line in described:
            _say(f"  {line}")
        return
    body: dict[str, Any] = {"volumes": new["volumes"]}
    if new["kind"] != old["kind"]:
        body["kind"] = new["kind"]
    if new["title"] != old["title"]:
        body["title"] = new["title"]
    out = client.amend(activity, version=seen, **body)
    a = out["activity"]
    _say(f"{a['id']} amended: version {seen} → {a['version']} (record entry {out['seq']}{_signed(client)})")
    for line in described:
        _say(f"  {line}")
    for line in _outcome_lines(out, "amended"):
        _say(line)


@app.command()
@user_errors
def cancel(
    activity: Annotated[str, typer.Argument(help="Your activity's id, e.g. TR-0003.")],
    version: Annotated[
        int | None,
        typer.Option(min=1, help="The version you looked at; refused if the activity has changed since."),
    ] = None,
    key: KeyOpt = None,
    url: UrlOpt = "http://127.0.0.1:8080",
    token: TokenOpt = "",
) -> None:
    """Cancel one of your activities on a running service; its open conflicts close.

    Example: deconflict cancel TR-0003 --token $TR
    """
    client = _client(url, token, key)
    current = _read_activity(client, activity)
    if version is not None and version != int(current["version"]):
        raise DeconflictError(_stale(activity, version, current), field="--version")
    out = client.cancel(activity, version=version)
    a = out["activity"]
    _say(f"{a['id']} cancelled: version {a['version']} (record entry {out['seq']}{_signed(client)})")
    for line in _outcome_lines(out, "activity cancelled"):
        _say(line)


@app.command()
@user_errors
def ack(
    item: Annotated[str, typer.Argument(help="A conflict id (C7) or a hotline message id (M12).")],
    key: KeyOpt = None,
    url: UrlOpt = "http://127.0.0.1:8080",
    token: TokenOpt = "",
) -> None:
    """Acknowledge a conflict that awaits your party (C7), or a hotline message addressed to it (M12, as
    'hotline ack'). Acknowledging stops the climb up the escalation ladder.

    Example: deconflict ack C2 --token $IL
    """
    import re

    client = _client(url, token, key)
    if re.fullmatch(r"M\d+", item.strip()):
        _say(_show(client.acknowledge_message(item.strip())))
        return
    c = client.acknowledge_conflict(item.strip())
    when = (c.get("acknowledged") or {}).get(client.party)
    when = when.get("at") if isinstance(when, dict) else when
    at = f" at {_t(when)}" if isinstance(when, str) else ""
    _say(f"{c['id']} acknowledged by {client.party}{at}{_signed(client)}")
    _say(f"  {_conflict_line(c)}")


RESOLUTIONS = ("accepted", "escalated")


@app.command()
@user_errors
def resolve(
    conflict: Annotated[str, typer.Argument(help="The conflict's id, e.g. C2.")],
    resolution: Annotated[
        str, typer.Option("--as", help="accepted (both sides live with it) or escalated (to the facilitator).")
    ],
    note: Annotated[str, typer.Option(help="Why, in a few words (recorded; at most 500 characters).")] = "",
    key: KeyOpt = None,
    url: UrlOpt = "http://127.0.0.1:8080",
    token: TokenOpt = "",
) -> None:
    """Close a conflict that concerns your party (or any, as facilitator): accepted or escalated.
    To close it as amended, amend or cancel the activity instead.

    Example: deconflict resolve C2 --as accepted --note "IL holds until 10:00Z" --token $IL
    """
    how = resolution.strip().lower()
    if how not in RESOLUTIONS:
        raise DeconflictError(
            f"--as: {resolution!r} is not a resolution here; give accepted or escalated "
            "(to close it as amended, amend or cancel the activity: 'deconflict amend', 'deconflict cancel')",
            field="--as",
        )
    if len(note) > 500:
        raise DeconflictError(f"--note: {len(note)} characters; keep it to 500", field="--note")
    client = _client(url, token, key)
    c = client.resolve_conflict(conflict.strip(), resolution=how, note=note)
    _say(f"{c['id']} resolved as {c.get('resolution', how)} by {client.party}{_signed(client)}")
    _say(f"  {_conflict_line(c)}")
