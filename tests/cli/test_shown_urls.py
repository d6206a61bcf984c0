"""A database URL's password never reaches the terminal: ``serve``, ``demo``, ``restore`` and ``mechanism
declare`` masked it already; ``replay`` and ``ledger`` printed it in their headers and errors."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import make_url
from support.pg import PgDatabases
from typer.testing import CliRunner

from deconflict.cli import app
from deconflict.clock import iso
from deconflict.scenarios import scenario_path

runner = CliRunner()


def test_replay_and_ledger_never_print_a_database_password(pg_databases: PgDatabases) -> None:
    url = pg_databases.create()
    try:
        secret = make_url(url).set(password="SECRETPW").render_as_string(hide_password=False)
        later = iso(datetime.now(UTC) + timedelta(minutes=1))
        said = []
        for args in (
            ["mechanism", "declare", str(scenario_path("syria")), "--db", secret],
            ["replay", "--db", secret, "--at", later],  # the header names its source
            ["replay", "--db", secret, "--at", later, "--mechanism", "nope"],
            ["ledger", "check", "--db", secret, "--mechanism", "nope"],
            ["ledger", "export", "--db", secret, "--mechanism", "nope", "--out", "-"],
        ):
            run = runner.invoke(app, args)
            said.append(run.output)
            assert "SECRETPW" not in run.output, (args, run.output)
        assert "postgres:***@" in said[1] and "has no record in postgres" in said[2] + said[3]
    finally:
        pg_databases.drop(url)
