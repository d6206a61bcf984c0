"""The service's log lines are written by a thread of their own (deconflict.logs.LineWriter): a reader of the
log that falls behind (a pipe to a stopped collector) never holds up a request; lines beyond those that may
wait are dropped, counted in /metrics, and said in a warning once the reader takes lines again."""

from __future__ import annotations

import io
import json
import logging
import os
import select
import signal
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families
from support.builders import A, M
from support.live import LiveServer, auth, free_port, start_server
from support.processes import serve

from deconflict import logs
from deconflict.clock import FixedClock
from deconflict.service import Service
from deconflict.store import open_store


class HeldStream(io.StringIO):
    """A stream whose writes wait until :attr:`released` is set, as a pipe whose reader has stopped."""

    def __init__(self) -> None:
        super().__init__()
        self.released = threading.Event()
        self.writing = threading.Event()

    def write(self, text: str) -> int:
        self.writing.set()
        assert self.released.wait(30), "the test never released the stream"
        return super().write(text)


@pytest.fixture
def restore_logging() -> Iterator[None]:
    root = logging.getLogger()
    handlers, level = list(root.handlers), logging.getLogger("deconflict").level
    kept = {name: getattr(logging, name) for name in UNWRITTEN}
    yield
    for handler in [h for h in root.handlers if h not in handlers]:
        root.removeHandler(handler)
    logging.getLogger("deconflict").setLevel(level)
    for name, value in kept.items():
        setattr(logging, name, value)


UNWRITTEN = ("logThreads", "logProcesses", "logMultiprocessing", "_srcfile")
"""What ``logging`` works out for each record unless told not to (``logs.configure`` tells it not to)."""


def _request_line(n: int) -> None:
    extra = {"method": "GET", "route": "/healthz", "status": 200, "duration_ms": float(n)}
    logs.request_logger.info("%s %s %d", "GET", "/healthz", 200, extra=extra)


def test_a_stream_that_stops_holds_up_no_caller_and_the_lines_beyond_those_held_are_counted(
    restore_logging: None,
) -> None:
    stream = HeldStream()
    handler = logs.configure("text", stream=stream)
    assert isinstance(handler, logs.LineWriter)
    _request_line(0)
    assert stream.writing.wait(10), "the first line is being written"  # and its write does not return
    extra = 15
    began = time.monotonic()
    for n in range(1, logs.MOST_WAITING + extra):  # the one being written counts among those held
        _request_line(n)
    assert time.monotonic() - began < 10  # each call queued its line (about 8 us) or counted it dropped
    assert handler.dropped == logs.dropped_lines() == extra
    stream.released.set()
    handler.flush()
    lines = stream.getvalue().splitlines()
    durations = [line.rsplit("duration_ms=", 1)[1] for line in lines if "duration_ms=" in line]
    assert durations == [f"{float(n)}" for n in range(logs.MOST_WAITING)]  # in order, none twice
    warnings = [line for line in lines if " WARNING deconflict.logs: " in line]
    assert len(warnings) == 1 and warnings[0].endswith(
        f"15 log lines dropped: the log's reader fell behind (at most {logs.MOST_WAITING} lines wait for it; "
        "the service did not)"
    )
    assert lines[-1] == warnings[0]  # after the lines queued before the drop: the gap is there
    _request_line(-1)  # the count is said once
    handler.flush()
    assert stream.getvalue().splitlines()[-1].endswith("duration_ms=-1.0")
    assert sum(" WARNING deconflict.logs: " in line for line in stream.getvalue().splitlines()) == 1


class Writes(io.StringIO):
    """A stream that keeps each write it was given."""

    def __init__(self) -> None:
        super().__init__()
        self.writes: list[str] = []

    def write(self, text: str) -> int:
        self.writes.append(text)
        return super().write(text)


def test_each_write_is_whole_lines_a_pipe_keeps_whole(restore_logging: None) -> None:
    """Several processes on one pipe (``serve --workers``): a write of at most PIPE_BUF bytes is never mixed
    with another's, so the lines are written in such writes, cut at line ends."""
    stream = Writes()
    handler = logs.configure("json", stream=stream)
    for n in range(2000):
        _request_line(n)
    logs.request_logger.info("%s", "\u05e9" * 3000)  # 6 kB in UTF-8: a line longer than PIPE_BUF goes alone
    handler.flush()
    assert len(stream.writes) > 1
    for text in stream.writes:
        assert text.endswith("\n")
        assert len(text.encode()) <= select.PIPE_BUF or text.count("\n") == 1
    lines = stream.getvalue().splitlines()
    assert [json.loads(line)["duration_ms"] for line in lines[:-1]] == [float(n) for n in range(2000)]
    assert json.loads(lines[-1])["message"] == "\u05e9" * 3000


def test_a_line_keeps_its_message_and_traceback_as_they_were_when_logged(restore_logging: None) -> None:
    out = io.StringIO()
    handler = logs.configure("json", stream=out)
    seen: list[logging.LogRecord] = []

    class Keep(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            seen.append(record)

    logging.getLogger().addHandler(Keep())
    figures = ["first"]
    try:
        raise ValueError("the disk said no")
    except ValueError:
        logging.getLogger("deconflict.test").exception("could not store %s", figures)
    figures.append("changed after")
    handler.flush()
    line = json.loads(out.getvalue())
    assert line["message"] == "could not store ['first']" and line["level"] == "ERROR"
    assert line["exception"].startswith("Traceback") and "ValueError: the disk said no" in line["exception"]
    # the other handlers get the record as it was: its exception, its template and its arguments
    assert seen[0].exc_info is not None
    assert seen[0].msg == "could not store %s" and seen[0].args == (figures,)


def test_a_server_whose_log_reader_has_stopped_answers_every_request(db: str, clock: FixedClock) -> None:
    """``deconflict serve 2>&1 | collector`` with the collector stopped: the pipe fills (64 KiB, some 700
    request lines) and, with each line written by the request itself, the server stopped answering anything.
    Now every request is answered, and the lines come once the pipe is read again."""
    service = Service(open_store(db), clock=clock)
    token = service.issue_token(mechanism_id=M, member_id="IL")
    service.store.close()
    read_end, write_end = os.pipe()
    try:
        server = serve(db, free_port(), stderr=write_end)
    finally:
        os.close(write_end)
    requests = 1500
    try:
        with httpx.Client(base_url=server.url, timeout=5) as client:
            for _ in range(requests):  # nobody reads the pipe meanwhile
                assert client.get("/healthz").status_code == 200
            assert client.get(f"{A}/activities", headers=auth(token)).status_code == 200
            text = client.get("/metrics").text
        families = {f.name: f for f in text_string_to_metric_families(text)}
        assert [s.value for s in families["deconflict_log_lines_dropped"].samples] == [0.0]
        read = b""
        deadline = time.monotonic() + 60
        while read.count(b"GET /api/v1/mechanisms/{mechanism_id}/activities 200") == 0:
            assert time.monotonic() < deadline, read[-500:]
            read += os.read(read_end, 1 << 16)
    finally:
        server.stop()
        os.close(read_end)
    lines = read.decode().splitlines()
    healthz = [line for line in lines if "deconflict.request: GET /healthz 200" in line]
    assert len(healthz) >= requests  # every one of the test's
    assert not any("dropped" in line for line in lines)


def test_metrics_count_the_lines_dropped(live: LiveServer, restore_logging: None) -> None:
    stream = HeldStream()
    handler = logs.configure("text", stream=stream)
    _request_line(0)
    assert stream.writing.wait(10)
    for n in range(logs.MOST_WAITING + 2):  # with the one being written, MOST_WAITING held; 3 dropped
        _request_line(n)
    before = handler.dropped
    text = httpx.get(f"{live.url}/metrics", timeout=10).text  # its own line is dropped too, after it answers
    after = handler.dropped
    stream.released.set()
    handler.flush()
    families = {f.name: f for f in text_string_to_metric_families(text)}
    (said,) = [s.value for s in families["deconflict_log_lines_dropped"].samples]
    assert before >= 3 and before <= said <= after  # (a line of the server's own may come meanwhile)


@pytest.mark.skipif(not hasattr(os, "fork"), reason="no fork here")
def test_a_forked_child_writes_its_own_lines_and_not_its_parents(restore_logging: None, tmp_path: Path) -> None:
    path = tmp_path / "log"
    with path.open("w") as stream:
        handler = logs.configure("text", stream=stream)
        _request_line(1)  # queued: the parent's thread writes it once it has lingered (LINGER_S)
        pid = os.fork()
        if pid == 0:  # the child: its own thread, its own line
            try:
                _request_line(2)
                handler.flush()
                stream.flush()
            finally:
                os._exit(0)
        _, status = os.waitpid(pid, 0)
        assert status == 0
        _request_line(3)
        handler.flush()
    durations = [line.rsplit("duration_ms=", 1)[1] for line in path.read_text().splitlines()]
    assert sorted(durations) == ["1.0", "2.0", "3.0"]  # each once: the child does not write the parent's


def test_a_server_stopped_by_sigterm_writes_its_last_lines(db: str, tmp_path: Path) -> None:
    """``systemctl stop``: uvicorn ends a process stopped by SIGTERM with that very signal once it is down,
    so no ``logging.shutdown`` runs; the lines still queued are written as the server's last step."""
    server = serve(db, free_port(), log=tmp_path / "stderr")
    try:
        assert httpx.get(f"{server.url}/openapi.json", timeout=10).status_code == 200
        server.proc.send_signal(signal.SIGTERM)  # at once: the request's line is still queued (50 ms)
        assert server.proc.wait(timeout=30) == -signal.SIGTERM
    finally:
        server.stop()
    assert "deconflict.request: GET /openapi.json 200" in server.output()


def test_the_server_writes_the_lines_queued_as_its_last_step(
    db: str, clock: FixedClock, restore_logging: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    """What the SIGTERM test shows, without its timing: with the thread lingering 10 minutes, the lines of
    the server's requests are written once it has stopped, and not before."""
    monkeypatch.setattr(logs, "LINGER_S", 600.0)
    stream = Writes()
    logs.configure("text", stream=stream)
    server = start_server(db, clock)  # uvicorn's default logging configuration closes the handler: it goes on
    try:
        assert httpx.get(f"{server.url}/healthz", timeout=10).status_code == 200
        assert httpx.get(f"{server.url}/openapi.json", timeout=10).status_code == 200
        time.sleep(0.2)
        assert "/openapi.json" not in stream.getvalue()  # lingering
    finally:
        server.stop(graceful=True)  # as on SIGTERM
    assert "deconflict.request: GET /openapi.json 200" in stream.getvalue()


def test_what_no_line_writes_is_not_worked_out_for_each_record(restore_logging: None) -> None:
    """Every request logs a line: its record carries no thread, process or caller (15 of its 42 us of CPU),
    which no line writes; the line itself is as before, its fields and exception included."""
    stream = io.StringIO()
    handler = logs.configure("json", stream=stream)
    seen: list[logging.LogRecord] = []
    keep = logging.Handler()
    keep.emit = seen.append  # type: ignore[method-assign]
    logging.getLogger().addHandler(keep)
    try:
        _request_line(7)
        try:
            raise ValueError("boom")
        except ValueError:
            logging.getLogger("deconflict.api").exception("failed")
        handler.flush()
    finally:
        logging.getLogger().removeHandler(keep)
    unworked = (None, None, None, "(unknown function)", 0)
    assert [(r.threadName, r.processName, r.process, r.funcName, r.lineno) for r in seen] == [unworked] * 2
    request, failed = (json.loads(line) for line in stream.getvalue().splitlines())
    assert request["message"] == "GET /healthz 200" and request["duration_ms"] == 7.0 and request["route"] == "/healthz"
    assert failed["message"] == "failed" and "ValueError: boom" in failed["exception"]
