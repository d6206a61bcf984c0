"""PostgreSQL for the tests: a fresh, migrated database per test on the tests' own cluster.

``DECONFLICT_TEST_PG`` names a database URL on a server where the tests may create and drop databases
(``scripts/pg-test-cluster start`` starts such a cluster and prints it; ``.ci/run`` exports it). The
first use migrates a template database once per session; each test then gets a copy of it
(``CREATE DATABASE … TEMPLATE``, tens of milliseconds) and drops it afterwards, so no test sees
another's rows and none pays for the migrations again.
"""

from __future__ import annotations

import itertools
import os

from sqlalchemy import Engine, create_engine, make_url, text

from deconflict.store import database_url, open_store

__all__ = ["PG_ENV", "PgDatabases", "pg_url_from_env"]

PG_ENV = "DECONFLICT_TEST_PG"
"""The environment variable naming the tests' PostgreSQL server (a database URL)."""


def pg_url_from_env() -> str | None:
    """The tests' PostgreSQL URL (driver made explicit), or None when the variable is unset or empty."""
    url = os.environ.get(PG_ENV, "").strip()
    return database_url(url) if url else None


class PgDatabases:
    """Creates and drops the tests' databases on one server.

    Raises (on construction):
        sqlalchemy.exc.OperationalError: the server is unreachable.
    """

    def __init__(self, url: str) -> None:
        self._url = make_url(url)
        self._admin: Engine = create_engine(self._url, isolation_level="AUTOCOMMIT", pool_pre_ping=True)
        self._prefix = f"dt{os.getpid()}"
        self._names = itertools.count(1)
        self.template = f"{self._prefix}_template"
        with self._admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{self.template}" WITH (FORCE)'))
            conn.execute(text(f'CREATE DATABASE "{self.template}"'))
        open_store(self.url_of(self.template)).close()  # migrated once; the copies start at head

    def url_of(self, name: str) -> str:
        """The URL of database ``name`` on the same server."""
        return self._url.set(database=name).render_as_string(hide_password=False)

    def create(self) -> str:
        """A new database, a copy of the migrated template; its URL."""
        name = f"{self._prefix}_{next(self._names)}"
        with self._admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}" TEMPLATE "{self.template}"'))
        return self.url_of(name)

    def drop(self, url: str) -> None:
        """Drop a database made by :meth:`create`, whoever is still connected to it."""
        name = make_url(url).database
        with self._admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))

    def close(self) -> None:
        """Drop the template and let go of the server."""
        self.drop(self.url_of(self.template))
        self._admin.dispose()
