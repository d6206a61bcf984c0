"""Server processes for the HTTP benchmarks: the Syria scenario on one database, served by 1 or N processes.

The database is seeded first, in a process of its own (``deconflict.demo.prepare_server``: the scenario and
a token per demo member), then served by ``deconflict serve`` (no per-member write limit: a load test).
N processes run one of two ways: ``deconflict serve --workers N`` behind one address when this checkout's
``serve`` has that option, else N ``serve`` processes on one database on N ports, the clients spread over
them (:attr:`Servers.mode` says which). Both find the command beside the running interpreter
(``.venv/bin/deconflict``): nothing but the README's set-up is needed, no ``uv`` on the PATH.

A server's output goes to a log file (never a pipe nobody reads: a full pipe would block its event loop);
its last lines are quoted when it fails to start.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

__all__ = [
    "M",
    "ServerFailed",
    "cpu_per_request",
    "Servers",
    "deconflict_exe",
    "free_port",
    "ledger_check",
    "record_entries",
    "start_servers",
    "workers_supported",
]

M = "tr-il-syria"
SEED = (
    "import json, sys\n"
    "from deconflict.demo import prepare_server\n"
    "service, tokens = prepare_server(sys.argv[1])\n"
    "service.store.close()\n"
    "print(json.dumps(tokens))\n"
)
"""Seeds the demo database given as argv[1] and prints the tokens (JSON) on its last line."""


class ServerFailed(RuntimeError):
    """A server process would not start (exited, or did not answer); the message quotes its log."""


def deconflict_exe() -> Path:
    """The ``deconflict`` command of the running interpreter's environment."""
    return Path(sys.executable).parent / "deconflict"


def free_port() -> int:
    """A TCP port free on loopback now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def workers_supported() -> bool:
    """Whether ``deconflict serve`` has ``--workers`` (several processes behind one address)."""
    out = subprocess.run([str(deconflict_exe()), "serve", "--help"], capture_output=True, text=True, check=False)
    return "--workers" in out.stdout


@dataclass
class Servers:
    """The running server processes of one configuration and what the clients need."""

    db: str
    processes: int
    mode: str
    """``single``, ``workers`` (one address) or ``ports`` (one address per process)."""
    addresses: list[str]
    """Base URLs of the mechanism's API, one per address the clients spread over."""
    tokens: dict[str, str]
    procs: list[subprocess.Popen[bytes]] = field(default_factory=list)
    logs: list[Path] = field(default_factory=list)
    src: str | None = None
    """The source tree the servers run (``--baseline``: an earlier checkout's ``src``), or None: this one."""

    def address(self, n: int) -> str:
        """The base URL client ``n`` uses (round robin over the addresses)."""
        return self.addresses[n % len(self.addresses)]

    def connections(self) -> list[int] | None:
        """How many TCP connections each server process has established on its port now (clients' and
        event streams'), read from /proc: with ``--workers`` the kernel decides which worker accepts a
        connection, and a kept-alive client stays with it. None where /proc cannot tell (not Linux)."""
        try:
            ports = {int(a.split(":")[2].split("/")[0]) for a in self.addresses}
            pids = [p.pid for p in self.procs]
            if self.mode == "workers":
                pids = [pid for pid in _all_pids() if _ppid(pid) in pids]
            established, listening = set(), set()  # socket inodes on the servers' ports
            for table in ("/proc/net/tcp", "/proc/net/tcp6"):
                for line in Path(table).read_text().splitlines()[1:]:
                    cols = line.split()
                    if int(cols[1].rsplit(":", 1)[1], 16) in ports:
                        {"01": established, "0A": listening}.get(cols[3], set()).add(int(cols[9]))
            counts = []
            for pid in sorted(pids):
                inodes = set()
                for fd in Path(f"/proc/{pid}/fd").iterdir():
                    target = os.readlink(fd)
                    if target.startswith("socket:["):
                        inodes.add(int(target[8:-1]))
                if inodes & listening:  # a server process (a worker), not a helper the supervisor started
                    counts.append(len(inodes & established))
            return counts
        except (OSError, ValueError, IndexError):
            return None

    def cpu_seconds(self) -> float | None:
        """CPU time (user + system, seconds) the server processes have used so far, their workers included
        (``serve --workers``: the supervisor's children), read from /proc. None where /proc cannot tell.
        The machine is shared: the servers' CPU per request is steadier than their wall-clock throughput."""
        try:
            pids = [p.pid for p in self.procs]
            if self.mode == "workers":
                pids += [pid for pid in _all_pids() if _ppid(pid) in pids]
            return sum(_cpu_s(pid) for pid in pids)
        except (OSError, ValueError, IndexError):
            return None

    def stop(self) -> None:
        """Stop every server politely (SIGINT), then firmly."""
        for proc in self.procs:
            if proc.poll() is None:
                proc.send_signal(signal.SIGINT)
        for proc in self.procs:
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def _all_pids() -> list[int]:
    return [int(p.name) for p in Path("/proc").iterdir() if p.name.isdigit()]


def _ppid(pid: int) -> int:
    try:
        return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])
    except (OSError, ValueError, IndexError):
        return -1


def _cpu_s(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def cpu_per_request(before: float | None, after: float | None, requests: int) -> dict[str, float | None]:
    """The servers' CPU over a measurement: seconds in all, milliseconds per request answered, and the requests
    a second that rate of CPU would answer on one whole core (the machine is shared: the wall-clock rate says
    how much of a core the servers got as much as how fast they are)."""
    if before is None or after is None:
        return {"server_cpu_s": None, "server_cpu_ms_per_request": None, "requests_per_core_s": None}
    used = after - before
    per_request = used / max(requests, 1)
    return {
        "server_cpu_s": round(used, 2),
        "server_cpu_ms_per_request": round(per_request * 1000, 3),
        "requests_per_core_s": round(1 / per_request, 1) if per_request > 0 else None,
    }


def _env(src: str | None) -> dict[str, str] | None:
    """The environment of a server run from ``src`` (an earlier checkout's source tree, found first)."""
    if src is None:
        return None
    return {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [src, os.environ.get("PYTHONPATH")]))}


def _tail(path: Path, lines: int = 8) -> str:
    try:
        return " | ".join(path.read_text(errors="replace").strip().splitlines()[-lines:])
    except OSError:
        return ""


def _seed(db: str, src: str | None = None) -> dict[str, str]:
    out = subprocess.run([sys.executable, "-c", SEED, db], capture_output=True, text=True, check=False, env=_env(src))
    if out.returncode != 0:
        raise ServerFailed(f"seeding {db} failed: {out.stderr.strip()[-500:]}")
    tokens: dict[str, str] = json.loads(out.stdout.strip().splitlines()[-1])
    return tokens


def _wait_ready(proc: subprocess.Popen[bytes], port: int, log: Path, timeout_s: float = 60.0) -> None:
    deadline = time.monotonic() + timeout_s
    while True:
        if proc.poll() is not None:
            raise ServerFailed(f"server on port {port} exited with {proc.returncode}: {_tail(log)}")
        try:
            if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            pass
        if time.monotonic() > deadline:
            raise ServerFailed(f"server on port {port} did not answer in {timeout_s:g} s: {_tail(log)}")
        time.sleep(0.1)


def start_servers(
    db: str,
    processes: int,
    folder: Path,
    *,
    workers: bool,
    src: str | None = None,
    cpus: list[int] | None = None,
) -> Servers:
    """Seed ``db`` and serve it with ``processes`` processes (``workers``: behind one address with
    ``serve --workers``; else one address each), running this checkout's code or, with ``src``, the
    source tree given (an earlier checkout: the same run's baseline). ``cpus``: the processes pinned to
    them (``serve --cpus``: process i to the i-th, round robin; with ``--workers``, the list, each worker
    taking one).

    Raises:
        ServerFailed: seeding failed, or a server exited or did not answer (the message quotes its log).
    """
    tokens = _seed(db, src)
    mode = "single" if processes == 1 else ("workers" if workers else "ports")
    commands: list[tuple[int, list[str]]] = []
    base = [str(deconflict_exe()), "serve", "--db", db, "--writes-per-minute", "0"]
    if mode == "workers":
        port = free_port()
        pinned = ["--cpus", ",".join(map(str, cpus))] if cpus else []
        commands.append((port, [*base, "--port", str(port), "--workers", str(processes), *pinned]))
    else:
        for n in range(processes):
            port = free_port()
            pinned = ["--cpus", str(cpus[n % len(cpus)])] if cpus else []
            commands.append((port, [*base, "--port", str(port), *pinned]))
    servers = Servers(db=db, processes=processes, mode=mode, addresses=[], tokens=tokens, src=src)
    try:
        for n, (port, command) in enumerate(commands):
            log = folder / f"server-{processes}-{n}.log"
            with log.open("wb") as sink:
                proc = subprocess.Popen(command, stdout=sink, stderr=subprocess.STDOUT, env=_env(src))
            servers.procs.append(proc)
            servers.logs.append(log)
            _wait_ready(proc, port, log)
            servers.addresses.append(f"http://127.0.0.1:{port}/api/v1/mechanisms/{M}")
    except BaseException:
        servers.stop()
        raise
    return servers


def record_entries(base: str, token: str, after: int) -> list[dict[str, Any]]:
    """Every record entry after ``after`` as ``token``'s member reads it (page by page)."""
    entries: list[dict[str, Any]] = []
    headers = {"Authorization": f"Bearer {token}"}
    with httpx.Client(timeout=60, headers=headers) as c:
        while True:
            for _ in range(20):  # a busy server may answer 503 for a moment: ask again
                r = c.get(f"{base}/record", params={"after": after, "limit": 5000})
                if r.status_code == 200:
                    break
                time.sleep(0.5)
            else:
                raise RuntimeError(f"GET {base}/record answered {r.status_code} 20 times: {r.text[:200]}")
            page = r.json()
            entries += page["entries"]
            if not page["entries"]:
                return entries
            after = page["next_after"]


def ledger_check(db: str) -> dict[str, Any]:
    """``deconflict ledger check`` on the database (after the servers stopped): does every chain verify?"""
    began = time.perf_counter()
    out = subprocess.run(
        [str(deconflict_exe()), "ledger", "check", "--db", db], capture_output=True, text=True, check=False
    )
    return {
        "verifies": out.returncode == 0,
        "seconds": round(time.perf_counter() - began, 2),
        "said": (out.stdout + out.stderr).strip()[-300:],
    }
