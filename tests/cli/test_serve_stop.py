"""An engineer stops the server with Ctrl-C (or systemd with SIGTERM) while browser tabs or `curl -N` follow
the event stream: the server ends the streams and exits at once, without a traceback (it used to wait for
the clients; with ``--workers`` each worker waited out uvicorn's graceful shutdown, 5 s, then logged a
traceback a stream)."""

from __future__ import annotations

import contextlib
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from support.builders import A, declared_db
from support.live import free_port

from deconflict.service import Service


@pytest.mark.parametrize(
    ("args", "sig", "codes"),
    [((), signal.SIGINT, (0, 130)), (("--workers", "2"), signal.SIGTERM, (0, -15, 143))],
    ids=["one process, Ctrl-C", "two workers, SIGTERM"],
)
def test_the_server_stops_at_once_with_event_streams_open(
    tmp_path: Path, args: tuple[str, ...], sig: signal.Signals, codes: tuple[int, ...]
) -> None:
    db = declared_db(tmp_path / "stop.db")
    service = Service.open(db)
    token = service.issue_token(mechanism_id="tr-il-syria", member_id="IL", label="test")
    service.store.close()
    port = free_port()
    exe = Path(sys.executable).parent / "deconflict"
    server = subprocess.Popen(
        [str(exe), "serve", "--db", db, "--port", str(port), *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        url = f"http://127.0.0.1:{port}"
        end = time.monotonic() + 120  # a generous deadline on the condition, for a busy machine
        while True:
            try:
                httpx.get(f"{url}/openapi.json", timeout=5)
                break
            except httpx.TransportError:
                assert server.poll() is None, "the server exited before it answered"
                assert time.monotonic() < end, "the server did not answer within 120 s"
                time.sleep(0.2)
        # plain HTTP/1.1 clients, as curl -N is: the request, then the stream's first bytes; four, so that with
        # two workers each holds some (the kernel spreads the connections)
        with contextlib.ExitStack() as streams:
            for _ in range(4):
                sock = streams.enter_context(socket.create_connection(("127.0.0.1", port), timeout=30))
                sock.sendall(
                    f"GET {A}/events HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {token}\r\n"
                    "Accept: text/event-stream\r\n\r\n".encode()
                )
                assert b"200 OK" in sock.recv(65536)  # the stream is open and waiting
            stopped_at = time.monotonic()
            server.send_signal(sig)
            rc = server.wait(timeout=30)
            took = time.monotonic() - stopped_at
    finally:
        if server.poll() is None:
            server.kill()
            server.wait(timeout=10)
    stderr = server.stdout.read() if server.stdout else ""
    # Streams that held the shutdown would run uvicorn's graceful shutdown out (5 s) and be cancelled: it says
    # so (checked below, whatever the machine's load). A stop that hangs is caught by the wait above (30 s).
    assert took < 20, f"the server took {took:.1f} s to stop with streams open"
    assert rc in codes and "Traceback" not in stderr, stderr  # 130, 143: as a shell says Ctrl-C, SIGTERM
    assert "graceful shutdown exceeded" not in stderr, stderr
    # each process says that it stopped cleanly (nothing told a clean stop from a crash), Ctrl-C and SIGTERM alike
    assert "stopped: the event streams ended, every answer given is on the disk, the database closed" in stderr, stderr


def test_a_server_started_on_no_database_says_it_makes_a_new_one(tmp_path: Path) -> None:
    """A mistyped --db (the folder exists, the file does not) started a service on a new, empty database without a
    word, /readyz 200 (an engineer's walk-through): the first line after "serving" says so; a start on the file
    made then does not."""
    from support.processes import serve

    db, said = tmp_path / "typo.db", tmp_path / "serve.log"
    for start in range(2):
        server = serve(str(db), free_port(), log=said)
        server.stop()
        lines = said.read_text().splitlines()
        warned = [line for line in lines if "WARNING deconflict.serve: no database at" in line]
        if start == 0:
            assert warned == [
                f"{warned[0][:24]} WARNING deconflict.serve: no database at {db}: a new, empty one is made there; "
                "if you meant another, stop and check --db"
            ], lines[:3]
        else:
            assert warned == [], lines[:3]


@pytest.mark.parametrize("case", ["not a database", "no such folder"])
def test_a_server_refused_its_database_says_so_alone_and_never_serving(tmp_path: Path, case: str) -> None:
    """'serving X on http://...' was the first line even when X could not be opened, followed by the refusal (an
    engineer's walk-through): a duty officer reading the first line took the service for up. The database is
    opened first: a refusal is the one line said, exit 2."""
    from support.paths import ROOT

    if case == "not a database":
        db = tmp_path / "notes.db"
        db.write_text("not a database\n" * 200)
    else:
        db = tmp_path / "nowhere" / "x.db"
    run = subprocess.run(
        [str(ROOT / "deconflict"), "serve", "--db", str(db), "--port", str(free_port())],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert run.returncode == 2, run.stderr
    said = [line for line in run.stderr.splitlines() if line.strip()]
    assert len(said) == 1 and said[0].startswith("error: "), said
    assert "serving" not in run.stdout + run.stderr


def test_serve_takes_its_database_from_the_environment_and_keeps_it_off_the_command_line(tmp_path: Path) -> None:
    """``DECONFLICT_DB`` (as the systemd unit passes it): a PostgreSQL URL's password is not in the process's
    command line, which every user of the host reads (``ps``); ``--db`` still wins when given."""
    import os

    db = declared_db(tmp_path / "from env.db")
    port = free_port()
    exe = Path(sys.executable).parent / "deconflict"
    server = subprocess.Popen(
        [str(exe), "serve", "--port", str(port)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env={**os.environ, "DECONFLICT_DB": db},
        cwd=tmp_path,
    )
    try:
        end = time.monotonic() + 120
        while True:
            try:
                ready = httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=5)
                if ready.status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert server.poll() is None, "the server exited before it answered"
            assert time.monotonic() < end, "the server was not ready within 120 s"
            time.sleep(0.2)
        command_line = Path(f"/proc/{server.pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
        assert "from env.db" not in command_line
    finally:
        server.send_signal(signal.SIGINT)
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait(timeout=10)
    said = server.stdout.read() if server.stdout else ""
    assert "from env.db" in said  # the log names the database it serves: the one in the environment
    assert not (tmp_path / "deconflict.db").exists()  # not the default beside it
