"""The NOTAM and KML commands as a duty officer runs them against a database written in the past and read
now (the commands' clock is the system's): ``export notam`` writes only what is still to come or under way
and says what it left out, and ``import notam`` takes no other party's NOTAM as Türkiye's own; deadlines print to
the second;
``notam`` with an unknown id, and ``export kml`` to a file that is not .kml or .kmz, are refused in words."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from pathlib import Path

from support.builders import HAMA, T4, M, declared_db, vol
from typer.testing import CliRunner

from deconflict.cli import app
from deconflict.clock import FixedClock
from deconflict.service import Service
from deconflict.store import open_store

H = timedelta(hours=1)


def _yesterday_db(tmp_path: Path) -> tuple[str, dict[str, str]]:
    """A database whose notices were made a day ago: TR's first patrol's window has ended since (its state
    not moved on: no duty loop ran), TR's second was cancelled, IL's sortie is under way now."""
    then = datetime.now(UTC).replace(second=0, microsecond=0) - 24 * H
    clock = FixedClock(then)
    db = declared_db(tmp_path / "y.db", clock)
    svc = Service(open_store(db), clock=clock)
    ids = {}
    for name, actor, kind, volume in [
        ("ended", "TR", "uav_patrol", vol(HAMA, then + H, hours=1, id="v1")),
        ("cancelled", "TR", "uav_patrol", vol(HAMA, then + 2 * H, hours=1, id="v1")),
        ("live", "IL", "air_sortie", vol(T4, then + H, hours=30, id="v1")),
    ]:
        activity = svc.notify(mechanism_id=M, actor=actor, kind=kind, volumes=[volume]).activity
        assert activity is not None
        ids[name] = activity.id
    svc.cancel(mechanism_id=M, actor="TR", activity_id=ids["cancelled"])
    svc.store.close()
    return db, ids


def test_export_notam_leaves_out_what_has_ended_and_the_file_imports_whole(tmp_path: Path) -> None:
    db, ids = _yesterday_db(tmp_path)
    out = tmp_path / "notams.txt"
    result = CliRunner().invoke(app, ["export", "notam", "--db", db, "--as", "TR", "--out", str(out)])
    assert result.exit_code == 0, result.output
    text = out.read_text(encoding="utf-8")
    assert ids["ended"] not in text and ids["cancelled"] not in text and ids["live"] in text
    assert re.search(rf"left out: {ids['ended']}: ended, its last window ended \S+Z\n", result.stderr), result.stderr
    assert ids["cancelled"] not in result.stderr  # closed activities are not the live picture: not listed
    assert re.search(r"\d+ NOTAMs? written, 1 left out \(a NOTAM is for activity still to come", result.stderr)
    # the file is not Türkiye's to import: IL's NOTAMs are IL's (they became Türkiye's own notices and zones: an
    # interop walk-through); nothing is stored
    before = Service.open(db).head("tr-il-syria").seq
    result = CliRunner().invoke(app, ["import", "notam", str(out), "--db", db, "--as", "TR"])
    assert result.exit_code == 2
    assert f"item E: it is the NOTAM deconflict drafted of IL's activity {ids['live']}, not of TR's" in result.stderr
    assert Service.open(db).head("tr-il-syria").seq == before
    # IL's sortie as a NOTAM of the civil authority's (no deconflict head in item E): read as TR's own notice,
    # which conflicts with IL's
    il = next(t for t in text.split("\n\n") if f"BY IL (DECONFLICT ACTIVITY {ids['live']}" in t)
    published = tmp_path / "published.txt"
    published.write_text(re.sub(r"E\) .*?(?=\nF\))", "E) TRAINING FLIGHTS.", il, flags=re.S), encoding="utf-8")
    result = CliRunner().invoke(app, ["import", "notam", str(published), "--db", db, "--as", "TR"])
    assert result.exit_code == 0, result.output
    (deadline,) = re.findall(r"conflict \S+: separation, deadline (\S+)", result.stdout)
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", deadline), result.stdout  # no microseconds


def test_notam_of_an_unknown_id_says_activity_or_zone(tmp_path: Path) -> None:
    db = declared_db(tmp_path / "u.db")
    result = CliRunner().invoke(app, ["notam", "SYT4", "--db", db, "--as", "TR"])
    assert result.exit_code == 2
    assert "no activity or zone 'SYT4' that you may see" in result.stderr
    assert "no such activity" not in result.stderr


def test_export_kml_refuses_an_out_that_is_not_kml_or_kmz(tmp_path: Path) -> None:
    db = declared_db(tmp_path / "k.db")
    for name in ("x.gpx", "x"):
        result = CliRunner().invoke(app, ["export", "kml", "--db", db, "--as", "TR", "--out", str(tmp_path / name)])
        assert result.exit_code == 2
        assert "--out:" in result.stderr and ".kml or .kmz" in result.stderr and "Traceback" not in result.output
        assert not (tmp_path / name).exists()
    for name in ("x.kml", "x.KMZ"):
        result = CliRunner().invoke(app, ["export", "kml", "--db", db, "--as", "TR", "--out", str(tmp_path / name)])
        assert result.exit_code == 0, result.output
        assert (tmp_path / name).stat().st_size > 0
