"""The record's gate (issue 15): one writer at a time per record across OS processes, for a whole use case,
on an SQLite file and on PostgreSQL (``store_url``). A write waits while another process holds the gate, goes
on as soon as it is let go, and is refused as busy (the API's 503) rather than waiting for ever on a process
that hangs holding it: nothing is written then."""

from __future__ import annotations

import subprocess
import sys
import time

import pytest
from support.builders import M, declared_service

from deconflict.service.context import StaleRecord
from deconflict.store import open_store
from deconflict.store.gate import GateTimeout

pytestmark = pytest.mark.timeout(300)

HOLDER = r"""
import sys
from deconflict.store import open_store
store = open_store(sys.argv[1], migrate=False)
with store.gate.hold(sys.argv[2]):
    print("held", flush=True)
    sys.stdin.read()  # until the test closes our stdin
"""


def _holder(db: str, mechanism: str) -> subprocess.Popen[str]:
    proc = subprocess.Popen(
        [sys.executable, "-c", HOLDER, db, mechanism], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    assert proc.stdout is not None and proc.stdout.readline().strip() == "held"
    return proc


def _release(proc: subprocess.Popen[str]) -> None:
    assert proc.stdin is not None
    proc.stdin.close()
    proc.wait(timeout=60)


def test_a_process_waits_at_the_gate_another_holds_and_enters_once_it_is_let_go(store_url: str) -> None:
    declared_service(store_url).store.close()
    store = open_store(store_url)
    store.gate.wait_s = 0.5
    holder = _holder(store_url, M)
    try:
        started = time.monotonic()
        with pytest.raises(GateTimeout), store.gate.hold(M):
            pass
        assert time.monotonic() - started >= 0.5
        if store.engine.dialect.name == "postgresql":
            with store.gate.hold("another-mechanism"):  # on PostgreSQL each record has its own gate
                pass
    finally:
        _release(holder)
    store.gate.wait_s = 30.0
    started = time.monotonic()
    with store.gate.hold(M), store.gate.hold(M):  # re-entrant within the thread that holds it
        assert time.monotonic() - started < 5.0
    store.close()


def test_a_write_refused_as_busy_while_a_hung_process_holds_the_record_writes_nothing(store_url: str) -> None:
    service = declared_service(store_url)
    service.store.gate.wait_s = 0.5
    head = service.head(M)
    holder = _holder(store_url, M)
    try:
        with pytest.raises(StaleRecord, match="held"):
            service.send_message(mechanism_id=M, actor="TR", text="while the record is held")
        assert service.head(M) == head
    finally:
        _release(holder)
    service.send_message(mechanism_id=M, actor="TR", text="once it is let go")
    assert service.head(M).seq > head.seq
    service.store.close()
