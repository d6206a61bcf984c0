"""Checkpoint notes, proofs and cosignatures (service and HTTP), and a party's mirror: three processes on
loopback (``deconflict serve`` and two ``deconflict mirror``), the operator forking the record, both
mirrors raising the alarm with a fork proof anyone can check with the service's key alone."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import threading
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import event
from support import insider
from support.builders import HAMA, PALMYRA, M, declared_db, vol
from support.live import LiveServer, auth, free_port, wait_until
from typer.testing import CliRunner

from deconflict.cli import app
from deconflict.client import Client
from deconflict.clock import FixedClock, system_clock
from deconflict.errors import DeconflictError, Forbidden, InvalidInput, NotFound
from deconflict.record import merkle, note, signing, witness
from deconflict.service import Service, record
from deconflict.service import checkpoints as notes
from deconflict.store import open_store

TR_KEY = signing.KeyPair.from_seed(bytes([7]) * 32)
IL_KEY = signing.KeyPair.from_seed(bytes([9]) * 32)


@pytest.fixture
def party_keys() -> dict[str, signing.KeyPair]:
    """Türkiye and Israel hold their own keys; the service holds the others' (demo custody)."""
    return {"TR": TR_KEY, "IL": IL_KEY}


def b64(text: str) -> bytes:
    return signing.unb64(text, field="hash", size=32)


def leaves(svc: Service) -> list[bytes]:
    return [merkle.entry_leaf(e["hash"]) for e in svc.record(M)]


def service_verifier(svc: Service) -> note.Verifier:
    return note.parse_vkey(notes.note_keys(svc.context, M)["service"])


def cosigner(party: str, key: signing.KeyPair) -> note.Cosigner:
    return note.Cosigner(note.cosigner_name(M, party), key)


def test_a_checkpoint_carries_a_note_over_the_merkle_root_signed_with_the_records_service_key(svc: Service) -> None:
    doc = svc.checkpoint(M)
    assert doc is not None
    cp, _ = note.open_checkpoint(doc["note"], service_verifier(svc))
    assert (cp.origin, cp.size, cp.root) == (note.origin(M), doc["seq"], merkle.root(leaves(svc)))
    first = next(iter(svc.record(M)))
    assert service_verifier(svc).public_key == signing.unb64(
        first["payload"]["service_key"]["public_key"], field="public_key", size=32
    )
    assert svc.checkpoints(M)[-1]["note"] == doc["note"]


def test_the_tree_grows_with_the_record_and_proofs_verify(svc: Service, clock: FixedClock) -> None:
    first = svc.checkpoint(M)
    assert first is not None
    svc.add_member(mechanism_id=M, member={"id": "OBS", "party": "OBS", "role": "observer", "name": "Observer"})
    clock.advance(seconds=60)
    second = svc.checkpoint(M)
    assert second is not None
    v = service_verifier(svc)
    (a, _), (b, _) = note.open_checkpoint(first["note"], v), note.open_checkpoint(second["note"], v)
    assert b.root == merkle.root(leaves(svc))
    doc = notes.consistency(svc.context, M, a.size, b.size)
    merkle.verify_consistency(a.size, b.size, a.root, b.root, [b64(h) for h in doc["proof"]])
    inc = notes.inclusion(svc.context, M, 3, b.size)
    merkle.verify_inclusion(bytes.fromhex(inc["hash"]), 2, b.size, [b64(h) for h in inc["proof"]], b.root)
    with pytest.raises(InvalidInput, match="to: the record has entries 1 to"):
        notes.consistency(svc.context, M, 1, b.size + 1)
    with pytest.raises(InvalidInput, match="from: expected 1 to"):
        notes.consistency(svc.context, M, b.size, a.size)


def test_a_party_cosigns_with_its_record_key_and_the_note_collects_the_cosignatures(
    svc: Service, clock: FixedClock
) -> None:
    doc = svc.checkpoint(M)
    assert doc is not None
    seq, t = doc["seq"], int(clock().timestamp())
    for party, key in (("TR", TR_KEY), ("IL", IL_KEY)):
        line = cosigner(party, key).cosign(note.parse_note(doc["note"]).text, t).line()
        assert notes.add_cosignature(svc.context, M, seq, party, line)["kept"] is True
    again = cosigner("TR", TR_KEY).cosign(note.parse_note(doc["note"]).text, t + 5).line()
    assert notes.add_cosignature(svc.context, M, seq, "TR", again)["kept"] is False  # the first one is kept
    served = svc.checkpoints(M)[-1]
    full = record.checkpoints(svc.context, M, with_cosignatures=True)[-1]
    assert served["note"] == doc["note"] and full["cosigned_by"] == ["IL", "TR"]
    verifiers = [service_verifier(svc), cosigner("TR", TR_KEY).verifier, cosigner("IL", IL_KEY).verifier]
    names = {v.name for v in note.verify_note(note.parse_note(full["note"]), verifiers)}
    assert names == {note.origin(M), note.cosigner_name(M, "TR"), note.cosigner_name(M, "IL")}


def test_the_parties_named_cosigning_a_checkpoint_are_those_whose_lines_are_in_its_note(
    svc: Service, db: str, clock: FixedClock
) -> None:
    """A cosignature committed while the checkpoint is read (another process keeping it) is either in both the
    note and ``cosigned_by`` or in neither: read in two statements, it was named without its line (seen once in
    the two mirrors' test: ``cosigned_by`` IL and TR, TR's line not in the note)."""
    doc = svc.checkpoint(M)
    assert doc is not None
    seq, t, text = doc["seq"], int(clock().timestamp()), note.parse_note(doc["note"]).text
    notes.add_cosignature(svc.context, M, seq, "IL", cosigner("IL", IL_KEY).cosign(text, t).line())
    other = Service(open_store(db), clock=clock)  # as TR's mirror reaching another server process
    late: list[str] = []

    def keep_tr_meanwhile(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        if not late and "cosignatures" in statement and statement.lstrip().upper().startswith("SELECT"):
            late.append(statement)
            notes.add_cosignature(other.context, M, seq, "TR", cosigner("TR", TR_KEY).cosign(text, t).line())

    event.listen(svc.store.engine, "after_cursor_execute", keep_tr_meanwhile)
    try:
        full = record.checkpoints(svc.context, M, with_cosignatures=True)[-1]
    finally:
        event.remove(svc.store.engine, "after_cursor_execute", keep_tr_meanwhile)
        other.store.close()
    assert late, "the checkpoint's cosignatures were not read"
    verifiers = [service_verifier(svc), cosigner("TR", TR_KEY).verifier, cosigner("IL", IL_KEY).verifier]
    lines = {v.name for v in note.verify_note(note.parse_note(full["note"]), verifiers)} - {note.origin(M)}
    assert lines == {note.cosigner_name(M, p) for p in full["cosigned_by"]}, full
    assert record.checkpoints(svc.context, M, with_cosignatures=True)[-1]["cosigned_by"] == ["IL", "TR"]


def test_a_cosignature_is_refused_unless_it_is_the_partys_own_key_under_its_own_name(
    svc: Service, clock: FixedClock
) -> None:
    doc = svc.checkpoint(M)
    assert doc is not None
    seq, text, t = doc["seq"], note.parse_note(doc["note"]).text, int(clock().timestamp())
    with pytest.raises(InvalidInput, match="TR cosigns as .*/TR, not .*/IL"):
        notes.add_cosignature(svc.context, M, seq, "TR", cosigner("IL", IL_KEY).cosign(text, t).line())
    with pytest.raises(Forbidden, match="not a key in force that TR alone holds"):
        notes.add_cosignature(svc.context, M, seq, "TR", cosigner("TR", IL_KEY).cosign(text, t).line())
    held = signing.KeyPair.generate()  # AZ's key is held by the service: it cannot witness
    with pytest.raises(Forbidden, match="AZ alone holds"):
        notes.add_cosignature(svc.context, M, seq, "AZ", cosigner("AZ", held).cosign(text, t).line())
    forged = cosigner("TR", TR_KEY).cosign(text, t)
    bad = note.Signature(forged.name, forged.key_id, forged.raw[:-1] + bytes([forged.raw[-1] ^ 1])).line()
    with pytest.raises(InvalidInput, match="does not verify with TR's key"):
        notes.add_cosignature(svc.context, M, seq, "TR", bad)
    with pytest.raises(InvalidInput, match="one signature line"):
        notes.add_cosignature(svc.context, M, seq, "TR", "a\nb")
    with pytest.raises(NotFound, match="no checkpoint of entry 999"):
        notes.add_cosignature(svc.context, M, 999, "TR", forged.line())


def test_checkpoint_notes_proofs_and_cosignatures_over_http(live: LiveServer, tokens: dict[str, str]) -> None:
    doc = live.service.checkpoint(M)
    assert doc is not None
    base, h = f"{live.url}/api/v1/mechanisms/{M}", auth(tokens["TR"])
    keys = httpx.get(f"{base}/checkpoints/keys", headers=h).json()
    assert keys["service"] == service_verifier(live.service).vkey()
    assert {c["party"] for c in keys["cosigners"]} == {"TR", "IL"}
    text = note.parse_note(doc["note"]).text
    line = cosigner("TR", TR_KEY).cosign(text, int(live.service.clock().timestamp())).line()
    r = httpx.post(f"{base}/checkpoints/{doc['seq']}/cosignature", json={"cosignature": line}, headers=h)
    assert r.status_code == 200, r.text
    got: dict[str, Any] = httpx.get(f"{base}/checkpoints?with_cosignatures=true", headers=h).json()
    assert got["checkpoints"][-1]["cosigned_by"] == ["TR"] and got["checkpoints"][-1]["note"].endswith(line)
    proof = httpx.get(f"{base}/proof/consistency?from=2&to={doc['seq']}", headers=h)
    assert proof.status_code == 200 and proof.json()["to_root"] == signing.b64(note.parse_checkpoint(text).root)
    assert httpx.get(f"{base}/proof/inclusion?seq=1&size={doc['seq']}", headers=h).status_code == 200
    wrong = httpx.get(f"{base}/proof/consistency?from=5&to=2", headers=h)
    assert wrong.status_code == 422 and wrong.json()["field"] == "from"


# --- three processes on loopback: the service and two parties' mirrors ---------------------------------


class Proc:
    """A ``deconflict`` subprocess whose output lines are collected as they come."""

    def __init__(self, *args: str) -> None:
        exe = Path(sys.executable).parent / "deconflict"
        self.p = subprocess.Popen(
            [str(exe), *args],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            encoding="utf-8",
            env={**os.environ, "LANG": "C.UTF-8"},
        )
        self.lines: list[str] = []
        threading.Thread(target=self._pump, daemon=True).start()

    def _pump(self) -> None:
        assert self.p.stdout is not None
        for line in self.p.stdout:
            self.lines.append(line)

    @property
    def output(self) -> str:
        return "".join(self.lines)

    def stop(self) -> None:
        if self.p.poll() is None:
            self.p.terminate()
            try:
                self.p.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.p.kill()
                self.p.wait(timeout=5)


def serve(db: str, port: int, token: str) -> Proc:
    """``deconflict serve`` on loopback, once it answers; it signs a checkpoint of the head each second
    the head has moved (its first tick signs the head it starts with)."""
    proc = Proc("serve", "--db", db, "--port", str(port), "--checkpoint-every", "1")
    url = f"http://127.0.0.1:{port}/api/v1/mechanisms/{M}/checkpoints/keys"

    def up() -> bool:
        assert proc.p.poll() is None, proc.output
        try:
            return httpx.get(url, headers=auth(token), timeout=2).status_code == 200
        except httpx.TransportError:
            return False

    wait_until(up, "the service to answer", deadline_s=30)
    return proc


def latest(url: str, token: str) -> dict[str, Any]:
    got = httpx.get(f"{url}/api/v1/mechanisms/{M}/checkpoints?with_cosignatures=true", headers=auth(token), timeout=5)
    return dict(got.json()["checkpoints"][-1]) if got.json()["checkpoints"] else {}


def cosigned_by_both(url: str, token: str, *, after: int) -> dict[str, Any] | None:
    """The newest checkpoint when it is after entry ``after`` and both parties have cosigned it."""
    c = latest(url, token)
    return c if c.get("cosigned_by") == ["IL", "TR"] and c["seq"] > after else None


def test_two_mirrors_cosign_and_both_catch_the_operators_fork_with_a_proof_anyone_can_check(tmp_path: Path) -> None:
    db = declared_db(tmp_path / "record.db", system_clock, keys={"TR": TR_KEY, "IL": IL_KEY})
    svc = Service(open_store(db))
    tokens = {p: svc.issue_token(mechanism_id=M, member_id=p) for p in ("TR", "IL")}
    svc.store.close()
    port, procs = free_port(), []
    url = f"http://127.0.0.1:{port}"
    try:
        server = serve(db, port, tokens["TR"])
        procs.append(server)
        mirrors = {}
        for party, key in (("TR", TR_KEY), ("IL", IL_KEY)):
            signing.write_key_file(tmp_path / f"{party}.key", key, party=party)
            mirrors[party] = Proc(
                "mirror", "--url", url, "--token", tokens[party], "--key", str(tmp_path / f"{party}.key"),
                "--dir", str(tmp_path / party), "--retry-s", "0.2",
            )  # fmt: skip
            procs.append(mirrors[party])

        # 1. Both mirrors cosign the first checkpoint; the service serves the note with both cosignatures.
        first = wait_until(
            lambda: (c := latest(url, tokens["TR"])).get("cosigned_by") == ["IL", "TR"] and c, "2 cosigs"
        )
        # 2. Each party notifies, signed with its own key; within a second the service signs a checkpoint
        #    of the new head (no restart needed) and both mirrors, following the stream, cosign it.
        start = system_clock() + timedelta(hours=2)
        for party, key, centre in (("TR", TR_KEY, PALMYRA), ("IL", IL_KEY, HAMA)):
            Client(url, tokens[party], key=key).notify(kind="uav_patrol", volumes=[vol(centre, start)])
        head = len(Client(url, tokens["TR"]).record_page(0, limit=1000))
        second = wait_until(
            lambda: (c := latest(url, tokens["TR"])).get("cosigned_by") == ["IL", "TR"] and c["seq"] == head and c,
            "both mirrors to cosign the checkpoint of the new head",
        )
        record_key = json.loads((tmp_path / "TR" / "entries.jsonl").read_text().splitlines()[0])
        service = note.Verifier(
            note.origin(M),
            note.ED25519,
            signing.unb64(record_key["payload"]["service_key"]["public_key"], field="public_key", size=32),
        )
        verifiers = [service, cosigner("TR", TR_KEY).verifier, cosigner("IL", IL_KEY).verifier]
        verified = note.verify_note(note.parse_note(second["note"]), verifiers)
        assert len(verified) == 3, (second, verified)  # the note and what verified, should one line not (seen once)
        for party in ("TR", "IL"):
            kept = [int(p.stem) for p in sorted((tmp_path / party / "cosigned").glob("*.note"))]
            assert kept[0] == first["seq"] and kept[-1] == second["seq"] and kept == sorted(set(kept)), kept

        # 3. The operator forks: stops the service, rewrites the last two entries (and adds one) with the
        #    service's key, and serves again; its first tick signs the forked head. The mirrors resume
        #    their streams from the last entry they hold.
        server.stop()
        insider.fork(db, M, from_seq=second["seq"] - 1, entries=3, prefix="OBS")
        server = serve(db, port, tokens["TR"])
        procs.append(server)
        for party, proc in mirrors.items():
            assert proc.p.wait(timeout=60) == 1, proc.output  # the alarm's exit status
            assert "ALARM" in proc.output and "FORK" in proc.output, proc.output
            printed = proc.output[proc.output.index("deconflict fork proof v1") : proc.output.index("-- end\n") + 7]
            assert (tmp_path / party / "fork-proof.txt").read_text() == printed
            finding = witness.verify_fork_proof(printed, service)  # with the record's service key alone
            assert (finding.a.size, finding.b.size) == (second["seq"], second["seq"] + 1)
            assert finding.a.root != finding.b.root
    finally:
        for proc in procs:
            proc.stop()


def test_mirror_once_catches_up_cosigns_resumes_and_refuses_a_copy_changed_on_disk(
    live: LiveServer, tokens: dict[str, str], tmp_path: Path, clock: FixedClock
) -> None:
    signing.write_key_file(tmp_path / "TR.key", TR_KEY, party="TR")
    signing.write_key_file(tmp_path / "IL.key", IL_KEY, party="IL")
    folder = tmp_path / "TR"
    args = [
        "mirror",
        "--url",
        live.url,
        "--token",
        tokens["TR"],
        "--key",
        str(tmp_path / "TR.key"),
        "--dir",
        str(folder),
    ]
    first = live.service.checkpoint(M)
    assert first is not None
    run = CliRunner().invoke(app, [*args, "--once"])
    assert run.exit_code == 0 and f"cosigned checkpoint {first['seq']}" in run.output, run.output
    Client(live.url, tokens["TR"], key=TR_KEY).notify(kind="uav_patrol", volumes=[vol(PALMYRA, clock())])
    clock.advance(seconds=60)
    second = live.service.checkpoint(M)
    assert second is not None
    run = CliRunner().invoke(app, [*args, "--once"])  # resumes from what the folder holds: proof from the first
    assert run.exit_code == 0 and f"cosigned checkpoint {second['seq']}" in run.output, run.output
    assert f"caught up: {second['seq']} entries held; last cosigned {second['seq']}" in run.output
    full = record.checkpoints(live.service.context, M, with_cosignatures=True)
    assert [c["cosigned_by"] for c in full] == [["TR"], ["TR"]]
    again = CliRunner().invoke(app, [*args, "--once"])
    assert again.exit_code == 0 and "cosigned checkpoint" not in again.output
    wrong = CliRunner().invoke(app, [*args[:6], str(tmp_path / "IL.key"), *args[7:], "--once"])
    assert wrong.exit_code == 2 and "is IL's key; this token is TR's, of TR" in wrong.output
    lines = (folder / "entries.jsonl").read_text().splitlines()
    lines[2] = lines[2].replace('"at": "', '"at": "1', 1)
    (folder / "entries.jsonl").write_text("\n".join(lines) + "\n")
    changed = CliRunner().invoke(app, [*args, "--once"])
    assert changed.exit_code == 2 and "line 3: the copy this mirror holds does not verify" in changed.output


def test_a_mirror_cosigns_with_its_partys_key_in_force_only_and_says_so_before_anything_is_kept(
    live: LiveServer, tokens: dict[str, str], tmp_path: Path, clock: FixedClock
) -> None:
    """A key TR never registered: refused in a line, exit 2 (the mirror could not run), before anything is
    fetched or kept; it used to cosign, keep the note, exit 0, and leave a copy that ``ledger verify`` called
    BROKEN ("not a key TR registered"). TR's key revoked in the record: the mirror catches up, then refuses to
    cosign with it (the entries held say so, whatever the service's list of keys says)."""
    unregistered = signing.KeyPair.from_seed(bytes([11]) * 32)
    signing.write_key_file(tmp_path / "new.key", unregistered, party="TR")
    signing.write_key_file(tmp_path / "TR.key", TR_KEY, party="TR")
    assert live.service.checkpoint(M) is not None
    args = ["mirror", "--url", live.url, "--token", tokens["TR"], "--once"]
    run = CliRunner().invoke(app, [*args, "--key", str(tmp_path / "new.key"), "--dir", str(tmp_path / "new")])
    said = " ".join(run.output.split())
    assert run.exit_code == 2, run.output
    assert f"is not a key TR registered in the record (TR's keys: {TR_KEY.key_id}, held by party)" in said
    assert "nothing was cosigned" in said and "keys register" in said
    assert not (tmp_path / "new").exists()
    assert [c["cosigned_by"] for c in record.checkpoints(live.service.context, M, with_cosignatures=True)] == [[]]

    revoked = live.service.revoke_key(mechanism_id=M, key_id=TR_KEY.key_id, reason="lost")
    clock.advance(seconds=60)
    assert live.service.checkpoint(M) is not None
    run = CliRunner().invoke(app, [*args, "--key", str(tmp_path / "TR.key"), "--dir", str(tmp_path / "TR")])
    said = " ".join(run.output.split())
    assert run.exit_code == 2, run.output
    assert f"was revoked by entry {revoked['revoked_seq']} of the record: nothing more is cosigned with it" in said
    assert not (tmp_path / "TR").exists()  # said before anything is fetched (the service's list of keys says so)
    # a mirror already running when the key is revoked: the entries it holds say so at its next cosignature
    from deconflict.cli.mirror import Mirror

    running = Mirror(Client(live.url, tokens["TR"]), TR_KEY, tmp_path / "running", say=lambda _: None)
    with pytest.raises(DeconflictError, match=f"was revoked by entry {revoked['revoked_seq']} of the record"):
        running.once()
    assert not list((tmp_path / "running" / "cosigned").glob("*.note"))
    assert all(not c["cosigned_by"] for c in record.checkpoints(live.service.context, M, with_cosignatures=True))


def test_a_mirror_following_a_record_cut_back_says_so_and_alarms_once_it_is_written_over(tmp_path: Path) -> None:
    """The service is restored from a backup taken before entries a mirror holds (the record cut back): the
    mirror's stream is told that the record ends before them (``event: rewound``) and the mirror says so in
    words; once the service writes over those sequence numbers and signs a checkpoint of them, the mirror
    raises the alarm."""
    import sqlite3

    db = declared_db(tmp_path / "record.db", system_clock, keys={"TR": TR_KEY, "IL": IL_KEY})
    svc = Service(open_store(db))
    tokens = {p: svc.issue_token(mechanism_id=M, member_id=p) for p in ("TR", "IL")}
    svc.store.close()
    backup = str(tmp_path / "backup.db")
    with sqlite3.connect(db) as src, sqlite3.connect(backup) as dst:
        src.backup(dst)
    port, procs = free_port(), []
    url = f"http://127.0.0.1:{port}"
    try:
        server = serve(db, port, tokens["TR"])
        procs.append(server)
        start = system_clock() + timedelta(hours=2)
        Client(url, tokens["TR"], key=TR_KEY).notify(kind="uav_patrol", volumes=[vol(PALMYRA, start)])
        signing.write_key_file(tmp_path / "IL.key", IL_KEY, party="IL")
        mirror = Proc(
            "mirror", "--url", url, "--token", tokens["IL"], "--key", str(tmp_path / "IL.key"),
            "--dir", str(tmp_path / "IL"), "--retry-s", "0.2",
        )  # fmt: skip
        procs.append(mirror)
        cosigned = wait_until(
            lambda: (c := latest(url, tokens["TR"])).get("cosigned_by") == ["IL"] and c, "the mirror to cosign"
        )
        server.stop()
        with sqlite3.connect(backup) as src, sqlite3.connect(db) as dst:
            src.backup(dst)  # the restore: the record as it was before the notice
        server = serve(db, port, tokens["TR"])
        procs.append(server)
        wait_until(lambda: "the service's record now ends at entry" in mirror.output, "the mirror to say so")
        # the duty loop's first pass may append (a line check) before and after the restore: the numbers are
        # the mirror's, the promise that it says the record ends before what it holds
        said = re.search(r"the service's record now ends at entry (\d+), before the (\d+) entries held", mirror.output)
        assert said and int(said[1]) < int(said[2]) and int(said[2]) >= cosigned["seq"], mirror.output
        for centre in (HAMA, PALMYRA, HAMA):  # written over the entries the mirror holds, and past them
            Client(url, tokens["TR"], key=TR_KEY).notify(kind="uav_patrol", volumes=[vol(centre, start)])
        assert mirror.p.wait(timeout=60) == 1, mirror.output
        assert "ALARM" in mirror.output, mirror.output
    finally:
        for proc in procs:
            proc.stop()
