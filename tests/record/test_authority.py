"""The record holds against its own operator (issue 13): an insider holding every key edits the demo's
export, re-signs what it changed, and ``ledger verify`` names what the signer had no right to say;
and each authority rule, as a table over :func:`deconflict.record.authority.check`."""

from __future__ import annotations

import copy
import gc
import json
import tracemalloc
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from support import insider
from support.paths import DOCS
from typer.testing import CliRunner

from deconflict.clock import iso, parse_utc
from deconflict.record import authority, chain, registration, rules, signing
from deconflict.record.authority import AuthorityState, Conflict

runner = CliRunner()
Docs = list[dict[str, Any]]


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> insider.Demo:
    """The scripted demo's record (checkpoints re-dated at its last entry) and every key the service holds."""
    return insider.demo_bundle(tmp_path_factory.mktemp("authority"))


_verify, _first, _forge, _entry = insider.verify, insider.first, insider.forge, insider.entry


def _insert_after(docs: Docs, index: int, doc: dict[str, Any]) -> None:
    doc.setdefault("at", docs[index]["at"])
    docs.insert(index + 1, doc)


# --- what was seen (issue 13), each re-signed with the demo's keys ------------------------------------


def _operator_acks_c2_for_il(header: dict[str, Any], docs: Docs, kid: Callable[[str], str]) -> None:
    i = _first(docs, "conflict.detected", id="C2")
    ack = _entry(
        "operator", "conflict.acknowledged", {"id": "C2", "party": "IL", "messages": ["M3"]}, "", kid("service")
    )
    _insert_after(docs, i + 3, {**ack, "at": docs[i + 3]["at"]})


def _system_notifies_for_tr(header: dict[str, Any], docs: Docs, kid: Callable[[str], str]) -> None:
    i = _first(docs, "activity.notified", kind="deployment")
    docs[i].update(actor="system", key_id=kid("service"))


def _tr_acks_for_il(header: dict[str, Any], docs: Docs, kid: Callable[[str], str]) -> None:
    i = _first(docs, "conflict.detected", id="C2")
    ack = _entry(
        "TR", "conflict.acknowledged", {"id": "C2", "party": "IL", "messages": ["M3"]}, docs[i]["at"], kid("TR")
    )
    _insert_after(docs, i, ack)


def _il_acks_c1_it_is_not_awaited_for(header: dict[str, Any], docs: Docs, kid: Callable[[str], str]) -> None:
    i = _first(docs, "conflict.detected", id="C1")
    ack = _entry("IL", "conflict.acknowledged", {"id": "C1", "party": "IL", "messages": []}, docs[i]["at"], kid("IL"))
    _insert_after(docs, i, ack)


def _il_rebound(header: dict[str, Any], docs: Docs, kid: Callable[[str], str]) -> None:
    member = {"id": "IL", "party": "TR", "role": "party", "name": "Israel", "language": "he"}
    _insert_after(docs, 4, _entry("operator", "member.added", member, docs[4]["at"], kid("service")))


def _second_declaration(header: dict[str, Any], docs: Docs, kid: Callable[[str], str]) -> None:
    again = copy.deepcopy(docs[0])
    again["at"] = docs[9]["at"]
    _insert_after(docs, 9, again)


def _tr_registers_a_key_for_il(header: dict[str, Any], docs: Docs, kid: Callable[[str], str]) -> None:
    new = signing.KeyPair.generate()
    payload = {"key_id": new.key_id, "owner": "IL", "public_key": new.public_key, "custody": "party"}
    i = _first(docs, "activity.notified", party="TR")
    _insert_after(docs, i, _entry("TR", "key.registered", payload, docs[i]["at"], kid("TR")))


def _operator_replaces_il_key(header: dict[str, Any], docs: Docs, kid: Callable[[str], str]) -> None:
    """While IL's key is in force, the operator registers another for IL (to sign as IL with it)."""
    new = signing.KeyPair.generate()
    payload = {"key_id": new.key_id, "owner": "IL", "public_key": new.public_key, "custody": "party"}
    i = _first(docs, "activity.notified", party="TR")
    _insert_after(docs, i, _entry("operator", "key.registered", payload, docs[i]["at"], kid("service")))


def _withheld_revocation(header: dict[str, Any], docs: Docs, kid: Callable[[str], str]) -> None:
    i = _first(docs, "conflict.acknowledged", party="TR") - 1
    revoke = _entry("operator", "key.revoked", {"key_id": kid("TR"), "reason": ""}, docs[i]["at"], kid("service"))
    revoke["payload_hash"] = chain.sha256_hex(chain.canonical(revoke.pop("payload")))
    revoke["withheld"] = True
    _insert_after(docs, i, revoke)


def _time_goes_back(header: dict[str, Any], docs: Docs, kid: Callable[[str], str]) -> None:
    i = _first(docs, "conflict.acknowledged", party="TR")
    docs[i]["at"] = iso(parse_utc(docs[i - 1]["at"], field="at") - timedelta(minutes=5))


def _operator_declares_a_zone_later(header: dict[str, Any], docs: Docs, kid: Callable[[str], str]) -> None:
    zone = copy.deepcopy(docs[_first(docs, "zone.declared")]["payload"])
    zone["id"] = "IL-RL-2"
    _insert_after(docs, 10, _entry("operator", "zone.declared", zone, docs[10]["at"], kid("service")))


def _system_resolves_as_accepted(header: dict[str, Any], docs: Docs, kid: Callable[[str], str]) -> None:
    i = _first(docs, "conflict.detected", id="C2")
    payload = {"id": "C2", "resolution": "accepted", "note": "", "messages": []}
    _insert_after(docs, i, _entry("system", "conflict.resolved", payload, docs[i]["at"], kid("service")))


def _system_speaks_for_tr_on_the_hotline(header: dict[str, Any], docs: Docs, kid: Callable[[str], str]) -> None:
    i = _first(docs, "message.sent", id="M2")
    docs[i]["payload"]["from_party"] = "TR"


FORGED: list[tuple[str, Callable[..., None], str]] = [
    ("operator acknowledges C2 for IL", _operator_acks_c2_for_il, "conflict.acknowledged may be written only by"),
    ("system notifies a deployment for TR", _system_notifies_for_tr, "activity.notified may be written only by"),
    ("TR's key acknowledges for IL", _tr_acks_for_il, "TR acts for TR but its conflict.acknowledged speaks for 'IL'"),
    ("IL acknowledges a conflict that awaits TR", _il_acks_c1_it_is_not_awaited_for, "conflict C1 awaits TR, not IL"),
    ("member IL re-bound to another party", _il_rebound, "adds member IL again"),
    ("a second mechanism.declared", _second_declaration, "a second mechanism.declared"),
    ("TR registers a key for IL", _tr_registers_a_key_for_il, "speaks for 'IL' (owner)"),
    ("the operator replaces IL's key in force", _operator_replaces_il_key, "which has a key in force"),
    ("a withheld revocation", _withheld_revocation, "withheld, but it binds keys or members"),
    ("an entry dated before the one before it", _time_goes_back, "entry times never go backwards"),
    ("the operator declares a zone after founding", _operator_declares_a_zone_later, "only in the founding block"),
    ("the service resolves a conflict as accepted", _system_resolves_as_accepted, "only automatic resolutions"),
    ("the service's message from TR", _system_speaks_for_tr_on_the_hotline, "from no party"),
]


@pytest.mark.parametrize(("case", "edit", "words"), FORGED, ids=[c[0] for c in FORGED])
def test_a_well_signed_entry_its_signer_had_no_right_to_write_is_named(
    demo: Any, tmp_path: Path, case: str, edit: Callable[..., None], words: str
) -> None:
    code, output = _verify(tmp_path, _forge(demo, edit))
    assert code == 1, output
    assert words in output, output
    assert "Traceback" not in output


def test_the_re_signed_demo_itself_verifies(demo: Any, tmp_path: Path) -> None:
    code, output = _verify(tmp_path, _forge(demo, lambda h, d, k: None))
    assert code == 3 and "entries verify" in output, output


# --- checkpoints and time ------------------------------------------------------------------------------


def _checkpoint(demo: Any, header: dict[str, Any], docs: Docs, seq: int, at: str) -> dict[str, Any]:
    service = insider.key_of(demo[2], header, "service")
    message = signing.checkpoint_message(mechanism=header["mechanism"], seq=seq, hash=docs[seq - 1]["hash"], at=at)
    return {"mechanism": header["mechanism"], "seq": seq, "hash": docs[seq - 1]["hash"], "at": at,
            "key_id": service.key_id, "signature": service.sign(message)}  # fmt: skip


def test_a_checkpoint_dated_before_the_entries_it_covers_is_refused(demo: Any, tmp_path: Path) -> None:
    header, docs = copy.deepcopy(demo[1])
    early = iso(parse_utc(docs[-1]["at"], field="at") - timedelta(minutes=1))
    header["checkpoints"] = [_checkpoint(demo, header, docs, len(docs), early)]
    code, output = _verify(tmp_path, (header, docs))
    assert code == 1 and "a checkpoint covers only entries made at or before its time" in output, output


def test_checkpoint_times_going_backwards_are_refused(demo: Any, tmp_path: Path) -> None:
    header, docs = copy.deepcopy(demo[1])
    last = parse_utc(docs[-1]["at"], field="at")
    header["checkpoints"] = [
        _checkpoint(demo, header, docs, len(docs), iso(last + timedelta(hours=1))),
        _checkpoint(demo, header, docs, len(docs), iso(last)),
    ]
    code, output = _verify(tmp_path, (header, docs))
    assert code == 1 and "checkpoint times never go backwards" in output, output
    # an earlier head signed later than the entries after it: those entries were backdated
    header["checkpoints"] = [_checkpoint(demo, header, docs, 20, iso(last + timedelta(hours=1)))]
    code, output = _verify(tmp_path, (header, docs))
    assert code == 1 and "before the checkpoint of entry 20" in output and "entry 21 is dated" in output, output


def test_a_rewritten_entry_is_named_without_contradiction(demo: Any, tmp_path: Path) -> None:
    """A checkpoint of entry 26 that the chain disagrees with: the wording names entry 26, nothing else."""
    header, docs = copy.deepcopy(demo[1])
    cp = _checkpoint(demo, header, docs, 26, docs[-1]["at"])
    cp["hash"] = "f" * 64
    service = insider.key_of(demo[2], header, "service")
    message = signing.checkpoint_message(mechanism=header["mechanism"], seq=26, hash=cp["hash"], at=cp["at"])
    cp["signature"] = service.sign(message)
    header["checkpoints"].append(cp)
    code, output = _verify(tmp_path, (header, docs))
    assert code == 1 and "entry 26 differs from the checkpoint" in output, output
    assert "good entries" not in output and "before it verify" not in output


# --- withheld entries and custody -------------------------------------------------------------------------


def _withhold(docs: Docs, indexes: list[int]) -> None:
    for i in indexes:
        docs[i].pop("payload")
        docs[i]["withheld"] = True


def test_a_members_copy_lists_what_it_withholds(demo: Any, tmp_path: Path) -> None:
    header, docs = copy.deepcopy(demo[1])
    messages = [i for i, d in enumerate(docs) if d["type"] == "message.sent"]
    chosen = [_first(docs, "activity.notified", party="IL"), *messages[:3]]
    _withhold(docs, chosen)
    code, output = _verify(tmp_path, (header, docs))
    assert code == 3, output
    numbers = sorted(i + 1 for i in chosen)
    assert "withheld (payload not in this copy" in output and str(numbers[0]) in output, output
    assert rules.NEVER_WITHHELD == {"mechanism.declared", "key.registered", "key.revoked", "member.added"}


@pytest.mark.parametrize("kind", ["mechanism.declared", "key.registered", "member.added"])
def test_a_copy_may_not_withhold_what_binds_keys_or_members(demo: Any, tmp_path: Path, kind: str) -> None:
    header, docs = copy.deepcopy(demo[1])
    if kind == "member.added":
        _il_rebound(header, docs, lambda o: insider.key_of(demo[2], header, o).key_id)
        header, docs = insider.reseal((header, docs), demo[2])
    i = _first(docs, kind)
    _withhold(docs, [i])
    code, output = _verify(tmp_path, (header, docs))
    assert code == 1 and f"entry {i + 1}: withheld, but it binds keys or members ({kind})" in output, output


def test_keys_the_party_holds_verify_with_exit_0(demo: Any, tmp_path: Path) -> None:
    def party_custody(header: dict[str, Any], docs: Docs, kid: Callable[[str], str]) -> None:
        for d in docs:
            if d["type"] == "key.registered":
                d["payload"]["custody"] = "party"
        for k in header["keys"]:
            if k["owner"] != "service":
                k["custody"] = "party"

    code, output = _verify(tmp_path, _forge(demo, party_custody))
    assert code == 0 and "CAUTION" not in output, output


def test_the_header_custody_must_match_the_record(demo: Any, tmp_path: Path) -> None:
    header, docs = copy.deepcopy(demo[1])
    for k in header["keys"]:
        k["custody"] = "party"
    code, output = _verify(tmp_path, (header, docs))
    assert code == 1 and "as held by 'party', but the record registered it" in output, output


# --- the authority table, rule by rule ---------------------------------------------------------------------

KEY = signing.KeyPair.from_seed(bytes(range(32)))
TR_KEY = signing.KeyPair.from_seed(bytes([1] * 32))
IL_KEY = signing.KeyPair.from_seed(bytes([2] * 32))
M = "tr-il-syria"


def _registration(owner: str, by: str | None, with_key: signing.KeyPair | None = None) -> dict[str, Any]:
    """A key.registered payload for KEY: its proof of possession, and an authorisation by ``with_key``."""
    message = registration.registration_message(mechanism=M, party=owner, public_key=KEY.public_key)
    p = {"key_id": KEY.key_id, "owner": owner, "public_key": KEY.public_key, "custody": "party"}
    p.update(possession=KEY.sign(message), authorised_by=by)
    if with_key is not None:
        p["authorisation"] = with_key.sign(message)
    return p


NEW = _registration("TR", TR_KEY.key_id, TR_KEY)
ZONE = {"id": "Z9", "owner": "TR"}


def _state() -> AuthorityState:
    s = AuthorityState(founding=False, mechanism=M)
    s.members = {"TR": ("TR", "party"), "IL": ("IL", "party"), "AZ": ("AZ", "facilitator"), "US": ("US", "observer")}
    s.keys = {
        "k-tr": ("TR", False, TR_KEY.public_key),
        TR_KEY.key_id: ("TR", False, TR_KEY.public_key),
        IL_KEY.key_id: ("IL", False, IL_KEY.public_key),
        "k-az": ("AZ", False, ""),
    }
    s.activities = {"TR-1": "TR"}
    s.zones = {"IL-Z": "IL"}
    s.conflicts = {"C1": Conflict(9, frozenset({"IL"})), "C2": Conflict(10, frozenset({"IL", "TR"}))}
    s.messages = {"M1": frozenset({"IL"})}
    return s


T = "activity.notified"
TABLE: list[tuple[str, str, dict[str, Any], str | None]] = [
    # mechanism.declared: entry 1 only (later: refused whoever writes it)
    ("mechanism.declared", "operator", {"members": []}, "a second mechanism.declared"),
    # key.registered: a member for its own party, authorised by its key in force; the operator only for a
    # party with no key in force; always with proof of possession, founding keys too
    ("key.registered", "TR", NEW, None),
    ("key.registered", "IL", NEW, "speaks for 'TR' (owner)"),
    ("key.registered", "operator", _registration("TR", "operator"), "which has a key in force"),
    ("key.registered", "operator", _registration("US", "operator"), None),
    ("key.registered", "operator", _registration("US", "founding"), "can only be 'operator'"),
    ("key.registered", "operator", {**_registration("US", "operator"), "possession": None}, "proof of possession"),
    (
        "key.registered",
        "operator",
        {**_registration("US", "operator"), "possession": NEW["authorisation"]},
        "proof of possession does not verify",
    ),
    ("key.registered", "TR", _registration("TR", IL_KEY.key_id, IL_KEY), "no key of TR in force"),
    ("key.registered", "TR", _registration("TR", TR_KEY.key_id, IL_KEY), "authorisation by key"),
    ("key.registered", "system", NEW, "may be written only by"),
    ("key.registered", "TR", {**NEW, "key_id": "ed25519:000000000000000000000000"}, "fingerprint"),
    ("key.registered", "operator", _registration("service", "operator"), "no party"),
    # key.revoked: the operator or the key's own party
    ("key.revoked", "operator", {"key_id": "k-tr"}, None),
    ("key.revoked", "TR", {"key_id": "k-tr"}, None),
    ("key.revoked", "IL", {"key_id": "k-tr"}, "revokes only its own keys"),
    ("key.revoked", "operator", {"key_id": "k-none"}, "never registered"),
    ("key.revoked", "system", {"key_id": "k-tr"}, "may be written only by"),
    # member.added: the operator, a new id only
    ("member.added", "operator", {"id": "TR-2", "party": "TR", "role": "party"}, None),
    ("member.added", "operator", {"id": "IL", "party": "TR", "role": "party"}, "adds member IL again"),
    ("member.added", "operator", {"id": "X", "party": "service", "role": "party"}, "not a party"),
    ("member.added", "TR", {"id": "TR-2", "party": "TR", "role": "party"}, "may be written only by"),
    # activities: a party's member, for its own party
    (T, "TR", {"id": "TR-2", "party": "TR"}, None),
    (T, "TR", {"id": "IL-2", "party": "IL"}, "speaks for 'IL' (party)"),
    (T, "system", {"id": "TR-2", "party": "TR"}, "may be written only by"),
    (T, "operator", {"id": "TR-2", "party": "TR"}, "may be written only by"),
    (T, "AZ", {"id": "AZ-1", "party": "AZ"}, "may be written only by"),
    (T, "IL", {"id": "TR-1", "party": "IL"}, "belongs to TR"),
    ("activity.amended", "TR", {"id": "TR-1", "party": "TR"}, None),
    ("activity.amended", "TR", {"id": "TR-9", "party": "TR"}, "never notified"),
    ("activity.cancelled", "IL", {"id": "TR-1", "party": "IL"}, "belongs to TR"),
    # zones: a party for itself; the operator in the founding block only
    ("zone.declared", "TR", ZONE, None),
    ("zone.declared", "IL", ZONE, "speaks for 'TR' (owner)"),
    ("zone.declared", "operator", ZONE, "only in the founding block"),
    ("zone.withdrawn", "IL", {"id": "IL-Z"}, None),
    ("zone.withdrawn", "TR", {"id": "IL-Z"}, "only its owner may"),
    # conflicts: detected by the service; acknowledged by a party it awaits; resolved as the rules say
    ("conflict.detected", "system", {"id": "C3", "awaiting": ["TR"]}, None),
    ("conflict.detected", "TR", {"id": "C3", "awaiting": ["TR"]}, "may be written only by the service"),
    ("conflict.detected", "system", {"id": "C1", "awaiting": ["TR"]}, "already detected"),
    ("conflict.acknowledged", "IL", {"id": "C1", "party": "IL"}, None),
    ("conflict.acknowledged", "TR", {"id": "C1", "party": "TR"}, "awaits IL, not TR"),
    ("conflict.acknowledged", "TR", {"id": "C1", "party": "IL"}, "speaks for 'IL' (party)"),
    ("conflict.acknowledged", "operator", {"id": "C1", "party": "IL"}, "may be written only by"),
    ("conflict.acknowledged", "system", {"id": "C1", "party": "IL"}, "may be written only by"),
    ("conflict.acknowledged", "IL", {"id": "C7", "party": "IL"}, "never detected"),
    ("conflict.resolved", "system", {"id": "C1", "resolution": "cancelled"}, None),
    ("conflict.resolved", "system", {"id": "C1", "resolution": "accepted"}, "only automatic resolutions"),
    ("conflict.resolved", "IL", {"id": "C1", "resolution": "accepted"}, None),
    ("conflict.resolved", "TR", {"id": "C1", "resolution": "accepted"}, "TR may not resolve it"),
    ("conflict.resolved", "AZ", {"id": "C1", "resolution": "escalated"}, None),
    ("conflict.resolved", "IL", {"id": "C1", "resolution": "cleared"}, "by hand only"),
    ("conflict.resolved", "operator", {"id": "C1", "resolution": "accepted"}, "may be written only by"),
    ("conflict.resolved", "US", {"id": "C1", "resolution": "accepted"}, "may be written only by"),
    # the hotline: the service in templates from no party; a member from its own party
    ("message.sent", "system", {"id": "M2", "to": ["IL"], "template": "line_check"}, None),
    ("message.sent", "system", {"id": "M2", "to": ["IL"], "template": None, "text": "hi"}, "agreed template"),
    ("message.sent", "system", {"id": "M2", "to": ["IL"], "template": "x", "from_party": "TR"}, "from no party"),
    ("message.sent", "TR", {"id": "M2", "to": ["IL"], "from_party": "TR"}, None),
    ("message.sent", "TR", {"id": "M2", "to": ["IL"], "from_party": "IL"}, "speaks for 'IL' (from_party)"),
    ("message.sent", "US", {"id": "M2", "to": ["IL"], "from_party": "US"}, "may be written only by"),
    ("message.sent", "operator", {"id": "M2", "to": ["IL"]}, "may be written only by"),
    (
        "message.sent",
        "TR",
        {"id": "M2", "to": ["IL"], "from_party": "TR", "settles": {"conflicts": ["C1"]}},
        "awaits IL",
    ),
    ("message.sent", "TR", {"id": "M1", "to": ["IL"], "from_party": "TR"}, "already sent"),
    ("message.acknowledged", "IL", {"id": "M1", "party": "IL"}, None),
    ("message.acknowledged", "TR", {"id": "M1", "party": "TR"}, "addressed to IL, not TR"),
    ("message.acknowledged", "TR", {"id": "M1", "party": "IL"}, "speaks for 'IL' (party)"),
    ("message.acknowledged", "system", {"id": "M1", "party": "IL"}, "may be written only by"),
    ("message.acknowledged", "US", {"id": "M1", "party": "US"}, "may be written only by"),
    ("message.escalated", "system", {"id": "M1"}, None),
    ("message.escalated", "operator", {"id": "M1"}, "may be written only by the service"),
    ("message.escalated", "TR", {"id": "M1"}, "may be written only by the service"),
    # anyone unknown, anything unknown
    ("activity.notified", "XX", {"id": "X-1", "party": "XX"}, "is not a member"),
    ("activity.teleported", "TR", {}, "unknown entry type"),
]


@pytest.mark.parametrize(("type", "actor", "payload", "words"), TABLE, ids=[f"{t} by {a}" for t, a, _, _ in TABLE])
def test_each_authority_rule(type: str, actor: str, payload: dict[str, Any], words: str | None) -> None:
    doc = {"seq": 40, "actor": actor, "type": type, "payload": payload}
    problem = authority.check(doc, _state())
    if words is None:
        assert problem is None
    else:
        assert problem is not None and words in problem, problem


def test_every_entry_type_has_a_rule_and_the_table_renders() -> None:
    assert set(rules.RULES) == set(chain.EntryType)
    table = rules.rules_table()
    assert all(f"`{t.value}`" in table for t in chain.EntryType)
    written = (DOCS / "record.md").read_text(encoding="utf-8")
    assert table.strip() in written, (
        "docs/record.md no longer shows the rules as the code holds them: paste rules_table()"
    )


def test_a_withheld_entry_is_checked_for_who_wrote_it_only() -> None:
    s = _state()
    assert authority.check({"seq": 40, "actor": "TR", "type": T}, s) is None
    assert "may be written only by" in (authority.check({"seq": 40, "actor": "system", "type": T}, s) or "")
    authority.apply({"seq": 40, "actor": "TR", "type": T}, s)
    assert s.withheld  # from now on, a reference to an unseen conflict may be to a withheld one
    assert authority.check({"seq": 41, "actor": "IL", "type": "conflict.acknowledged",
                            "payload": {"id": "C7", "party": "IL"}}, s) is None  # fmt: skip


def test_a_founding_key_needs_its_proof_of_possession_too(tmp_path: Path) -> None:
    """A bare public key in the founding declaration could be one nobody holds, or the operator's own."""
    s = _state()
    s.founding = True
    s.keys = {}
    bare = {**_registration("US", "founding"), "possession": None}
    doc = {"seq": 3, "actor": "operator", "type": "key.registered", "payload": bare}
    assert "without proof of possession" in (authority.check(doc, s) or "")
    assert authority.check({**doc, "payload": _registration("US", "founding")}, s) is None

    from support.builders import syria

    from deconflict.errors import InvalidInput
    from deconflict.service import Service
    from deconflict.store import open_store

    svc = Service(open_store(str(tmp_path / "bare.db")))
    with pytest.raises(InvalidInput, match="the key of TR comes without its proof of possession"):
        svc.declare_mechanism(mechanism=syria(), keys={"TR": TR_KEY.public_key}, demo_custody=True)
    assert svc.entries_after(M, 0, limit=10) == []


# --- what the rules' state costs as the record grows ------------------------------------------------------


def _applied(s: AuthorityState, seq: int, actor: str, type: str, payload: dict[str, Any]) -> None:
    """One entry through the rules, its payload read from its canonical JSON as the service reads it (each
    entry's strings its own objects)."""
    doc = {"mechanism": M, "seq": seq, "actor": actor, "type": type, "payload": payload}
    doc["payload"] = json.loads(chain.canonical(payload))
    assert authority.check(doc, s) is None
    authority.apply(doc, s)


def test_a_long_record_keeps_one_set_of_parties_for_equal_sets(monkeypatch: pytest.MonkeyPatch) -> None:
    """A service holds the rules' state for as long as it runs: a set of parties for each message and conflict.
    Equal sets are one object, and acknowledgements still count per party. Names no party has (too long) are
    kept on their own, never interned."""
    monkeypatch.setattr(authority, "_PARTY_SETS", {})  # whatever earlier tests left in the shared, bounded cache
    long = "X" * (authority.SHARED_NAME + 1)
    assert authority.parties([long]) is not authority.parties([long]) and authority._PARTY_SETS == {}
    s = _state()
    for n in range(2, 6):
        _applied(s, 40 + n, "TR", "message.sent", {"id": f"M{n}", "to": ["IL"], "from_party": "TR"})
    _applied(s, 50, "system", "conflict.detected", {"id": "C3", "awaiting": ["TR", "IL"]})
    _applied(s, 51, "system", "conflict.detected", {"id": "C4", "awaiting": ["IL", "TR"]})
    assert len({id(s.messages[f"M{n}"]) for n in range(2, 6)}) == 1
    assert s.messages["M5"] == frozenset({"IL"})
    assert s.conflicts["C3"].awaiting is s.conflicts["C4"].awaiting
    _applied(s, 52, "IL", "conflict.acknowledged", {"id": "C3", "party": "IL"})
    assert s.conflicts["C3"].acknowledged == frozenset({"IL"}) and not s.conflicts["C4"].acknowledged
    problem = authority.check(
        {"mechanism": M, "seq": 53, "actor": "IL", "type": "conflict.acknowledged",
         "payload": {"id": "C3", "party": "IL"}}, s)  # fmt: skip
    assert "already acknowledged" in (problem or "")
    _applied(s, 53, "TR", "message.sent",
             {"id": "M6", "to": ["IL"], "from_party": "TR", "settles": {"conflicts": ["C3"]}})  # fmt: skip
    assert s.conflicts["C3"].acknowledged == frozenset({"IL", "TR"})


def test_the_rules_state_grows_by_little_more_than_each_message_id(monkeypatch: pytest.MonkeyPatch) -> None:
    """Measured with tracemalloc over 3,000 messages read as the service reads them: about 90 bytes a message
    (its id and its place in the map); with a set of its own for each message's addressees it was over 300."""
    monkeypatch.setattr(authority, "_PARTY_SETS", {})
    s = _state()
    texts = [chain.canonical({"id": f"M{n}", "to": ["IL"], "from_party": "TR"}) for n in range(2, 3002)]
    gc.collect()
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        for seq, text in enumerate(texts, start=40):
            authority.apply({"mechanism": M, "seq": seq, "actor": "TR", "type": "message.sent",
                             "payload": json.loads(text)}, s)  # fmt: skip
        gc.collect()
        grown = tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()
    assert len(s.messages) == 3001
    assert grown / len(texts) < 160, f"{grown / len(texts):.0f} bytes a message"
