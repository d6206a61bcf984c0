"""A server process sets its garbage collector for a busy hotline (``serving.collect_less``): the objects of its
start-up set apart for good, and the youngest generation collected every ``YOUNG_OBJECTS`` objects, not every
700 (with Python's defaults a busy hotline's messages in flight were promoted, and a collection of every object
followed about once a second: 100 ms each, the whole process waiting). Both ways a server starts (``serve``,
and each ``serve --workers`` process) are run in a process of their own, up to the moment uvicorn would serve,
and asked what their collector holds, and whether a big buffer freed is given back to the system. Real SQLite,
real processes; the test process's collector is untouched."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from deconflict.api.serving import YOUNG_OBJECTS
from deconflict.store import open_store

SAID = textwrap.dedent(
    """
    import ctypes, gc, json, sys
    import uvicorn

    class MallInfo(ctypes.Structure):  # glibc's struct mallinfo2
        _fields_ = [(name, ctypes.c_size_t) for name in
                    ("arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks", "fsmblks", "uordblks", "fordblks",
                     "keepcost")]

    def mapped_alone():  # whether a 2 MB buffer allocated after another was freed is mapped on its own
        info = getattr(ctypes.CDLL(None), "mallinfo2", None)
        if info is None:
            return None
        info.restype = MallInfo
        first = bytearray(2 << 20)
        del first  # freed: with glibc's threshold moving, the threshold rises past it
        before = info().hblkhd
        second = bytearray(2 << 20)
        return info().hblkhd - before >= len(second)

    def said(*args, **kwargs):  # where uvicorn would start serving: say what the collector holds
        print(json.dumps({"threshold": gc.get_threshold(), "frozen": gc.get_freeze_count(),
                          "mapped_alone": mapped_alone()}))

    uvicorn.Server.run = said
    """
)


def _run(code: str, env: dict[str, str] | None = None) -> dict[str, object]:
    done = subprocess.run(
        [sys.executable, "-c", SAID + textwrap.dedent(code)], capture_output=True, text=True, env=env, timeout=120
    )
    assert done.returncode == 0, done.stderr[-2000:]
    found: dict[str, object] = json.loads(done.stdout.strip().splitlines()[-1])
    return found


def test_serve_sets_its_start_up_apart_and_collects_the_young_every_young_objects(tmp_path: Path) -> None:
    db = str(tmp_path / "serve.db")
    found = _run(
        f"""
        from deconflict.api.settings import Settings
        from deconflict.cli.server import _serve
        _serve(Settings(db={db!r}, tick_s=0))
        """
    )
    threshold, frozen = found["threshold"], found["frozen"]
    assert isinstance(threshold, list) and threshold[0] == YOUNG_OBJECTS
    assert isinstance(frozen, int) and frozen > 10_000  # the modules and the application, set apart
    _gives_back_big_buffers(found)


def _gives_back_big_buffers(found: dict[str, object]) -> None:
    """The replay snapshots' buffers are given back when freed (``serving.return_big_buffers``): a big buffer
    allocated after another was freed is still mapped on its own, not taken from a heap that keeps it."""
    if found["mapped_alone"] is None:
        pytest.skip("not glibc: the C library's allocator is left as it is")
    assert found["mapped_alone"] is True


def test_without_the_setting_a_big_buffer_would_come_from_a_heap(tmp_path: Path) -> None:
    """The check above can fail: a process that does not set it takes the second buffer from glibc's heap."""
    found = _run("said()")
    if found["mapped_alone"] is None:
        pytest.skip("not glibc")
    assert found["mapped_alone"] is False


def test_each_worker_of_serve_workers_does_the_same(tmp_path: Path) -> None:
    import os

    from deconflict.api.workers import ENV

    db = str(tmp_path / "workers.db")
    open_store(db).close()  # serve_workers migrates before its workers open the database
    env = {**os.environ, ENV: json.dumps({"settings": {"db": db, "tick_s": 0}, "log_format": "text", "cpus": None})}
    found = _run(
        """
        from deconflict.api.workers import app_from_env
        app_from_env()
        said()
        """,
        env,
    )
    threshold, frozen = found["threshold"], found["frozen"]
    assert isinstance(threshold, list) and threshold[0] == YOUNG_OBJECTS
    assert isinstance(frozen, int) and frozen > 10_000
    _gives_back_big_buffers(found)
