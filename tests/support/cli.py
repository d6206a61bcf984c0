"""The command line as a test types it, in process (Typer's runner), and a database's content for "nothing
changed" checks."""

from __future__ import annotations

import hashlib
import sqlite3
from contextlib import closing
from pathlib import Path

from typer.testing import CliRunner

from deconflict.cli import app

runner = CliRunner()


def run(*args: str) -> tuple[int, str]:
    """``deconflict ARGS``: (exit status, what it printed)."""
    done = runner.invoke(app, list(args))
    return done.exit_code, done.output


def ok(*args: str) -> str:
    """``deconflict ARGS``, which must succeed: what it printed."""
    code, said = run(*args)
    assert code == 0, said
    return said


def rows_digest(db: Path) -> str:
    """Everything an SQLite database holds, every table's rows (not its file's bytes: a store another command left
    open folds its write-ahead log into the file when it is collected, which changes no row)."""
    with closing(sqlite3.connect(f"file:{db}?mode=ro", uri=True)) as conn:
        return hashlib.sha256("\n".join(conn.iterdump()).encode()).hexdigest()
