"""Real ``deconflict serve`` processes for the tests that kill, restart or multiply them: each in a process
group of its own (a ``--workers`` parent and its workers go down together when the machine is "lost")."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx

__all__ = ["ServeProcess", "serve"]


class ServeProcess:
    """One ``deconflict serve`` (with its workers, if any) on a port of loopback."""

    def __init__(self, proc: subprocess.Popen[bytes], port: int, log: Path | None) -> None:
        self.proc = proc
        self.port = port
        self.log = log
        self.url = f"http://127.0.0.1:{port}"

    def kill(self) -> None:
        """SIGKILL the whole group (the machine is lost): nothing gets to finish or flush."""
        os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait(timeout=60)

    def stop(self) -> int:
        """SIGINT (Ctrl-C): the server finishes what it answers and exits; its exit status."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
        try:
            return self.proc.wait(timeout=60)
        finally:
            if self.proc.poll() is None:
                os.killpg(self.proc.pid, signal.SIGKILL)

    def wait_ready(self, deadline_s: float = 120.0) -> None:
        """Wait until the server answers (it fails the test when the server exits or the deadline passes)."""
        deadline = time.monotonic() + deadline_s
        while True:
            try:
                httpx.get(f"{self.url}/openapi.json", timeout=5)
                return
            except httpx.TransportError:
                if self.proc.poll() is not None:
                    raise AssertionError(f"server exited ({self.proc.returncode}): {self.output()[-2000:]}") from None
                if time.monotonic() > deadline:
                    self.stop()
                    raise AssertionError(f"server did not start within {deadline_s:g} s") from None
                time.sleep(0.1)

    def output(self) -> str:
        """What the server logged (when started with a log file)."""
        return self.log.read_text(errors="replace") if self.log is not None else ""


def serve(
    db: str,
    port: int,
    *args: str,
    log: Path | None = None,
    stderr: int | None = None,
    deadline_s: float = 120.0,
    wait: bool = True,
) -> ServeProcess:
    """Start ``deconflict serve --db DB --port PORT ARGS...`` and wait until it answers (a generous deadline on
    the condition, for a busy machine; ``wait=False``: the caller calls :meth:`ServeProcess.wait_ready`).
    Its output goes to ``log``, or its stderr alone to the descriptor ``stderr`` (a pipe), else nowhere."""
    exe = Path(sys.executable).parent / "deconflict"
    out = log.open("wb") if log is not None else subprocess.DEVNULL
    proc = subprocess.Popen(
        [str(exe), "serve", "--db", db, "--port", str(port), *args],
        stdout=out,
        stderr=subprocess.STDOUT if log is not None else stderr if stderr is not None else subprocess.DEVNULL,
        start_new_session=True,
    )
    started = ServeProcess(proc, port, log)
    if wait:
        started.wait_ready(deadline_s)
    return started
