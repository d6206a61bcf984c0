"""A PostgreSQL 15 primary and its synchronous streaming standby on one machine, for the failover test and
``bench/failover.py``: two clusters on two TCP ports of 127.0.0.1 in a temporary folder, and what a failover
drill does to them (kill the primary the hard way, promote the standby, clean up).

The primary runs with ``synchronous_standby_names='*'`` and ``synchronous_commit=on``: a commit returns only
once the standby has flushed it, so an acknowledged write is on both. The standby is a ``pg_basebackup -R``
copy of the primary (``standby.signal`` and ``primary_conninfo`` written by the backup) and is ready once the
primary's ``pg_stat_replication`` shows it streaming with ``sync_state = 'sync'``. The standby's own
settings name no synchronous standby: promoted, it must commit alone (with one, every commit would wait for
a standby that does not exist: writes would hang).

initdb and pg_ctl refuse to run as root: as root everything runs as the ``postgres`` user (as
``scripts/pg-test-cluster`` does), in a folder that user owns. Settings are given on the server's command
line (``pg_ctl -o``), never written to ``postgresql.conf``, so the standby's copy of the primary's files
does not inherit the primary's role; only ``wal_log_hints`` and ``wal_keep_size``, which both need whatever
their role (``pg_rewind`` reads them from the file when it brings a crashed primary back), are written there.
Debian's
PostgreSQL 15 binaries are looked for in ``/usr/lib/postgresql/15/bin`` (``DECONFLICT_PG_BIN`` overrides).

The drill's clients and the check of its outcome are in :mod:`support.failover_load`; ``bench/failover.py``
imports both modules, so that the test and the benchmark run the same drill.
"""

from __future__ import annotations

import getpass
import os
import shlex
import shutil
import signal
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import psycopg

from .live import free_port

__all__ = ["PG_BIN", "PgNode", "PgPair", "pg_binaries_missing"]

PG_BIN = Path(os.environ.get("DECONFLICT_PG_BIN", "/usr/lib/postgresql/15/bin"))
"""Where PostgreSQL 15's programs are (Debian's package puts them here)."""

_AS_ROOT = os.geteuid() == 0


def pg_binaries_missing() -> str | None:
    """Why the pair cannot run here (a sentence), or None when PostgreSQL 15's programs are all present."""
    for program in ("initdb", "pg_ctl", "pg_basebackup", "postgres"):
        if not (PG_BIN / program).is_file():
            return f"{PG_BIN / program} is missing: install Debian's postgresql-15 (apt-get install postgresql-15)"
    return None


def _as_owner(*argv: str | Path, timeout_s: float = 120) -> str:
    """Run a PostgreSQL program as the clusters' owner (``postgres`` when we are root); its output.

    Raises:
        RuntimeError: it failed (its output is in the message).
    """
    cmd = [str(a) for a in argv]
    if _AS_ROOT:
        cmd = ["runuser", "-u", "postgres", "--", *cmd]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout_s, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} exited {done.returncode}:\n{done.stdout}{done.stderr}")
    return done.stdout


def _alive(pid: int) -> bool:
    """Whether process ``pid`` still runs (a zombie, dead but not yet reaped by its parent, does not)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return False


def _command(pid: int) -> str:
    """A process's command line as ``ps`` shows it (PostgreSQL's processes name their role there)."""
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace").strip()
    except OSError:
        return ""


def _children(pid: int) -> list[int]:
    """The processes whose parent is ``pid`` (Linux: /proc)."""
    try:
        return [int(c) for c in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    except OSError:  # a kernel without that file: every process's parent, from its stat line
        found = []
        for stat in Path("/proc").glob("[0-9]*/stat"):
            try:
                fields = stat.read_text().rsplit(")", 1)[1].split()
            except (OSError, IndexError):
                continue
            if int(fields[1]) == pid:  # (state, ppid, ...) after the command name
                found.append(int(stat.parent.name))
        return found


@dataclass
class PgNode:
    """One cluster of the pair: its data folder, TCP port on 127.0.0.1, and socket folder."""

    name: str
    root: Path
    port: int = field(default_factory=free_port)

    @property
    def data(self) -> Path:
        return self.root / self.name / "data"

    @property
    def socket_dir(self) -> Path:
        return self.root / self.name

    @property
    def log(self) -> Path:
        return self.root / self.name / "server.log"

    @property
    def user(self) -> str:
        """The superuser initdb made: the clusters' owner."""
        return "postgres" if _AS_ROOT else getpass.getuser()

    @property
    def host(self) -> str:
        """``host:port`` as a connection string names this node over TCP."""
        return f"127.0.0.1:{self.port}"

    def connect(self, dbname: str = "postgres") -> psycopg.Connection[tuple[object, ...]]:
        """A superuser connection over the node's unix socket, in autocommit mode."""
        return psycopg.connect(
            host=str(self.socket_dir), port=self.port, user=self.user, dbname=dbname, autocommit=True, connect_timeout=5
        )

    def start(self, settings: dict[str, str]) -> None:
        """Start the server with ``settings`` on its command line (waits until it accepts connections)."""
        base = {
            "port": str(self.port),
            "listen_addresses": "127.0.0.1",
            "unix_socket_directories": str(self.socket_dir),
            "max_connections": "100",
            "shared_buffers": "32MB",
        }
        options = " ".join(f"-c {shlex.quote(f'{k}={v}')}" for k, v in (base | settings).items())
        try:
            _as_owner(PG_BIN / "pg_ctl", "-D", self.data, "-l", self.log, "-o", options, "-w", "-t", "60", "start")
        except RuntimeError as e:
            raise RuntimeError(f"{e}\n{self.log_tail()}") from None

    def postmaster_pid_file(self) -> int | None:
        """The process id the postmaster's lock file names (None: no lock file)."""
        try:
            return int((self.data / "postmaster.pid").read_text().splitlines()[0])
        except (OSError, IndexError, ValueError):
            return None

    def postmaster_pid(self) -> int | None:
        """The running postmaster's process id (None: not running)."""
        pid = self.postmaster_pid_file()
        return pid if pid is not None and _alive(pid) else None

    def kill(self) -> None:
        """SIGKILL the postmaster and every process it started, as if the machine went: no shutdown, no
        goodbye to clients or standby. The postmaster is stopped first so it forks nothing meanwhile."""
        pid = self.postmaster_pid()
        if pid is None:
            return
        os.kill(pid, signal.SIGSTOP)
        for child in _children(pid):
            try:
                os.kill(child, signal.SIGKILL)
            except ProcessLookupError:
                pass
        os.kill(pid, signal.SIGKILL)
        deadline = time.monotonic() + 30
        while _alive(pid) and time.monotonic() < deadline:
            time.sleep(0.005)

    def stop(self) -> None:
        """Stop the server if it runs (immediate mode: the files are thrown away next)."""
        if self.postmaster_pid() is not None:
            try:
                _as_owner(PG_BIN / "pg_ctl", "-D", self.data, "-m", "immediate", "-w", "stop", timeout_s=60)
            except (RuntimeError, subprocess.TimeoutExpired):
                self.kill()

    def log_tail(self, lines: int = 30) -> str:
        """The end of the server's log (for a failure's message)."""
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return f"({self.log} unreadable)"


class PgPair:
    """A primary and its synchronous standby in a fresh temporary folder; :meth:`start` builds and starts
    both, :meth:`close` stops both and deletes the folder.

    ``fsync`` off (the default) is for tests on a shared machine: the failover kills processes, not the
    machine, so the operating system still holds what was written; a benchmark of real figures turns it on.
    """

    def __init__(self, *, database: str = "deconflict", fsync: bool = False) -> None:
        missing = pg_binaries_missing()
        if missing:
            raise RuntimeError(missing)
        self.root = Path(tempfile.mkdtemp(prefix="deconflict-pg-pair-"))
        self.database = database
        self._fsync = "on" if fsync else "off"
        self.primary = PgNode("primary", self.root)
        self.standby = PgNode("standby", self.root)
        self.promoted = False

    def start(self, *, deadline_s: float = 60.0) -> PgPair:
        """initdb the primary and start it with synchronous replication, copy it to the standby with
        ``pg_basebackup -R``, start the standby, wait until the primary reports it streaming as its
        synchronous standby, and create the database (before that, a commit would wait for ever).

        Raises:
            RuntimeError: a step failed, or the standby was not in sync within ``deadline_s`` (the logs'
            ends are in the message).
        """
        for node in (self.primary, self.standby):
            node.socket_dir.mkdir(parents=True)
        if _AS_ROOT:
            shutil.chown(self.root, "postgres", "postgres")
            for node in (self.primary, self.standby):
                shutil.chown(node.socket_dir, "postgres", "postgres")
        _as_owner(PG_BIN / "initdb", "-D", self.primary.data, "-A", "trust", "-E", "UTF8", "--locale=C.UTF-8", "-N")
        with (self.primary.data / "postgresql.conf").open("a") as conf:
            # pg_rewind can make either node a standby after a failover: it needs hint bits logged, and the WAL
            # back to the last checkpoint before the fork (the crash recovery it runs first would recycle it)
            conf.write("\nwal_log_hints = on\nwal_keep_size = 256MB\n")
        self.primary.start(
            {
                "wal_level": "replica",
                "max_wal_senders": "5",
                "synchronous_standby_names": "*",
                "synchronous_commit": "on",
                "fsync": self._fsync,
            }
        )
        _as_owner(
            PG_BIN / "pg_basebackup",
            "-D",
            self.standby.data,
            "-R",
            "-X",
            "stream",
            "-c",
            "fast",
            "-d",
            f"host=127.0.0.1 port={self.primary.port} user={self.primary.user} application_name=standby",
        )
        self.standby.start(self._standby_settings)
        end = time.monotonic() + deadline_s
        while self.sync_state() != "sync":
            if time.monotonic() > end:
                raise RuntimeError(
                    f"the standby was not in sync within {deadline_s:g} s\n"
                    f"primary:\n{self.primary.log_tail()}\nstandby:\n{self.standby.log_tail()}"
                )
            time.sleep(0.1)
        with self.primary.connect() as conn:  # now that a synchronous standby confirms commits
            conn.execute(f'CREATE DATABASE "{self.database}"'.encode())
        return self

    @property
    def _standby_settings(self) -> dict[str, str]:
        return {"hot_standby": "on", "synchronous_standby_names": "", "fsync": self._fsync}

    def sync_state(self, primary: PgNode | None = None) -> str | None:
        """The standby's ``sync_state`` as the primary (or the node given) reports it (None: not streaming)."""
        with (primary or self.primary).connect() as conn:
            row = conn.execute("SELECT sync_state FROM pg_stat_replication WHERE state = 'streaming'").fetchone()
        return None if row is None else str(row[0])

    def url(self, *, driver: str = "postgresql+psycopg") -> str:
        """The service's database URL: both nodes, and only a read-write one will do (SQLAlchemy 2's
        multi-host form, ``host=H1:P1&host=H2:P2``)."""
        hosts = "&".join(f"host={node.host}" for node in (self.primary, self.standby))
        return f"{driver}://{self.primary.user}@/{self.database}?{hosts}&target_session_attrs=read-write"

    def node_url(self, node: PgNode) -> str:
        """A URL of the database on one node only."""
        return f"postgresql+psycopg://{node.user}@/{self.database}?host={node.socket_dir}&port={node.port}"

    def stall_replication(self) -> int:
        """Stop (SIGSTOP) the primary's WAL senders, as if the standby fell behind: from now on the standby
        receives nothing. With synchronous commit every commit waits for it, so nothing more is acknowledged;
        without, commits would be acknowledged that only the primary holds (what :meth:`kill_primary`
        then loses). How many senders were stopped (:meth:`kill_primary` kills them with the rest)."""
        pid = self.primary.postmaster_pid()
        senders = [c for c in _children(pid) if _command(c).startswith("postgres: walsender")] if pid else []
        for sender in senders:
            os.kill(sender, signal.SIGSTOP)
        return len(senders)

    def kill_primary(self) -> None:
        """SIGKILL the primary's processes (see :meth:`PgNode.kill`)."""
        self.primary.kill()

    def promote(self) -> None:
        """Promote the standby (``pg_ctl promote``, waiting until it accepts writes)."""
        _as_owner(PG_BIN / "pg_ctl", "-D", self.standby.data, "-w", "-t", "60", "promote")
        self.promoted = True

    def rejoin_old_primary(self, *, deadline_s: float = 60.0) -> float:
        """After :meth:`promote`, make the killed primary a standby of the promoted one, as docs/standby.md
        says to (never a primary again): a checkpoint on the new primary, ``pg_rewind -R`` from it (crash
        recovery first, which pg_rewind runs itself), then start it and wait until the new primary reports
        it streaming and caught up. The seconds pg_rewind took.

        Raises:
            RuntimeError: a step failed, or it was not streaming within ``deadline_s``.
        """
        assert self.promoted, "promote the standby first"
        end = time.monotonic() + deadline_s
        pid = self.primary.postmaster_pid_file()
        while pid is not None and Path(f"/proc/{pid}").exists():  # its lock file names it until it is reaped
            if time.monotonic() > end:
                raise RuntimeError(f"the killed primary's postmaster {pid} was never reaped")
            time.sleep(0.02)
        with self.standby.connect() as conn:
            # Promoted, the new primary writes its new timeline to its control file at its next checkpoint;
            # until then pg_rewind reads both on one timeline, says "no rewind required", and the old
            # primary, ahead of the fork, can never follow
            conn.execute("CHECKPOINT")
        began = time.monotonic()
        source = (
            f"host=127.0.0.1 port={self.standby.port} user={self.standby.user} dbname=postgres application_name=old"
        )
        _as_owner(PG_BIN / "pg_rewind", "-D", self.primary.data, "-R", f"--source-server={source}")
        rewound = time.monotonic() - began
        self.primary.start(self._standby_settings)
        while not self._replayed_all():
            if time.monotonic() > end:
                raise RuntimeError(f"the old primary did not catch up with the new one\n{self.primary.log_tail()}")
            time.sleep(0.1)
        return rewound

    def _replayed_all(self) -> bool:
        """Whether the new primary has a standby streaming that has replayed everything it has written."""
        with self.standby.connect() as conn:
            row = conn.execute(
                "SELECT replay_lsn >= pg_current_wal_lsn() FROM pg_stat_replication WHERE state = 'streaming'"
            ).fetchone()
        return bool(row and row[0])

    def close(self) -> None:
        """Stop both servers and delete the folder."""
        for node in (self.primary, self.standby):
            node.stop()
        shutil.rmtree(self.root, ignore_errors=True)

    def __enter__(self) -> PgPair:
        try:
            return self.start()
        except BaseException:
            self.close()
            raise

    def __exit__(self, *_: object) -> None:
        self.close()
