"""Commands that run the service: ``serve`` (the HTTP API and page over a database) and ``demo`` (the
Syria scenario, served or played in the terminal)."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from deconflict.cli.common import DEFAULT_DB, shown_db, user_errors
from deconflict.errors import DeconflictError
from deconflict.logs import LogFormat

if TYPE_CHECKING:
    from deconflict.api.settings import Settings
    from deconflict.service import Service

__all__ = ["demo", "serve"]


WritesPerMinuteOpt = Annotated[
    int,
    typer.Option(min=0, help="Writes one member may make per minute before 429 (0: no limit, e.g. for a load test)."),
]
LogFormatOpt = Annotated[
    LogFormat,
    typer.Option(
        help="Log lines on stderr as text, or as one JSON object per line (time, level, logger, message; "
        "for a request: method, route, status, duration_ms, member).",
    ),
]


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
    docs: Annotated[
        bool, typer.Option("--docs/--no-docs", help="Serve the interactive API documentation at /docs and /redoc.")
    ] = True,
    writes_per_minute: WritesPerMinuteOpt = 600,
    log_format: LogFormatOpt = LogFormat.TEXT,
) -> None:
    """Serve the Syria scenario: seeds the database when empty, prints the URL and a token per demo member.

    A second start reuses the same data and tokens. With --script, play the scenario in the terminal
    (notices, a separation conflict, the red-line hit, a short notice, an amendment) and exit.

    Example: deconflict demo --db demo.db --port 8080
    """
    from rich.console import Console

    from deconflict.clock import system_clock

    if script:
        from deconflict.demo import SCRIPT_SPAN, run_script

        if db is None:
            import tempfile

            db = str(Path(tempfile.mkdtemp(prefix="deconflict-demo-")) / "demo.db")
        else:
            _refuse_played(db)
        # the script's one clock ends at now: the record holds nothing in the future, and a service or
        # export that opens it later on the system clock carries on from its last entry
        run_script(Console(), db=db, start=system_clock() - SCRIPT_SPAN)
        import shlex

        shown = shown_db(db)  # quoted for a shell (a space in the path, a URL's '&'); a hidden password said so
        hidden = " (with the password where *** stands)" if shown != db and "***" in shown else ""
        typer.echo(f"record kept in {shown}; check it with: deconflict ledger check --db {shlex.quote(shown)}{hidden}")
        return
    from deconflict.api.settings import Settings
    from deconflict.demo import prepare_server

    db = db or DEFAULT_DB
    _check_address(host, port)  # before the database is seeded
    service, tokens = prepare_server(db)
    url = f"http://{host}:{port}"
    console = Console()
    console.print(f"[bold]deconflict demo[/bold]: mechanism tr-il-syria on {shown_db(db)}")
    console.print(f"Page {url}/ (open it in two windows, sign in with two tokens)", soft_wrap=True)
    console.print(f"API {url}/api/v1 (OpenAPI at {url}/openapi.json)", soft_wrap=True)
    for member, token in tokens.items():
        console.print(f"  {member:>3}  {token}")
    console.print(
        f"Try: curl -H 'Authorization: Bearer {tokens['IL']}' -N {url}/api/v1/mechanisms/tr-il-syria/events",
        soft_wrap=True,
    )
    if docs:
        console.print(f"API documentation {url}/docs", soft_wrap=True)
    _serve(Settings(db=db, host=host, port=port, docs=docs, writes_per_member=writes_per_minute), service, log_format)


@user_errors
def serve(
    db: Annotated[
        str,
        typer.Option(
            envvar="DECONFLICT_DB",
            show_envvar=True,
            help="Database URL, or a path to an SQLite file. From the environment, a URL that holds a password "
            "stays off the command line, where ps shows it to every user of the host.",
        ),
    ] = "deconflict.db",
    port: Annotated[int, typer.Option(min=1, max=65535)] = 8080,
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    max_body_bytes: Annotated[int, typer.Option(min=1024, help="Largest request body accepted.")] = 1_048_576,
    checkpoint_every: Annotated[
        float,
        typer.Option(
            min=1.0,
            metavar="SECONDS",
            help="Sign a checkpoint of each record's head (when it moved) at most this often; parties' mirrors "
            "cosign each one.",
        ),
    ] = 60.0,
    docs: Annotated[
        bool, typer.Option("--docs", help="Also serve the interactive API documentation at /docs and /redoc.")
    ] = False,
    writes_per_minute: WritesPerMinuteOpt = 600,
    log_format: LogFormatOpt = LogFormat.TEXT,
    workers: Annotated[
        int,
        typer.Option(
            min=1,
            max=64,
            help="Server processes on this address, all on the one database (PostgreSQL; or an SQLite file on "
            "a local disk): appends are serialised in the database, one process runs the duty loop.",
        ),
    ] = 1,
    cpus: Annotated[
        str | None,
        typer.Option(
            metavar="LIST",
            help="Pin the server to these CPUs (Linux), e.g. 1, or 0,1 with --workers 2 (each worker takes one): "
            "its threads then hand the interpreter's lock over on one core (a hotline message took 1.4x less "
            "CPU so on 2 cores; notices gained less). Leave it out when the process checks many live tracks "
            "(their threads would share that CPU).",
        ),
    ] = None,
) -> None:
    """Run the HTTP API (OpenAPI at /openapi.json, API under /api/v1; /docs only with --docs).

    Example: deconflict serve --db postgresql://deconflict@db1/deconflict --port 8080 --workers 2
    """
    from deconflict.api.affinity import parse_cpus, pin
    from deconflict.api.settings import Settings

    chosen = parse_cpus(cpus) if cpus is not None else None

    settings = Settings(
        db=db,
        host=host,
        port=port,
        max_body_bytes=max_body_bytes,
        checkpoint_interval_s=checkpoint_every,
        docs=docs,
        writes_per_member=writes_per_minute,
    )
    _check_address(host, port, one_socket=workers > 1)
    if workers > 1:
        from deconflict import logs
        from deconflict.api.workers import serve_workers

        logs.configure(log_format)
        logging.getLogger("deconflict.serve").info(
            "starting %d processes to serve %s on http://%s:%d/api/v1", workers, shown_db(db), host, port
        )
        serve_workers(settings, workers, log_format, cpus=chosen)
        return
    if chosen is not None:
        pin(chosen)
    _serve(settings, log_format=log_format, cpus=chosen)


def _check_address(host: str, port: int, *, one_socket: bool = False) -> None:
    """Refuse, in words and before anything starts, an address the server could not listen on: a host name
    that does not resolve, a port another program holds, a port this user may not take. (uvicorn says
    "[Errno 98] Address already in use" without the address when several workers share it, "[Errno -2] Name
    or service not known" without naming --host, and only after the first line has said "serving".) It
    binds as the server will and lets go at once: one process, as asyncio's ``create_server`` (each address
    the host has, IPv6 ones IPv6-only); ``one_socket`` (``--workers``), as uvicorn's ``bind_socket`` (one
    socket, IPv6 when the host has a colon). Both with ``SO_REUSEADDR``: a port just freed is not refused.

    Raises:
        DeconflictError: the host or the port, named.
    """
    import errno
    import socket

    shown = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
    addresses: list[tuple[socket.AddressFamily, Any]]
    try:
        if one_socket:
            addresses = [(socket.AF_INET6 if ":" in host else socket.AF_INET, (host, port))]
        else:
            found = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
            addresses = list(dict.fromkeys((info[0], info[4]) for info in found))
        for family, address in addresses:
            with socket.socket(family, socket.SOCK_STREAM) as trial:
                trial.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                if family == socket.AF_INET6 and not one_socket:
                    trial.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
                trial.bind(address)
    except (socket.gaierror, UnicodeError) as e:  # the name, looked up here or by the bind (--workers)
        raise DeconflictError(f"--host {host}: no such host or address ({e})", field="host") from None
    except OSError as e:
        if e.errno == errno.EADDRNOTAVAIL:
            raise DeconflictError(f"--host {host}: not an address of this machine", field="host") from None
        if e.errno == errno.EADDRINUSE:
            why = "is in use by another program (another server already running?); stop it or choose --port"
        elif e.errno == errno.EACCES:
            why = "may not be taken by this user (ports below 1024 need privileges); choose --port"
        else:
            why = f"cannot be listened on ({e.strerror})"
        raise DeconflictError(f"--port {port}: {shown} {why}", field="port") from None


def _serve(
    settings: Settings,
    service: Service | None = None,
    log_format: LogFormat = LogFormat.TEXT,
    cpus: list[int] | None = None,
) -> None:
    """Run the API over ``service`` (one opened from ``settings`` when None) until interrupted, logging
    to stderr in ``log_format`` (uvicorn's own lines too: its loggers propagate to that one handler);
    ``cpus``: the CPUs the process was pinned to, said in the first line."""
    import uvicorn

    from deconflict import logs
    from deconflict.api import create_app
    from deconflict.api.serving import collect_less, return_big_buffers, uvicorn_config

    logs.configure(log_format)
    started = logging.getLogger("deconflict.serve")
    pinned = f", pinned to CPU {','.join(map(str, cpus))}" if cpus else ""
    made = None
    if service is None:  # opened before "serving" is said: a database refused is said alone, in one line
        from sqlalchemy import make_url

        from deconflict.service import Service
        from deconflict.store import database_url, open_store
        from deconflict.store.gate import sqlite_file

        path = sqlite_file(make_url(database_url(settings.db)))
        made = path if path is not None and not path.exists() else None  # a first start, or a mistyped --db
        service = Service(
            open_store(settings.db, group_commit=True),
            clock=settings.clock,
            checkpoint_interval_s=settings.checkpoint_interval_s,
        )
    started.info("serving %s on http://%s:%d/api/v1%s", shown_db(settings.db), settings.host, settings.port, pinned)
    if made is not None:  # said either way, right after the first line
        started.warning(
            "no database at %s: a new, empty one is made there; if you meant another, stop and check --db", made
        )
    app_ = create_app(settings, service, closes_store=True)  # this process is done with it when the server stops
    collect_less()
    return_big_buffers()
    server = uvicorn.Server(uvicorn_config(app_, settings, log_config=None))
    stop = server.handle_exit

    def handle_exit(sig: int, frame: Any) -> None:
        # An open event stream (a browser tab, curl -N) must not hold a Ctrl-C: the hub ends every stream. (Nothing
        # is logged here: a signal handler that logs can wait forever on the lock of the line it interrupted; the
        # application's shutdown says that it stopped.)
        app_.state.hub.close()
        stop(sig, frame)

    server.handle_exit = handle_exit  # type: ignore[method-assign]
    server.run()


def _refuse_played(db: str) -> None:
    """--script plays the scenario from its start: on a database that already holds its record it would
    append a second play after the first (its clock behind the record's). Refused, in words."""
    from deconflict.demo import MECHANISM
    from deconflict.service import Service

    if "://" not in db and not Path(db).exists():
        return
    service = Service.open(db)
    try:
        played = MECHANISM in service.mechanism_ids()
    finally:
        service.store.close()
    if played:
        raise DeconflictError(
            f"--db: {shown_db(db)} already holds the scenario's record; --script plays it from the start on a new "
            "database (give a new file, or leave out --db for a temporary one)",
            field="db",
        )
