"""Signed notes, checkpoints, cosignatures and the party's witness.

Formats: C2SP signed-note, tlog-checkpoint and tlog-cosignature (Ed25519 cosignature/v1).

Known-answer vectors: the verifier key and note of https://c2sp.org/signed-note ("Example"), and the
cosignature timestamp of transparency-dev/formats note/note_cosigv1_test.go (TestCoSigV1Timestamp).
"""

from __future__ import annotations

import base64
import hashlib
from datetime import UTC, datetime

import pytest

from deconflict.errors import InvalidInput
from deconflict.record import merkle
from deconflict.record.note import (
    COSIGNATURE_V1,
    ED25519,
    Checkpoint,
    Cosigner,
    Note,
    NoteSigner,
    Signature,
    Verifier,
    cosigner_name,
    key_id,
    open_checkpoint,
    origin,
    parse_checkpoint,
    parse_note,
    parse_vkey,
    verify_note,
)
from deconflict.record.signing import KeyPair, verify
from deconflict.record.witness import Fork, OlderCheckpoint, Witness, fork_proof_text, verify_fork_proof

SPEC_VKEY = "example.com/foo+530d903a+AekyeRrm56hApGFkyQR4ZCbV54Id2LKaANYcrnKv3U2k"
SPEC_NOTE = (
    "This is an example message.\n\n— example.com/foo "
    "Uw2QOkn8srV1yJGh2VYRlL1Tnagv1YEq6TfXppzi2ONncAlTgK7Ztg1ERYNZXsYjOBH3mFXmRKuwHjG1Yu72IneyaQM=\n"
)
NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
ORIGIN = origin("tr-il-syria")
SERVICE = NoteSigner(ORIGIN, KeyPair.from_seed(bytes([1]) * 32))
TR = Cosigner(cosigner_name("tr-il-syria", "TR"), KeyPair.from_seed(bytes([2]) * 32))
IL = Cosigner(cosigner_name("tr-il-syria", "IL"), KeyPair.from_seed(bytes([3]) * 32))
LEAVES = [hashlib.sha256(i.to_bytes(4, "big")).digest() for i in range(40)]


def checkpoint(n: int, leaves: list[bytes] = LEAVES) -> Note:
    """The service's signed checkpoint of the first ``n`` leaves."""
    text = Checkpoint(ORIGIN, n, merkle.root(leaves[:n])).body()
    return Note(text).signed(SERVICE.sign(text))


# --- known answers ---------------------------------------------------------------------------------


def test_the_spec_example_verifies_and_an_edited_text_does_not() -> None:
    v = parse_vkey(SPEC_VKEY)
    assert (v.name, v.alg, f"{v.key_id:08x}") == ("example.com/foo", ED25519, "530d903a")
    assert v.vkey() == SPEC_VKEY
    note = parse_note(SPEC_NOTE)
    assert note.format() == SPEC_NOTE
    assert [x.name for x in verify_note(note, [v])] == ["example.com/foo"]
    with pytest.raises(InvalidInput, match="signature by example.com/foo does not verify"):
        verify_note(parse_note(SPEC_NOTE.replace("example message", "example massage")), [v])


def test_a_cosignature_carries_its_time_after_the_key_id() -> None:
    raw = base64.b64decode(
        "ZGhGuQAAAABm/qTPeyKXD+R2rzyQsxPiP8mXum7qq/iF0u4vanlqJyocWODBt97w9uL+8qT7S5gxEHWWOworDcFiEBYJXORmnFBOBA=="
    )
    assert Signature("w", int.from_bytes(raw[:4], "big"), raw[4:]).timestamp == 1727964367


def test_key_ids_follow_the_spec_and_differ_by_signature_type() -> None:
    pub = base64.b64decode(SERVICE.key.public_key)
    want = int.from_bytes(hashlib.sha256(ORIGIN.encode() + b"\n\x01" + pub).digest()[:4], "big")
    assert SERVICE.verifier.key_id == key_id(ORIGIN, ED25519, pub) == want
    assert key_id(ORIGIN, COSIGNATURE_V1, pub) != want
    assert parse_vkey(TR.verifier.vkey()) == TR.verifier
    assert TR.verifier.vkey().startswith("deconflict.example/tr-il-syria/TR+")


def test_origin_and_names_are_functions_of_the_mechanism() -> None:
    assert ORIGIN == "deconflict.example/tr-il-syria"
    assert cosigner_name("tr-il-syria", "IL") == "deconflict.example/tr-il-syria/IL"
    for bad in ("tr il", "a+b", ""):
        with pytest.raises(InvalidInput, match="key name"):
            cosigner_name("tr-il-syria", bad)


# --- checkpoints and notes ---------------------------------------------------------------------------


def test_a_checkpoint_round_trips_and_is_signed_by_the_service() -> None:
    note = checkpoint(7)
    text = note.format()
    assert text.startswith(f"{ORIGIN}\n7\n{base64.b64encode(merkle.root(LEAVES[:7])).decode()}\n\n— {ORIGIN} ")
    cp, again = open_checkpoint(text, SERVICE.verifier)
    assert (cp.origin, cp.size, cp.root) == (ORIGIN, 7, merkle.root(LEAVES[:7]))
    assert again == note
    with_ext = Checkpoint(ORIGIN, 0, merkle.EMPTY_ROOT, ("x-note: hello",))
    assert parse_checkpoint(with_ext.body()) == with_ext


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ("o\n1\n", "origin, tree size and root"),
        ("o\n01\n" + "A" * 43 + "=\n", "not a decimal"),
        ("o\n-1\n" + "A" * 43 + "=\n", "not a decimal"),
        ("o\n１\n" + "A" * 43 + "=\n", "not a decimal"),
        (f"o\n{1 << 64}\n" + "A" * 43 + "=\n", "not a decimal"),
        ("o\n1\n!!!!\n", "not base64"),
        ("o\n1\nAAAA\n", "3 bytes, not 32"),
        ("o\n1\n" + "A" * 42 + "B=\n", "one standard spelling"),
        ("o\n1\n" + "A" * 43 + "=\n\nx\n", "empty line"),
        ("\n1\n" + "A" * 43 + "=\n", "empty line"),
        ("o\n1\n" + "A" * 43 + "=", "end with a newline"),
    ],
)
def test_malformed_checkpoints_are_named(text: str, words: str) -> None:
    with pytest.raises(InvalidInput, match=words):
        parse_checkpoint(text)


@pytest.mark.parametrize(
    ("data", "words"),
    [
        (b"\xff\n\n\xe2\x80\x94 a AAAAAAA=\n", "not UTF-8"),
        ("a\tb\n\n— a AAAAAAA=\n", "control character"),
        ("a\r\n\n— a AAAAAAA=\n", "control character"),
        ("a\n— a AAAAAAA=\n", "no blank line"),
        ("a\n\n", "not signed"),
        ("a\n\n- a AAAAAAA=\n", "signature line 1 is not"),
        ("a\n\n— aAAAAAAA=\n", "signature line 1 is not"),
        ("a\n\n— a+b AAAAAAA=\n", "key name"),
        ("a\n\n— a AAAA\n", "too short"),
        ("a\n\n— a AAAAAAA\n", "not base64"),
        ("a\n\n— a AAAAAAB=\n", "one standard spelling"),
        ("a\n\n— a AAAAAAA=\n— a AAAAAAA=\n", "already signed"),
        ("a\n\n" + "".join(f"— k{i} AAAAAAA=\n" for i in range(101)), "at most 100"),
        ("a\n\n— a AAAAAAA=", "end with a newline"),
    ],
)
def test_malformed_notes_are_named(data: str | bytes, words: str) -> None:
    with pytest.raises(InvalidInput, match=words):
        parse_note(data)


@pytest.mark.parametrize(
    ("vkey", "words"),
    [
        ("bananas.sigstore.dev+12344556", "expected <name>"),
        ("rekor.sigstore.dev+12345678+THIS_IS_NOT_BASE64!", "not base64"),
        ("rekor.sigstore.dev+12345678+AwEB", "signature type 0x03"),
        ("example.com/foo+NOTAHASH+AekyeRrm56hApGFkyQR4ZCbV54Id2LKaANYcrnKv3U2k", "expected <name>"),
        ("example.com/foo+00000000+AekyeRrm56hApGFkyQR4ZCbV54Id2LKaANYcrnKv3U2k", "not the id of this name"),
        ("example.com/foo+530d903a+" + base64.b64encode(b"\x01" + bytes(31)).decode(), "32 bytes"),
    ],
)
def test_malformed_vkeys_are_named(vkey: str, words: str) -> None:
    with pytest.raises(InvalidInput, match=words):
        parse_vkey(vkey)


def test_a_note_with_the_service_signature_and_two_cosignatures() -> None:
    note = checkpoint(9)
    note = note.signed(TR.cosign(note.text, 1_700_000_000)).signed(IL.cosign(note.text, 1_700_000_060))
    text = note.format()
    assert text.count("\n\n— ") == 1 and text.count("\n— ") == 3
    got = verify_note(parse_note(text), [SERVICE.verifier, TR.verifier, IL.verifier])
    assert [(v.name, v.alg, v.timestamp) for v in got] == [
        (ORIGIN, ED25519, None),
        (TR.name, COSIGNATURE_V1, 1_700_000_000),
        (IL.name, COSIGNATURE_V1, 1_700_000_060),
    ]
    # the cosigned message is exactly the spec's: header line, time line, then the checkpoint body
    raw = note.signatures[1].raw
    msg = f"cosignature/v1\ntime 1700000000\n{note.text}".encode()
    assert verify(TR.key.public_key, msg, base64.b64encode(raw[8:]).decode())
    assert raw[:8] == (1_700_000_000).to_bytes(8, "big")


def test_unknown_signatures_are_ignored_a_failing_known_one_rejects_and_none_known_rejects() -> None:
    note = checkpoint(9)
    stranger = Cosigner(TR.name, KeyPair.from_seed(bytes([9]) * 32))  # same name, other key: other id
    note = note.signed(stranger.cosign(note.text, 5))
    assert [v.name for v in verify_note(note, [SERVICE.verifier, TR.verifier])] == [ORIGIN]
    forged = Signature(TR.name, TR.verifier.key_id, note.signatures[1].raw)  # TR's name and id, not TR's key
    with pytest.raises(InvalidInput, match=f"signature by {TR.name} does not verify"):
        verify_note(note.signed(forged), [SERVICE.verifier, TR.verifier])
    with pytest.raises(InvalidInput, match="no signature by a known key"):
        verify_note(note, [IL.verifier])
    cosig = note.signed(TR.cosign(note.text, 5))
    plain_tr = Verifier(TR.name, ED25519, TR.verifier.public_key)  # the 0x01 key id does not match a cosignature
    with pytest.raises(InvalidInput, match="no signature by a known key"):
        verify_note(Note(cosig.text, cosig.signatures[2:]), [plain_tr])


def test_an_edited_checkpoint_fails_every_signature() -> None:
    note = checkpoint(9)
    note = note.signed(TR.cosign(note.text, 5))
    edited = note.format().replace("\n9\n", "\n8\n", 1)
    with pytest.raises(InvalidInput, match="does not verify"):
        verify_note(parse_note(edited), [SERVICE.verifier])
    with pytest.raises(InvalidInput, match="does not verify"):
        verify_note(parse_note(edited), [TR.verifier])
    with pytest.raises(InvalidInput, match="POSIX time"):
        TR.cosign(note.text, 1 << 63)
    with pytest.raises(InvalidInput, match="expected origin"):
        TR.cosign("not a checkpoint\n", 5)


# --- the witness and forks ---------------------------------------------------------------------------


def test_a_witness_cosigns_only_what_extends_what_it_cosigned() -> None:
    w = Witness(SERVICE.verifier, TR)
    with pytest.raises(InvalidInput, match="must be empty"):
        w.cosign(checkpoint(5), [bytes(32)], NOW)
    sig = w.cosign(checkpoint(5).format(), [], NOW)
    assert sig.timestamp == int(NOW.timestamp()) and w.checkpoint is not None and w.checkpoint.size == 5
    w.cosign(checkpoint(12), merkle.consistency_proof(LEAVES, 5, 12), NOW)
    w.cosign(checkpoint(12), [], NOW)  # the same head again: cosigned again, with a new time
    assert w.last is not None and [s.name for s in w.last.signatures] == [ORIGIN, TR.name]
    verify_note(w.last, [SERVICE.verifier, TR.verifier])
    with pytest.raises(OlderCheckpoint, match="older than the 12"):
        w.cosign(checkpoint(11), [], NOW)
    with pytest.raises(InvalidInput, match="timezone-aware"):
        w.cosign(checkpoint(13), merkle.consistency_proof(LEAVES, 12, 13), datetime(2026, 3, 1))  # noqa: DTZ001
    other = NoteSigner("deconflict.example/other", SERVICE.key)
    text = Checkpoint(other.name, 13, merkle.root(LEAVES[:13])).body()
    with pytest.raises(InvalidInput, match="no signature by a known key"):
        w.cosign(Note(text).signed(other.sign(text)), merkle.consistency_proof(LEAVES, 12, 13), NOW)
    impostor = NoteSigner(ORIGIN, KeyPair.from_seed(bytes([7]) * 32))
    text = Checkpoint(ORIGIN, 13, merkle.root(LEAVES[:13])).body()
    with pytest.raises(InvalidInput, match="no signature by a known key"):
        w.cosign(Note(text).signed(impostor.sign(text)), merkle.consistency_proof(LEAVES, 12, 13), NOW)
    assert getattr(w.checkpoint, "size", None) == 12  # nothing refused changed what it keeps


def _forked() -> list[bytes]:
    return [*LEAVES[:10], *(hashlib.sha256(b"fork" + bytes([i])).digest() for i in range(30))]


def test_two_roots_for_one_size_is_a_fork_anyone_can_check() -> None:
    w = Witness(SERVICE.verifier, IL)
    w.cosign(checkpoint(12), [], NOW)
    with pytest.raises(Fork, match="two roots for size 12") as caught:
        w.cosign(checkpoint(12, _forked()), [], NOW)
    text = caught.value.text
    assert text.startswith("deconflict fork proof v1\n") and text.count(f"— {ORIGIN} ") == 2
    finding = verify_fork_proof(text, SERVICE.verifier)
    assert finding.sentence == f"{ORIGIN}: the service signed two roots for size 12"
    with pytest.raises(InvalidInput, match="no signature by a known key"):
        verify_fork_proof(text, Verifier(ORIGIN, ED25519, bytes(32)))
    with pytest.raises(InvalidInput, match="does not verify"):
        verify_fork_proof(text.replace("\n12\n", "\n11\n", 1), SERVICE.verifier)
    with pytest.raises(InvalidInput, match="the same checkpoint twice"):
        verify_fork_proof(fork_proof_text(checkpoint(12), checkpoint(12)), SERVICE.verifier)
    with pytest.raises(InvalidInput, match="not in the fork proof format"):
        verify_fork_proof(text.replace("-- end\n", ""), SERVICE.verifier)


def test_a_new_head_that_does_not_extend_the_old_is_refused_as_a_fork() -> None:
    w = Witness(SERVICE.verifier, IL)
    w.cosign(checkpoint(12), [], NOW)
    forked = _forked()
    with pytest.raises(Fork, match="not shown to extend size 12") as caught:
        w.cosign(checkpoint(20, forked), merkle.consistency_proof(forked, 12, 20), NOW)
    assert caught.value.a.text == checkpoint(12).text
    assert caught.value.b.text == checkpoint(20, forked).text
    # Two sizes alone prove nothing; the larger tree's own root at 12, with its proof, does.
    with pytest.raises(InvalidInput, match="prove a fork only with"):
        verify_fork_proof(caught.value.text, SERVICE.verifier)
    evidence = fork_proof_text(
        checkpoint(12),
        checkpoint(20, forked),
        prefix_root=merkle.root(forked[:12]),
        proof=merkle.consistency_proof(forked, 12, 20),
    )
    finding = verify_fork_proof(evidence, SERVICE.verifier)
    assert "tree of 20 begins with a different tree of 12" in finding.sentence
    honest = fork_proof_text(
        checkpoint(12),
        checkpoint(20),
        prefix_root=merkle.root(LEAVES[:12]),
        proof=merkle.consistency_proof(LEAVES, 12, 20),
    )
    with pytest.raises(InvalidInput, match="consistent, not a fork"):
        verify_fork_proof(honest, SERVICE.verifier)
    lying = fork_proof_text(
        checkpoint(12),
        checkpoint(20),
        prefix_root=merkle.root(forked[:12]),
        proof=merkle.consistency_proof(forked, 12, 20),
    )
    with pytest.raises(InvalidInput, match="prefix evidence does not verify"):
        verify_fork_proof(lying, SERVICE.verifier)
    assert w.checkpoint is not None and w.checkpoint.size == 12
