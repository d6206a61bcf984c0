"""``backup`` and ``restore``: a consistent copy of a database taken while the service runs, and a new
database rebuilt from a copy's record, checked before it is used.

These two work on database files and URLs themselves, below the service: a restore must build the
tables before any service may open them (:mod:`deconflict.store.backup`, :mod:`deconflict.store.restore`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from deconflict.cli.common import fail, shown_db, user_errors

__all__ = ["backup", "register", "restore"]


@user_errors
def backup(
    db: Annotated[str, typer.Option(help="The database to copy: an SQLite file or a PostgreSQL URL.")],
    out: Annotated[Path, typer.Option(help="The backup file to write (one SQLite file).")],
    force: Annotated[bool, typer.Option(help="Replace OUT if it exists.")] = False,
) -> None:
    """Copy a database consistently while the service runs on it.

    SQLite: SQLite's online backup API, in steps, inside one read transaction
    (the copy is the database at one instant; writers go on meanwhile).
    PostgreSQL: a logical export of every table in one REPEATABLE READ snapshot
    into the same SQLite file format (not pg_dump: 'deconflict restore' reads the
    record from the file itself, onto either store). The file is written aside
    and renamed into place when complete.

    Example: deconflict backup --db deconflict.db --out deconflict-2026-12-02.backup
    """
    from sqlalchemy.exc import SQLAlchemyError

    from deconflict.store import backup as backups

    try:
        report = backups.backup(db, out, force=force)
    except SQLAlchemyError as e:
        raise fail(f"--db: the database could not be read ({type(e).__name__}: {str(e).splitlines()[0]})") from None
    for mechanism, head in sorted(report.heads.items()):
        typer.echo(f"{mechanism}: record to entry {head.seq} ({head.hash[:16]}…)")
    size = report.bytes / 2**20
    typer.echo(f"backup written to {report.out} ({report.method}, {size:.1f} MiB, {report.seconds:.1f} s)")


@user_errors
def restore(
    from_: Annotated[
        Path, typer.Option("--from", help="The backup file, as 'deconflict backup' wrote it.", show_default=False)
    ],
    db: Annotated[str, typer.Option(help="The new database: an SQLite file, or the URL of an empty PostgreSQL one.")],
    force: Annotated[bool, typer.Option(help="Replace the SQLite file DB if it exists.")] = False,
) -> None:
    """Rebuild a database from a backup's record, and check it before it is used.

    The new database gets the schema, the record's entries, and every table
    rebuilt from the record (as replay does); tokens, the service's keys,
    checkpoints, cosignatures and tracks are copied. Each chain is then verified
    and held against its signed checkpoints, and the rebuilt tables are compared
    with the backup's row by row. If anything disagrees the restore is refused
    (exit 1) and nothing is left behind: an SQLite file is written aside and
    renamed into place at the end, a PostgreSQL database is filled in one
    transaction.

    Example: deconflict restore --from deconflict-2026-12-02.backup --db restored.db
    """
    from sqlalchemy.exc import SQLAlchemyError

    from deconflict.store import restore as restoring

    try:
        report = restoring.restore(from_, db, force=force, progress=lambda line: typer.echo(line, err=True))
    except restoring.BackupRefused as e:
        typer.echo(f"error: {from_} refused, nothing written to {shown_db(db)}: {e.message}", err=True)
        raise typer.Exit(1) from None
    except SQLAlchemyError as e:
        raise fail(f"--db: the database could not be written ({type(e).__name__}: {str(e).splitlines()[0]})") from None
    taken = report.manifest.get("taken_at")
    if taken:
        typer.echo(f"backup taken {taken} ({report.manifest.get('method', 'method not said')})")
    for mechanism, head in sorted(report.heads.items()):
        typer.echo(f"{mechanism}: record verified to entry {head.seq} ({head.hash[:16]}…)")
    copied = ", ".join(f"{n} {name}" for name, n in sorted(report.copied.items()) if n)
    typer.echo(f"tables rebuilt from {report.entries} entries and equal to the backup's; copied: {copied or 'nothing'}")
    typer.echo(f"restored into {shown_db(db)} in {report.seconds:.1f} s: ready to serve")


def register(app: typer.Typer) -> None:
    """Add ``backup`` and ``restore`` to the command line."""
    app.command()(backup)
    app.command()(restore)
