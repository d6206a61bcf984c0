"""An engineer stops the server with Ctrl-C while a browser tab or `curl -N` follows the event stream:
the server ends the streams and exits at once, without a traceback (it used to wait for the clients)."""

from __future__ import annotations

import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
from support.builders import A, declared_db
from support.live import free_port

from deconflict.service import Service


def test_ctrl_c_stops_the_server_with_an_event_stream_open(tmp_path: Path) -> None:
    db = declared_db(tmp_path / "stop.db")
    service = Service.open(db)
    token = service.issue_token(mechanism_id="tr-il-syria", member_id="IL", label="test")
    service.store.close()
    port = free_port()
    exe = Path(sys.executable).parent / "deconflict"
    server = subprocess.Popen(
        [str(exe), "serve", "--db", db, "--port", str(port)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        url = f"http://127.0.0.1:{port}"
        end = time.monotonic() + 30
        while time.monotonic() < end:
            try:
                httpx.get(f"{url}/openapi.json", timeout=1)
                break
            except httpx.TransportError:
                time.sleep(0.2)
        # a plain HTTP/1.1 client, as curl -N is: the request, then the stream's first bytes
        with socket.create_connection(("127.0.0.1", port), timeout=30) as sock:
            sock.sendall(
                f"GET {A}/events HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {token}\r\n"
                "Accept: text/event-stream\r\n\r\n".encode()
            )
            assert b"200 OK" in sock.recv(65536)  # the stream is open and waiting
            stopped_at = time.monotonic()
            server.send_signal(signal.SIGINT)
            rc = server.wait(timeout=15)
            took = time.monotonic() - stopped_at
    finally:
        if server.poll() is None:
            server.kill()
            server.wait(timeout=10)
    stderr = server.stdout.read() if server.stdout else ""
    assert took < 6, f"the server took {took:.1f} s to stop with a stream open"
    assert rc in (0, 130) and "Traceback" not in stderr, stderr  # 130: the usual status after Ctrl-C
