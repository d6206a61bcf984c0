"""schemathesis over real HTTP on loopback, every phase (examples, coverage, fuzzing, stateful) and every
check: no 5xx, and every answer (status, content type, headers, body) as ``/openapi.json`` promises.

The server runs a ``conflicts-only`` copy of the Syria mechanism with a notice of each party, its rate
limits off (the service's clock is pinned, so a limit reached would never lift and every later request
would get 429). One setting departs from schemathesis's defaults, on purpose:
``positive_data_acceptance`` also accepts 422, because a request the schema allows may still break a
rule of the domain the schema cannot say (a window that has ended, an end before its start, a prepared
write sent with a signature), and the service must refuse it, by name.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from support.builders import HAMA, T0, T4, A, M, declared_db, syria, vol
from support.live import LiveServer, auth

from deconflict.api.settings import Settings
from deconflict.clock import FixedClock
from deconflict.model import Disclosure
from deconflict.service import Service
from deconflict.store import open_store

MAX_TIME_S = 60
"""schemathesis's whole budget: the phases share it (fuzzing and stateful repeat until it is spent). Alone on
the machine every phase is done well within it (60 s: 4,705 cases; 90 s made 6,176, the same seed
repeating its fuzzing), and in the whole suite, which keeps both cores busy, every second of it is a second of
two cores' worth of work taken from the other tests."""


@pytest.fixture
def server(tmp_path: Path) -> Iterator[LiveServer]:
    clock = FixedClock(T0)
    db = declared_db(tmp_path / "st.db", clock, mechanism=syria(disclosure=Disclosure.CONFLICTS_ONLY))
    settings = Settings(db=db, clock=clock, tick_s=0.0, stream_keepalive_s=0.5, auth_failures=0, writes_per_member=0)
    live = LiveServer(Service(open_store(db), clock=clock), settings).start()
    yield live
    live.stop()


def test_schemathesis_stateful_with_every_check(server: LiveServer, tmp_path: Path) -> None:
    tokens = server.tokens()
    with httpx.Client(base_url=server.url, timeout=10) as c:
        for party, where, kind in (("TR", T4, "uav_patrol"), ("IL", T4, "air_sortie"), ("IL", HAMA, "exercise")):
            body = {"kind": kind, "volumes": [vol(where)]}
            assert c.post(f"{A}/activities", json=body, headers=auth(tokens[party])).status_code == 201
    config = tmp_path / "schemathesis.toml"
    config.write_text(
        f'headers = {{ Authorization = "Bearer {tokens["TR"]}" }}\n'
        "[parameters]\n"
        f'"path.mechanism_id" = "{M}"\n'
        "[checks.positive_data_acceptance]\n"
        'expected-statuses = ["2xx", "401", "403", "404", "409", "422", "429"]\n'
        # a body the schema refuses is refused: 413 when it is over the size limit (5,001 track reports)
        "[checks.negative_data_rejection]\n"
        'expected-statuses = ["400", "401", "403", "404", "405", "406", "409", "413", "415", "422", "429"]\n',
        encoding="utf-8",
    )
    exe = Path(sys.executable).parent / "schemathesis"
    done = subprocess.run(
        [
            str(exe),
            "--config-file",
            str(config),
            "run",
            f"{server.url}/openapi.json",
            "--checks",
            "all",
            "--phases",
            "examples,coverage,fuzzing,stateful",
            "--exclude-path-regex",
            "events$",  # an event stream never ends: tests/api/test_api.py and test_sessions.py read it
            "--max-examples",
            "25",
            "--workers",
            "1",
            "--max-time",
            str(MAX_TIME_S),
            "--seed",
            "14",
        ],
        capture_output=True,
        text=True,
        timeout=MAX_TIME_S + 120,
    )
    print(done.stdout[-2500:])  # the summary, shown with pytest -rP
    assert done.returncode == 0, done.stdout[-6000:]
    assert "Stateful" in done.stdout
