"""Bundles carry the checkpoint notes with every cosignature: verify roots the entries, holds each note to
them, reports how far each party cosigned, and names an edited note, a cosignature by a wrong key and a
root that disagrees; two forked copies compared give a proof checkable with the service's key alone."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from support import insider
from support.builders import M
from typer.testing import CliRunner

from deconflict.cli import app
from deconflict.clock import FixedClock, iso
from deconflict.record import bundle, note, signing, witness
from deconflict.service import Service, record
from deconflict.service import checkpoints as notes
from deconflict.store import open_store

runner = CliRunner()
TR_KEY = signing.KeyPair.from_seed(bytes([7]) * 32)
IL_KEY = signing.KeyPair.from_seed(bytes([9]) * 32)
OBSERVER = {"id": "OBS", "party": "OBS", "role": "observer", "name": "Observer"}


@pytest.fixture
def party_keys() -> dict[str, signing.KeyPair]:
    """Türkiye and Israel hold their own keys; the service holds the others' (demo custody)."""
    return {"TR": TR_KEY, "IL": IL_KEY}


def cosign(svc: Service, doc: dict[str, Any], party: str, key: signing.KeyPair, t: int) -> None:
    line = note.Cosigner(note.cosigner_name(M, party), key).cosign(note.parse_note(doc["note"]).text, t).line()
    notes.add_cosignature(svc.context, M, doc["seq"], party, line)


def export(svc: Service, out: Path) -> Path:
    """What 'ledger export' writes, with the checkpoints' notes carrying every cosignature."""
    head = svc.head(M)
    bundle.export(
        svc.record(M, upto=head.seq),
        mechanism=M,
        head=head,
        count=head.seq,
        out=out,
        keys=svc.keys(M),
        checkpoints=record.checkpoints(svc.context, M, with_cosignatures=True),
        exported_at=iso(svc.clock()),
    )
    return out


@pytest.fixture
def cosigned(svc: Service, clock: FixedClock, tmp_path: Path) -> Path:
    """Two checkpoints: TR and IL cosign the first, only TR the second."""
    first = svc.checkpoint(M)
    assert first is not None
    cosign(svc, first, "TR", TR_KEY, int(clock().timestamp()))
    cosign(svc, first, "IL", IL_KEY, int(clock().timestamp()))
    svc.add_member(mechanism_id=M, member=OBSERVER)
    clock.advance(seconds=60)
    second = svc.checkpoint(M)
    assert second is not None
    clock.advance(seconds=5)
    cosign(svc, second, "TR", TR_KEY, int(clock().timestamp()))
    return export(svc, tmp_path / "record.jsonl")


def test_a_bundle_reports_how_far_each_party_cosigned(cosigned: Path, svc: Service, clock: FixedClock) -> None:
    report = bundle.verify(cosigned)
    assert report.ok, report.problem
    head, first = report.head_seq, svc.checkpoints(M)[0]["seq"]
    reach = {c["party"]: (c["size"], c["at"]) for c in report.cosigned}
    assert report.notes == 2
    assert reach["TR"] == (head, iso(clock()))
    assert reach["IL"][0] == first and first < head
    assert all(size is None for p, (size, _) in reach.items() if p not in ("TR", "IL"))
    result = runner.invoke(app, ["ledger", "verify", str(cosigned)])
    assert f"  TR cosigned up to entry {head} (at {iso(clock())})" in result.output
    assert f"  IL cosigned up to entry {first} (at " in result.output
    assert "never cosigned" in result.output  # the parties whose keys the service holds cannot witness


def _edit_note(path: Path, change: Any) -> Path:
    lines = path.read_text(encoding="utf-8").splitlines(keepends=True)
    header = json.loads(lines[0])
    header["checkpoints"][-1]["note"] = change(header["checkpoints"][-1]["note"])
    out = path.with_name("edited.jsonl")
    out.write_text(json.dumps(header, ensure_ascii=False) + "\n" + "".join(lines[1:]), encoding="utf-8")
    return out


def _wrong_key(text: str) -> str:
    signed = note.parse_note(text)
    forged = note.Cosigner(note.cosigner_name(M, "TR"), signing.KeyPair.from_seed(bytes([3]) * 32))
    kept = tuple(s for s in signed.signatures if not s.name.endswith("/TR"))
    return note.Note(signed.text, kept).signed(forged.cosign(signed.text, 1_744_000_000)).format()


def _tampered_cosignature(text: str) -> str:
    signed = note.parse_note(text)
    sigs = tuple(
        note.Signature(s.name, s.key_id, s.raw[:8] + bytes(64)) if s.name.endswith("/TR") else s
        for s in signed.signatures
    )
    return note.Note(signed.text, sigs).format()


@pytest.mark.parametrize(
    ("change", "words"),
    [
        (
            lambda t: t.replace("\n\n", "\nextra line\n\n", 1),
            "does not verify with the service's key declared in entry 1",
        ),
        (_wrong_key, "TR's cosignature is by note key id"),
        (_tampered_cosignature, "TR's cosignature does not verify with TR's key"),
    ],
    ids=["note-edited", "cosignature-from-a-wrong-key", "cosignature-changed"],
)
def test_a_bad_note_or_cosignature_is_named(cosigned: Path, change: Any, words: str) -> None:
    report = bundle.verify(_edit_note(cosigned, change))
    assert not report.ok and words in str(report.problem)
    result = runner.invoke(app, ["ledger", "verify", str(_edit_note(cosigned, change))])
    assert result.exit_code == 1 and words in result.output


def test_a_signed_root_that_disagrees_with_the_entries_is_named_and_printed_as_evidence(
    cosigned: Path, svc: Service
) -> None:
    size = svc.head(M).seq
    lie = note.Checkpoint(note.origin(M), size, bytes(32)).body()
    forged = note.Note(lie).signed(notes.note_signer(svc.context, M).sign(lie)).format()
    path = _edit_note(cosigned, lambda _: forged)
    report = bundle.verify(path)
    assert not report.ok and "the note and the entries disagree" in str(report.problem)
    assert report.evidence == forged
    result = runner.invoke(app, ["ledger", "verify", str(path)])
    assert result.exit_code == 1 and forged in result.output


@pytest.mark.parametrize("entries", [1, 2], ids=["same-size", "longer"])
def test_two_forked_bundles_compared_give_a_proof_checkable_with_the_service_key_alone(
    cosigned: Path, svc: Service, db: str, clock: FixedClock, tmp_path: Path, entries: int
) -> None:
    head = svc.head(M).seq
    service = note.parse_vkey(notes.note_keys(svc.context, M)["service"])
    insider.fork(db, M, from_seq=head, entries=entries)
    clock.advance(seconds=60)
    forked = Service(open_store(db), clock=clock)
    assert forked.checkpoint(M) is not None
    other = export(forked, tmp_path / "forked.jsonl")
    result = runner.invoke(app, ["ledger", "compare", str(cosigned), str(other)])
    assert result.exit_code == 1, result.output
    proof = result.output[result.output.index("deconflict fork proof v1") : result.output.index("-- end\n") + 7]
    finding = witness.verify_fork_proof(proof, service)
    assert finding.origin == note.origin(M)
    same = runner.invoke(app, ["ledger", "compare", str(cosigned), str(cosigned)])
    assert same.exit_code == 0 and "no fork between their" in same.output


def test_compare_takes_note_files_with_the_service_vkey(cosigned: Path, svc: Service, tmp_path: Path) -> None:
    header = json.loads(cosigned.read_text(encoding="utf-8").splitlines()[0])
    a = tmp_path / "a.note"
    a.write_text(header["checkpoints"][-1]["note"], encoding="utf-8")
    size = svc.head(M).seq
    lie = note.Checkpoint(note.origin(M), size, bytes(32)).body()
    b = tmp_path / "b.note"
    b.write_text(note.Note(lie).signed(notes.note_signer(svc.context, M).sign(lie)).format(), encoding="utf-8")
    vkey = notes.note_keys(svc.context, M)["service"]
    result = runner.invoke(app, ["ledger", "compare", str(a), str(b), "--vkey", vkey])
    assert result.exit_code == 1 and "two roots for size" in result.output
    missing = runner.invoke(app, ["ledger", "compare", str(a), str(b)])
    assert missing.exit_code == 2 and "vkey" in missing.output


def test_compare_reads_a_mirrors_folder_of_cosigned_notes(cosigned: Path, svc: Service, tmp_path: Path) -> None:
    header = json.loads(cosigned.read_text(encoding="utf-8").splitlines()[0])
    folder = tmp_path / "cosigned"
    folder.mkdir()
    for cp in header["checkpoints"]:
        (folder / f"{cp['seq']}.note").write_text(cp["note"], encoding="utf-8")
    result = runner.invoke(app, ["ledger", "compare", str(folder), str(cosigned)])
    assert result.exit_code == 0 and "no fork between their 2 and 2 signed checkpoints" in result.output
    assert "entries were not verified here" in result.output
    (folder / "1.note").write_text("not a note\n", encoding="utf-8")
    bad = runner.invoke(app, ["ledger", "compare", str(folder), str(cosigned)])
    assert bad.exit_code == 2 and "is not a checkpoint the service signed" in bad.output


def test_ledger_export_from_the_database_carries_the_cosignatures(
    cosigned: Path, svc: Service, db: str, tmp_path: Path
) -> None:
    """The operator's own command, not the test's helper: its bundle shows how far each party cosigned."""
    svc.store.close()
    out = tmp_path / "exported.jsonl"
    result = runner.invoke(app, ["ledger", "export", "--db", db, "--mechanism", M, "--out", str(out)])
    assert result.exit_code == 0, result.output
    reach = {c["party"]: c["size"] for c in bundle.verify(out).cosigned}
    assert reach["TR"] is not None and reach["IL"] is not None
