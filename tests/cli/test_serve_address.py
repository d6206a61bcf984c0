"""An engineer starts the server on an address it cannot listen on: a port another program holds, a host
name that does not resolve, an address of another machine. Refused in words naming --port or --host, exit
2, before a first line says "serving" and before a database is made or seeded (uvicorn said "[Errno 98]
Address already in use" without the address under --workers, "[Errno -2] Name or service not known"
without naming --host, exit 3, after "serving ... on http://...")."""

from __future__ import annotations

import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from support.live import free_port, wait_until

EXE = Path(sys.executable).parent / "deconflict"


@pytest.fixture
def held_port() -> Iterator[int]:
    """A port on 127.0.0.1 another program listens on."""
    port = free_port()
    with socket.socket() as other:
        other.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        other.bind(("127.0.0.1", port))
        other.listen()
        yield port


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(EXE), *args], capture_output=True, text=True, timeout=120)


@pytest.mark.parametrize("extra", [(), ("--workers", "2")], ids=["one process", "two workers"])
def test_a_port_another_program_holds_is_refused_naming_it(tmp_path: Path, held_port: int, extra: tuple[str]) -> None:
    db = tmp_path / "d.db"
    done = _run("serve", "--db", str(db), "--port", str(held_port), *extra)
    assert done.returncode == 2, done.stderr
    assert done.stderr.startswith(f"error: --port {held_port}: 127.0.0.1:{held_port} is in use by another program")
    assert "serving" not in done.stderr and "Traceback" not in done.stderr
    assert not db.exists()


def test_the_demo_on_a_held_port_seeds_nothing(tmp_path: Path, held_port: int) -> None:
    db = tmp_path / "demo.db"
    done = _run("demo", "--db", str(db), "--port", str(held_port))
    assert done.returncode == 2 and f"--port {held_port}: 127.0.0.1:{held_port} is in use" in done.stderr
    assert not db.exists()


@pytest.mark.parametrize(
    ("host", "words"),
    [
        ("nosuchhost.invalid", "--host nosuchhost.invalid: no such host or address"),  # .invalid never resolves
        ("192.0.2.1", "--host 192.0.2.1: not an address of this machine"),  # TEST-NET-1: no machine's own
    ],
)
def test_a_host_the_server_cannot_listen_on_is_refused_naming_it(tmp_path: Path, host: str, words: str) -> None:
    done = _run("serve", "--db", str(tmp_path / "d.db"), "--port", str(free_port()), "--host", host)
    assert done.returncode == 2 and done.stderr.startswith(f"error: {words}"), done.stderr
    assert "Traceback" not in done.stderr and not (tmp_path / "d.db").exists()


def _ipv6() -> bool:
    try:
        with socket.socket(socket.AF_INET6) as s:
            s.bind(("::1", 0))
    except OSError:
        return False
    return True


@pytest.mark.skipif(not _ipv6(), reason="this machine has no IPv6 loopback")
def test_an_ipv6_address_free_beside_a_held_ipv4_one_is_served(tmp_path: Path) -> None:
    """One process listens as asyncio binds (IPv6 sockets IPv6-only): '--host ::' is free while another program
    holds 0.0.0.0 on the same port, and the check must not refuse what the server would take."""
    port = free_port()
    with socket.socket() as other:
        other.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        other.bind(("0.0.0.0", port))
        other.listen()
        server = subprocess.Popen(
            [str(EXE), "serve", "--db", str(tmp_path / "d.db"), "--port", str(port), "--host", "::"],
            stderr=subprocess.PIPE,
            text=True,
        )
        try:
            wait_until(lambda: _answers(f"http://[::1]:{port}/healthz"), "the server on [::1]", deadline_s=60)
        finally:
            server.terminate()
            server.wait(timeout=30)


def _answers(url: str) -> bool:
    try:
        return httpx.get(url, timeout=2).status_code == 200
    except httpx.TransportError:
        return False
