"""A withheld entry cannot be read by guessing what it says (record/salt.py), over HTTP on a live server.

Under ``conflicts-only`` Israel's copy of the record withholds Türkiye's notice far from anything of
Israel's, Türkiye's standard phrase to the facilitator and the facilitator's acknowledgement, and keeps
their hashes. Without a salt the phrase's hash was found by trying every phrase, reference and addressee
(a hostile party's test did it in 9 s); here Israel is handed the very payload, less its salt, and it
still does not hash to what its copy holds. Türkiye signs its own entries with the Python client, so the
salt travels in the entry it prepares and signs. The record written this way verifies, its recomputation
of the service's entries included, and the service's views never show a salt."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from support.builders import HAMA, T4, A, M, declared_db, offset, position, syria, vol
from support.live import LiveServer, auth, start_server
from typer.testing import CliRunner

from deconflict.cli import app
from deconflict.cli.record import write_bundle
from deconflict.client import Client
from deconflict.clock import FixedClock, iso
from deconflict.model import Disclosure
from deconflict.record import authority, salt, signing
from deconflict.record.chain import canonical, sha256_hex

T = salt.SALTED_SINCE + timedelta(hours=13)
"""After the rule date: every entry a copy may withhold carries a salt."""
SALTED = ("activity.notified", "message.sent", "message.acknowledged")


@pytest.fixture(scope="module")
def scene(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[LiveServer, str, dict[str, Any]]]:
    clock = FixedClock(T)
    tr_key = signing.KeyPair.generate()
    db = declared_db(
        tmp_path_factory.mktemp("salt") / "salt.db",
        clock,
        mechanism=syria(disclosure=Disclosure.CONFLICTS_ONLY),
        keys={"TR": tr_key},
    )
    server = start_server(db, clock)
    tok = server.tokens()
    tr = Client(server.url, tok["TR"], key=tr_key)
    notice = tr.notify(kind="uav_patrol", volumes=[vol(HAMA, T, start_h=6)])
    ref = {"ref": notice["activity"]["id"]}
    tr.send_message(template="holding", params=ref, to=["AZ"])
    incident = {"place": "T4", "t1": "10:00", "party": "TR"}
    sent = tr.send_message(template="incident_at", params=incident, to=["AZ"])  # one the facilitator acknowledges
    clock.advance(seconds=30)
    with httpx.Client(base_url=server.url, timeout=10) as c:
        acked = c.post(f"{A}/messages/{sent['id']}/acknowledge", headers=auth(tok["AZ"]))
        assert acked.status_code == 200, acked.text
        # a Turkish UAV and an Israeli aircraft converging west and east of T4: a tactical conflict
        for party, tid, bearing, course in (("TR", "UAV-1", 270, 90), ("IL", "F16-2", 90, 270)):
            at = offset(T4, bearing, 30_000)
            server.service.report_tracks(mechanism_id=M, actor=party, reports=[position(tid, clock(), at, course)])
        copies = {who: c.get(f"{A}/record", headers=auth(tok[who])).json()["entries"] for who in ("TR", "IL", "AZ")}
        views = {
            route: c.get(f"{A}/{route}", headers=auth(tok["TR"])).json()
            for route in ("activities", "messages", "conflicts")
        }
        # the state rebuilt from the record's entries, as the time bar and `deconflict replay` read it
        views["replay"] = c.get(f"{A}/replay", params={"at": iso(clock())}, headers=auth(tok["TR"])).json()
    yield server, db, {"copies": copies, "views": views, "tr": tr}
    tr.http.close()
    server.stop()


def _of(entries: list[dict[str, Any]], kind: str) -> list[dict[str, Any]]:
    return [e for e in entries if e["type"] == kind and e["seq"] > 1]


def test_each_entry_a_copy_may_withhold_carries_its_own_salt(scene: Any) -> None:
    whole = scene[2]["copies"]["AZ"]  # the facilitator sees the phrase and its acknowledgement
    seen = {kind: _of(whole, kind) for kind in ("message.sent", "message.acknowledged")}
    seen["activity.notified"] = _of(scene[2]["copies"]["TR"], "activity.notified")
    seen["conflict.detected"] = _of(whole, "conflict.detected")
    assert "tracks" in {e["payload"]["kind"] for e in seen["conflict.detected"]}
    salts = []
    for kind in seen:
        assert seen[kind], kind
        for e in seen[kind]:
            p = e["payload"]
            assert salt.problem(kind, e["at"], p) is None and len(p["salt"]) == 22, e
            assert sha256_hex(canonical(p)) == e["payload_hash"]
            salts.append(p["salt"])
    assert len(set(salts)) == len(salts)
    # what binds keys and members is never withheld, so it carries none
    assert all("salt" not in e["payload"] for e in whole if e["type"] in ("mechanism.declared", "key.registered"))


def test_the_very_payload_without_its_salt_does_not_find_a_withheld_hash(scene: Any) -> None:
    copies = scene[2]["copies"]
    whole = {e["seq"]: e for e in copies["AZ"] + copies["TR"] if "payload" in e}
    withheld = [e for e in copies["IL"] if "payload" not in e]
    # Türkiye's notice and its two phrases to the facilitator among them (and what concerns Türkiye alone)
    by_tr = [e["type"] for e in withheld if e["actor"] == "TR"]
    assert by_tr == ["activity.notified", "message.sent", "message.sent"], withheld
    for e in withheld:
        truth = whole[e["seq"]]
        assert e["payload_hash"] == truth["payload_hash"]
        guessed = salt.without(truth["payload"])
        assert guessed != truth["payload"]
        assert sha256_hex(canonical(guessed)) != e["payload_hash"], f"entry {e['seq']} read by guessing"


def test_the_services_views_show_no_salt(scene: Any) -> None:
    views = scene[2]["views"]
    assert views["activities"] and views["messages"] and views["replay"]["messages"]
    assert '"salt"' not in json.dumps(views)
    message = next(e for e in scene[2]["copies"]["TR"] if e["type"] == "message.sent" and "payload" in e)
    assert "salt" in message["payload"] and "salt" not in message["message"]


def test_the_salted_record_verifies_with_its_recomputation(scene: Any, tmp_path: Path) -> None:
    service = scene[0].service  # exported as `ledger export` does, on the scene's clock
    service.checkpoint(M)
    out = tmp_path / "record.jsonl"
    write_bundle(service, M, out)
    result = CliRunner().invoke(app, ["ledger", "verify", str(out)])
    # 3: it verifies, and says the service holds Israel's and the facilitator's keys (demo custody)
    assert result.exit_code == 3, result.output
    assert "the service's own entries: " in result.output and "DOES NOT HOLD" not in result.output, result.output


def test_the_rules_name_an_entry_without_a_salt_from_the_rule_date() -> None:
    state = authority.AuthorityState()
    declared = {"seq": 1, "actor": "operator", "type": "mechanism.declared", "payload": {"members": []}}
    authority.apply(declared, state)
    state.members["az-duty"] = ("AZ", "facilitator")
    sent = {"id": "M1", "template": "line_check", "to": ["AZ"]}

    def problem(at: datetime | str, payload: dict[str, Any]) -> str | None:
        return authority.check(
            {"seq": 9, "at": at, "actor": "system", "type": "message.sent", "payload": payload}, state
        )

    before = salt.SALTED_SINCE - timedelta(seconds=1)
    assert problem(before, sent) is None
    assert "no salt in its payload" in str(problem(salt.SALTED_SINCE, sent))
    assert "no salt in its payload" in str(problem(salt.SALTED_SINCE.isoformat().replace("+00:00", "Z"), sent))
    assert "not 128 bits" in str(problem(T, {**sent, "salt": "A" * 21 + "B"}))
    assert "not 128 bits" in str(problem(T, {**sent, "salt": 12}))
    assert problem(T, {**sent, "salt": "A" * 22}) is None
    assert datetime(2026, 12, 6, tzinfo=UTC) < salt.SALTED_SINCE


def test_a_number_written_again_after_a_restore_gets_a_salt_of_its_own(tmp_path: Path) -> None:
    """A restore (or a failover to a copy that lacked the last entries) writes the numbers after its head
    again. Israel read Türkiye's phrase to it at a number before; the phrase Türkiye sends the facilitator at
    that number after the restore, by the same actor, of the same type, after the same entry, does not reuse
    its salt (a hostile party's test read hidden payloads with the salts it had kept)."""
    import shutil

    from deconflict.service import Service
    from deconflict.store import open_store

    clock = FixedClock(T)
    first = declared_db(tmp_path / "first.db", clock, mechanism=syria(disclosure=Disclosure.CONFLICTS_ONLY))
    svc = Service(open_store(first), clock=clock)
    svc.notify(mechanism_id=M, actor="TR", kind="uav_patrol", volumes=[vol(HAMA, T, start_h=6)])
    svc.store.close()
    restored = str(shutil.copy(first, tmp_path / "restored.db"))  # the backup taken then
    sent = {}
    for db, to, later in ((first, "IL", 60), (restored, "AZ", 600)):
        clock = FixedClock(T + timedelta(seconds=later))
        svc = Service(open_store(db), clock=clock)
        out = svc.send_message(mechanism_id=M, actor="TR", template="holding", params={"ref": "TR-0001"}, to=[to])
        (sent[to],) = svc.entries_after(M, out["seq"] - 1, limit=1)
        svc.store.close()
    seen, hidden = sent["IL"], sent["AZ"]
    assert (seen["seq"], seen["prev_hash"], seen["actor"]) == (hidden["seq"], hidden["prev_hash"], hidden["actor"])
    assert seen["payload"]["salt"] != hidden["payload"]["salt"]
    guessed = {**salt.without(hidden["payload"]), "salt": seen["payload"]["salt"]}
    assert sha256_hex(canonical(guessed)) != hidden["payload_hash"]
