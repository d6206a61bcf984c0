"""``deconflict ledger export --url`` (a member's own copy from a running service) and ``--from-mirror`` (what
a party's mirror holds): each written as a bundle that ``ledger verify`` checks offline, withheld entries
listed by number; and ``record.verify.Stream``, the streaming checker both are checked with."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import pytest
from support.builders import HAMA, PALMYRA, T0, T4, A, M, declared_db, syria, vol
from support.live import LiveServer, auth, start_server
from typer.testing import CliRunner

from deconflict.cli import app
from deconflict.client import Client
from deconflict.clock import FixedClock
from deconflict.model import Disclosure
from deconflict.record import bundle, signing, verify
from deconflict.service import Service

TR_KEY = signing.KeyPair.from_seed(bytes([7]) * 32)
HELD_BY_OPERATOR = 3  # ledger verify: it verifies, but the service holds a party's key (docs/record.md)


@pytest.fixture
def party_keys() -> dict[str, signing.KeyPair]:
    """Türkiye holds its own key (it runs a mirror); the service holds the others' (demo custody)."""
    return {"TR": TR_KEY}


def test_a_conflicts_only_members_copy_is_saved_from_a_live_server_and_verifies_offline(tmp_path: Path) -> None:
    clock = FixedClock(T0)
    db = declared_db(tmp_path / "co.db", clock, mechanism=syria(disclosure=Disclosure.CONFLICTS_ONLY))
    server = start_server(db, clock)
    try:
        tok = server.tokens("TR", "IL")
        with httpx.Client(base_url=server.url, timeout=10) as c:
            near = {"kind": "uav_patrol", "volumes": [vol(T4, radius_m=20_000)]}
            first = c.post(f"{A}/activities", json=near, headers=auth(tok["TR"])).json()["seq"]
            far = {"kind": "uav_patrol", "volumes": [vol(HAMA, radius_m=5_000)]}
            c.post(f"{A}/activities", json=far, headers=auth(tok["TR"]))
            il = {"kind": "air_sortie", "volumes": [vol((37.90, 34.52), radius_m=10_000)]}
            assert c.post(f"{A}/activities", json=il, headers=auth(tok["IL"])).json()["raised"]
        assert server.service.checkpoint(M) is not None
        out = tmp_path / "il-copy.jsonl"
        run = CliRunner().invoke(
            app, ["ledger", "export", "--url", server.url, "--token", tok["IL"], "--out", str(out)]
        )
        assert run.exit_code == 0, run.output
        assert f"entries of IL's copy written to {out}" in run.output
        lines = out.read_text().splitlines()
        header, docs = json.loads(lines[0]), [json.loads(line) for line in lines[1:]]
        withheld = [d["seq"] for d in docs if "payload" not in d]
        assert {first, first + 1} <= set(withheld)  # TR's two notices, among what IL may not see
        assert header["checkpoints"] and header["checkpoints"][-1]["note"].startswith(f"deconflict.example/{M}\n")
        checked = CliRunner().invoke(app, ["ledger", "verify", str(out)])
        assert checked.exit_code == HELD_BY_OPERATOR, checked.output
        assert f"entries {verify.withheld_ranges(withheld)} withheld" in checked.output
        report = bundle.verify(out)
        assert report.ok and report.withheld == tuple(withheld) and report.checkpoints >= 1

        unknown = CliRunner().invoke(app, ["ledger", "export", "--url", server.url, "--token", "dcf_x", "--out", "x"])
        assert unknown.exit_code == 2 and "Traceback" not in unknown.output
        both = ["--url", server.url, "--token", tok["IL"], "--from-mirror", str(tmp_path), "--out", str(out)]
        assert "either --url or --from-mirror" in CliRunner().invoke(app, ["ledger", "export", *both]).output
    finally:
        server.stop()


def test_what_a_mirror_holds_is_saved_as_a_bundle_with_the_notes_it_cosigned(
    live: LiveServer, tokens: dict[str, str], tmp_path: Path, clock: FixedClock
) -> None:
    signing.write_key_file(tmp_path / "TR.key", TR_KEY, party="TR")
    folder = tmp_path / "TR"
    Client(live.url, tokens["TR"], key=TR_KEY).notify(kind="uav_patrol", volumes=[vol(PALMYRA, clock())])
    cp = live.service.checkpoint(M)
    assert cp is not None
    mirror = ["mirror", "--url", live.url, "--token", tokens["TR"], "--key", str(tmp_path / "TR.key")]
    run = CliRunner().invoke(app, [*mirror, "--dir", str(folder), "--once"])
    assert run.exit_code == 0 and f"cosigned checkpoint {cp['seq']}" in run.output, run.output

    out = tmp_path / "mirror.jsonl"
    saved = CliRunner().invoke(app, ["ledger", "export", "--from-mirror", str(folder), "--out", str(out)])
    assert saved.exit_code == 0 and f"{cp['seq']} entries of the copy held in {folder}" in saved.output, saved.output
    header = json.loads(out.read_text().splitlines()[0])
    (kept,) = header["checkpoints"]
    assert kept["seq"] == cp["seq"] and f"— deconflict.example/{M}/TR " in kept["note"]  # TR's cosignature
    checked = CliRunner().invoke(app, ["ledger", "verify", str(out)])
    assert checked.exit_code == HELD_BY_OPERATOR and f"{cp['seq']} entries verify" in checked.output, checked.output
    assert f"TR cosigned up to entry {cp['seq']}" in checked.output  # the note kept, with TR's cosignature

    with (folder / "entries.jsonl").open("a") as f:
        f.write('{"seq": ')  # a line the mirror was cut off writing: not yet held, so not saved
    again = CliRunner().invoke(app, ["ledger", "export", "--from-mirror", str(folder), "--out", str(out)])
    assert again.exit_code == 0 and f"{cp['seq']} entries of the copy" in again.output, again.output
    lines = (folder / "entries.jsonl").read_text().splitlines()[:-1]
    notice = next(n for n, line in enumerate(lines) if '"uav_patrol"' in line)
    lines[notice] = lines[notice].replace('"uav_patrol"', '"air_sortie"', 1)  # TR's notice, edited on disk
    (folder / "entries.jsonl").write_text("\n".join(lines) + "\n")
    broken = CliRunner().invoke(app, ["ledger", "export", "--from-mirror", str(folder), "--out", str(out)])
    assert broken.exit_code == 1 and f"BROKEN: entry {notice + 1}: payload does not match" in broken.output
    assert CliRunner().invoke(app, ["ledger", "verify", str(out)]).exit_code == 1  # written all the same
    nothing = CliRunner().invoke(app, ["ledger", "export", "--from-mirror", str(tmp_path), "--out", str(out)])
    assert nothing.exit_code == 2 and "not a mirror's folder" in nothing.output
    with (folder / "checkpoints.jsonl").open("a") as f:
        f.write("[1]\n")
    odd = CliRunner().invoke(app, ["ledger", "export", "--from-mirror", str(folder), "--out", str(out)])
    assert odd.exit_code == 2 and "checkpoints.jsonl: line 2 is not a JSON object" in odd.output, odd.output


def test_the_stream_checks_each_entry_as_the_bundle_verifier_does_and_stops_at_the_first_bad_one(
    svc: Service,
) -> None:
    docs = list(svc.record(M))
    stream = verify.Stream(M)
    assert all(stream.feed(d) is None for d in docs)
    whole = verify.verify_docs(M, docs)
    assert (stream.count, stream.head_hash, stream.report()) == (whole.entries, whole.head_hash, whole)

    forged = dict(docs[2], signature=docs[3]["signature"])
    stream = verify.Stream(M)
    assert [stream.feed(d) for d in docs[:2]] == [None, None]
    problem = stream.feed(forged)
    assert problem is not None and problem.startswith("entry 3: signature does not verify")
    assert stream.feed(docs[3]) == problem and stream.count == 2 and stream.head_hash == docs[1]["hash"]
    report = stream.report()
    assert (report.ok, report.entries, report.first_bad_seq) == (False, 2, 3)
    assert verify.Stream(M).feed([]) == "entry 1: not an entry (a JSON object)"
    assert verify.Stream(M).feed(docs[1]) is not None  # out of order
