"""PostgreSQL for the benchmarks: a server to create throwaway databases on, or why there is none.

Where it comes from, first found: ``DECONFLICT_BENCH_PG``, then ``DECONFLICT_TEST_PG`` (a database URL on
a server where databases may be created and dropped), else a throwaway cluster this module starts itself
with ``scripts/pg-test-cluster`` in a temporary folder when Debian's PostgreSQL 15 binaries are installed
(stopped and deleted again by :meth:`PgServer.close`). That script starts a cluster tuned for tests
(fsync, full-page writes and synchronous commit off); the benchmark restarts its own cluster with all
three at their defaults (on), so that its figures are those of a durable server, as SQLite's are. The
settings of whichever server is used are reported (:attr:`PgServer.settings`).
"""

from __future__ import annotations

import itertools
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

from sqlalchemy import Engine, create_engine, make_url, text

from deconflict.store import database_url

__all__ = ["ENV", "PgServer", "find_postgres"]

ENV = ("DECONFLICT_BENCH_PG", "DECONFLICT_TEST_PG")
"""The environment variables that may name a PostgreSQL server, in the order they are looked at."""
ROOT = Path(__file__).resolve().parent.parent
CLUSTER_SCRIPT = ROOT / "scripts" / "pg-test-cluster"
PG_BIN = Path(os.environ.get("DECONFLICT_PG_BIN", "/usr/lib/postgresql/15/bin"))
DURABLE = ("fsync", "full_page_writes", "synchronous_commit")
"""The durability settings reported (the test cluster has them off; the benchmark's own has them on)."""


class PgServer:
    """A PostgreSQL server the benchmark creates one database per configuration on."""

    def __init__(self, url: str, origin: str, cluster_dir: Path | None = None) -> None:
        self.url = make_url(database_url(url))
        self.origin = origin
        """Where the server came from: an environment variable's name, or ``throwaway cluster``."""
        self.cluster_dir = cluster_dir
        self._admin: Engine = create_engine(self.url, isolation_level="AUTOCOMMIT", pool_pre_ping=True)
        self._names = itertools.count(1)
        with self._admin.connect() as conn:
            self.version = str(conn.execute(text("SHOW server_version")).scalar())
            self.settings = {name: str(conn.execute(text(f"SHOW {name}")).scalar()) for name in DURABLE}

    def create(self) -> str:
        """A new empty database on the server; its URL."""
        name = f"bench_{os.getpid()}_{next(self._names)}"
        with self._admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
            conn.execute(text(f'CREATE DATABASE "{name}"'))
        return self.url.set(database=name).render_as_string(hide_password=False)

    def drop(self, url: str) -> None:
        """Drop a database made by :meth:`create`, whoever is still connected to it."""
        with self._admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{make_url(url).database}" WITH (FORCE)'))

    def describe(self) -> dict[str, object]:
        """What the JSON says of the server: where it came from, its version and durability settings."""
        shown = self.url.set(database=None).render_as_string(hide_password=True)
        return {"origin": self.origin, "server": shown, "version": self.version, "settings": self.settings}

    def close(self) -> None:
        """Let go of the server; stop and delete the benchmark's own cluster."""
        self._admin.dispose()
        if self.cluster_dir is not None:
            subprocess.run([str(CLUSTER_SCRIPT), "stop", str(self.cluster_dir)], capture_output=True, check=False)
            shutil.rmtree(self.cluster_dir, ignore_errors=True)


def _own_cluster(port: int) -> PgServer:
    """Start a throwaway cluster with the test script, then restart it durable (see the module docstring:
    the script's ``-c`` options would outrank ``ALTER SYSTEM``, so the restart gives its own)."""
    folder = Path(tempfile.mkdtemp(prefix="bench-pg-"))
    started = subprocess.run(
        [str(CLUSTER_SCRIPT), "start", str(folder), str(port)], capture_output=True, text=True, check=False
    )
    if started.returncode != 0:
        shutil.rmtree(folder, ignore_errors=True)
        raise RuntimeError(f"scripts/pg-test-cluster start failed: {started.stderr.strip()[-400:]}")
    url = started.stdout.strip().splitlines()[-1]
    owner = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []  # as the script does
    opts = (
        f"-c port={port} -c listen_addresses= -c unix_socket_directories={folder} "
        "-c max_connections=300 -c shared_buffers=64MB"
    )
    restart = [str(PG_BIN / "pg_ctl"), "-D", str(folder / "data"), "-l", str(folder / "server.log")]
    restarted = subprocess.run(
        [*owner, *restart, "-o", opts, "-m", "fast", "-w", "-t", "60", "restart"],
        capture_output=True,
        text=True,
        check=False,
    )
    try:
        if restarted.returncode != 0:
            raise RuntimeError(f"pg_ctl restart failed: {restarted.stderr.strip()[-400:]}")
        return PgServer(url, "throwaway cluster (scripts/pg-test-cluster, restarted durable)", folder)
    except Exception:
        subprocess.run([str(CLUSTER_SCRIPT), "stop", str(folder)], capture_output=True, check=False)
        shutil.rmtree(folder, ignore_errors=True)
        raise


def find_postgres(port: int) -> tuple[PgServer | None, str]:
    """A server to benchmark on, or None and why not; ``port`` names a throwaway cluster's socket."""
    for name in ENV:
        url = os.environ.get(name, "").strip()
        if url:
            try:
                return PgServer(url, name), ""
            except Exception as e:
                return None, f"{name} is set but its server cannot be used: {type(e).__name__}: {str(e)[:300]}"
    if not (PG_BIN / "initdb").is_file():
        return None, f"no {' or '.join(ENV)} and no PostgreSQL 15 binaries at {PG_BIN} for a throwaway cluster"
    try:
        return _own_cluster(port), ""
    except Exception as e:
        return None, f"the throwaway cluster did not start: {type(e).__name__}: {str(e)[:300]}"
