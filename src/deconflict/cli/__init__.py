"""The ``deconflict`` command line: batch checks, the ledger, the demo.

One module per group of commands; this one builds the Typer ``app`` and registers them in the
order ``deconflict --help`` lists them:

=============== ======================================================================
``files``       offline, over files: check, tracks, mechanism check
``server``      run the service: demo, serve
``record``      the signed record: ledger check/export/verify, report, timeline, replay
``activities``  on a running service: notify, positions, activities, amend, cancel
``conflicts``   on a running service: conflicts, ack, resolve
``hotline``     on a running service: hotline send/ack/tail
``admin``       member add/token/revoke, keys generate/register/list
``interop``     other systems' formats: import ..., export ..., notam
``remote``      how those commands reach a running service and word its answers
``common``      errors for a person, readers, parsers, output lines (member text neutralised for the
                terminal: ``safe_text``, ``TerminalGuard``), the database via the service
=============== ======================================================================

Importing this package loads Typer and the standard library only; each command imports what it
needs when it runs, so ``deconflict --help`` starts fast.
"""

from __future__ import annotations

import typer

from deconflict.cli import (
    activities,
    admin,
    backup,
    conflicts,
    files,
    hotline,
    interop,
    mirror,
    record,
    server,
    zones_io,
)
from deconflict.cli import tak as tak_cli
from deconflict.cli.common import guard_stdout

__all__ = ["app", "main"]

app = typer.Typer(
    name="deconflict",
    help="Deconfliction between parties sharing a theatre: notices, conflicts, hotline, signed record.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

for _command in (
    files.check,
    files.tracks,
    server.demo,
    server.serve,
    record.report,
    record.timeline,
    record.replay,
    activities.notify,
    activities.positions,
    activities.activities,
    conflicts.conflicts,
    activities.amend,
    activities.cancel,
    conflicts.ack,
    conflicts.resolve,
    mirror.mirror,
    interop.notam,
):
    app.command()(_command)
del _command
backup.register(app)  # backup, restore
zones_io.register(interop.import_app, interop.export_app)  # import kml, import ed269, export kml
app.command()(tak_cli.tak)  # tak: the picture to a TAK server as Cursor on Target

app.add_typer(record.ledger_app, name="ledger")
app.add_typer(admin.member_app, name="member")
app.add_typer(files.mechanism_app, name="mechanism")
app.add_typer(hotline.hotline_app, name="hotline")
app.add_typer(admin.keys_app, name="keys")
app.add_typer(interop.import_app, name="import")
app.add_typer(interop.export_app, name="export")


UNGUARDED = frozenset({"demo", "serve"})
"""Commands whose console output is the program's own (colours, the server's log): stdout left as it is."""


@app.callback()
def _guard_terminal(ctx: typer.Context) -> None:
    # every other command prints what members wrote: through the guard (cli/common.safe_text)
    if ctx.invoked_subcommand not in UNGUARDED:
        guard_stdout()


def main() -> None:
    """Run the command line (the ``deconflict`` console script).

    A usage error (an option unknown, a value that is not a number, an argument missing) is said as every other
    refusal is: one line on standard error starting ``error:``, exit 2 (docs/contracts.md); Typer drew it as a
    usage line and a boxed panel of several lines. ``deconflict`` alone, or a group alone, still shows its help."""
    from typer.exceptions import TyperException

    try:
        done = app(standalone_mode=False)
    except TyperException as e:  # click's usage errors (Typer carries click; its classes are not public)
        ctx = getattr(e, "ctx", None)
        if type(e).__name__ == "NoArgsIsHelpError":  # nothing given: the help is shown already, as before
            raise SystemExit(e.exit_code) from None
        where = f" (see '{ctx.command_path} --help')" if ctx is not None else ""
        typer.echo(f"error: {' '.join(e.format_message().split())}{where}", err=True)
        raise SystemExit(e.exit_code) from None
    except typer.Abort:
        typer.echo("Aborted!", err=True)
        raise SystemExit(1) from None
    # a command returns nothing; an exit it asked for (typer.Exit) comes back as its code
    raise SystemExit(done if isinstance(done, int) and not isinstance(done, bool) else 0)
