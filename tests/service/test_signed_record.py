"""Signing on the party's side, checkpoints, and replay at any instant (service and HTTP, real SQLite)."""

from __future__ import annotations

from datetime import datetime
from functools import partial
from pathlib import Path
from typing import Any

import httpx
import pytest
from support import builders
from support.builders import HAMA, PALMYRA, T4, M, declared_db, zone
from support.live import LiveServer, SSEReader, auth, next_events_of, start_server

from deconflict.client import Client, ClientError
from deconflict.clock import FixedClock, iso, parse_utc
from deconflict.errors import Forbidden, StaleVersion
from deconflict.record import signing
from deconflict.record.chain import canonical, entry_hash, sha256_hex
from deconflict.service import Prepared, Service, SignatureMode, Signed
from deconflict.store import open_store, replay

vol = partial(builders.vol, start_h=3)
"""This module's volumes open 3 h after T0."""


@pytest.fixture
def tr_key() -> signing.KeyPair:
    return signing.KeyPair.generate()


@pytest.fixture
def party_keys(tr_key: signing.KeyPair) -> dict[str, signing.KeyPair]:
    """Türkiye holds its own key; the service holds the others' (demo custody)."""
    return {"TR": tr_key}


def head(svc: Service) -> int:
    return svc.verify(M).head_seq


def prepare(svc: Service, **kwargs: Any) -> dict[str, Any]:
    with pytest.raises(Prepared) as got:
        svc.notify(mechanism_id=M, actor="TR", kind="uav_patrol", **kwargs, mode=SignatureMode(prepare=True))
    return got.value.entry


def test_the_record_names_each_key_and_who_holds_it(svc: Service, tr_key: signing.KeyPair) -> None:
    keys = {k["owner"]: k for k in svc.keys(M)}
    assert keys["TR"]["key_id"] == tr_key.key_id and keys["TR"]["custody"] == "party"
    assert keys["IL"]["custody"] == "service (demo only)"
    assert keys["service"]["key_id"] == svc.service_key.key_id


def test_a_party_holding_its_key_must_sign(svc: Service) -> None:
    before = head(svc)
    with pytest.raises(Forbidden, match="party TR signs its own entries"):
        svc.notify(mechanism_id=M, actor="TR", kind="uav_patrol", volumes=[vol()])
    assert head(svc) == before


def test_a_facilitator_holding_its_key_is_told_so_as_a_facilitator(tmp_path: Path, clock: FixedClock) -> None:
    """The refusal names the member as it is: Azerbaijan facilitates, it is no party."""
    svc = builders.declared_service(tmp_path / "az.db", clock, keys={"AZ": signing.KeyPair.generate()})
    svc.notify(mechanism_id=M, actor="IL", kind="air_sortie", volumes=[vol()])
    conflict = svc.notify(mechanism_id=M, actor="TR", kind="uav_patrol", volumes=[vol()]).raised[0]["id"]
    with pytest.raises(Forbidden, match=r"^AZ \(facilitator\) signs its own entries") as refused:
        svc.resolve_conflict(mechanism_id=M, actor="AZ", conflict_id=conflict, resolution="escalated")
    assert refused.value.field == "key"


def test_prepare_writes_nothing_and_a_signed_commit_appends_exactly_that_entry(
    svc: Service, tr_key: signing.KeyPair
) -> None:
    before = head(svc)
    entry = prepare(svc, volumes=[vol()])
    assert head(svc) == before and entry["seq"] == before + 1 and entry["actor"] == "TR"
    signed = Signed(
        at=datetime.fromisoformat(entry["at"]),
        entry_hash=entry["hash"],
        key_id=tr_key.key_id,
        signature=tr_key.sign_entry(entry["hash"]),
    )
    out = svc.notify(mechanism_id=M, actor="TR", kind="uav_patrol", volumes=[vol()], mode=SignatureMode(signed=signed))
    stored = svc.entries_after(M, before, limit=1)[0]
    assert stored["hash"] == entry["hash"] and stored["key_id"] == tr_key.key_id
    assert out.activity is not None and out.activity.id == entry["payload"]["id"]
    assert svc.verify(M).ok


def test_a_commit_after_the_record_moved_on_is_refused(svc: Service, tr_key: signing.KeyPair) -> None:
    entry = prepare(svc, volumes=[vol()])
    svc.notify(mechanism_id=M, actor="IL", kind="air_sortie", volumes=[vol(PALMYRA)])
    before = head(svc)
    signed = Signed(datetime.fromisoformat(entry["at"]), entry["hash"], tr_key.key_id, tr_key.sign_entry(entry["hash"]))
    with pytest.raises(StaleVersion, match="prepare and sign again"):
        svc.notify(mechanism_id=M, actor="TR", kind="uav_patrol", volumes=[vol()], mode=SignatureMode(signed=signed))
    assert head(svc) == before


def test_another_key_or_a_changed_request_is_refused(svc: Service, tr_key: signing.KeyPair) -> None:
    entry = prepare(svc, volumes=[vol()])
    at = datetime.fromisoformat(entry["at"])
    il_key = next(k for k in svc.keys(M) if k["owner"] == "IL")["key_id"]
    forged = Signed(at, entry["hash"], il_key, tr_key.sign_entry(entry["hash"]))
    with pytest.raises(Forbidden, match="belongs to IL, not to TR"):
        svc.notify(mechanism_id=M, actor="TR", kind="uav_patrol", volumes=[vol()], mode=SignatureMode(signed=forged))
    good = Signed(at, entry["hash"], tr_key.key_id, tr_key.sign_entry(entry["hash"]))
    with pytest.raises(StaleVersion):
        # the operator changes the volume
        svc.notify(
            mechanism_id=M, actor="TR", kind="uav_patrol", volumes=[vol(start_h=4)], mode=SignatureMode(signed=good)
        )
    bad = Signed(at, entry["hash"], tr_key.key_id, signing.KeyPair.generate().sign_entry(entry["hash"]))
    with pytest.raises(Forbidden, match="does not verify"):
        svc.notify(mechanism_id=M, actor="TR", kind="uav_patrol", volumes=[vol()], mode=SignatureMode(signed=bad))
    assert svc.activities(M) == []


def test_a_prepared_entry_expires(svc: Service, clock: FixedClock, tr_key: signing.KeyPair) -> None:
    entry = prepare(svc, volumes=[vol()])
    clock.advance(seconds=121)
    signed = Signed(datetime.fromisoformat(entry["at"]), entry["hash"], tr_key.key_id, tr_key.sign_entry(entry["hash"]))
    with pytest.raises(StaleVersion, match="more than 120 s old"):
        svc.notify(mechanism_id=M, actor="TR", kind="uav_patrol", volumes=[vol()], mode=SignatureMode(signed=signed))


def test_checkpoints_are_signed_at_intervals_and_only_when_the_chain_grew(svc: Service, clock: FixedClock) -> None:
    svc.checkpoint_interval_s = 0
    svc.tick()
    first = svc.checkpoints(M)
    assert len(first) == 1 and first[0]["seq"] == head(svc)
    svc.tick()
    assert svc.checkpoints(M) == first  # nothing new to sign
    svc.notify(mechanism_id=M, actor="IL", kind="air_sortie", volumes=[vol(PALMYRA)])
    svc.tick()
    second = svc.checkpoints(M)[-1]
    message = signing.checkpoint_message(mechanism=M, seq=second["seq"], hash=second["hash"], at=second["at"])
    assert second["seq"] == head(svc) and signing.verify(svc.service_key.public_key, message, second["signature"])


# --- replay ---------------------------------------------------------------------------------------


def scripted_day(svc: Service, clock: FixedClock, tr: signing.KeyPair) -> dict[datetime, dict[str, Any]]:
    """A day of the mechanism, minute by minute; the live state is snapshotted at chosen instants."""
    tr_client_notify = _signed_notifier(svc, tr)
    snapshots: dict[datetime, dict[str, Any]] = {}

    def snap() -> None:
        with svc.store.read() as s:
            snapshots[clock()] = replay.state(s, M)

    snap()  # the declared mechanism
    clock.advance(seconds=600)
    svc.notify(mechanism_id=M, actor="IL", kind="air_sortie", volumes=[vol(T4, start_h=5)])
    clock.advance(seconds=60)
    tr_client_notify(volumes=[vol(T4, start_h=5)])  # conflict + alert to IL
    snap()
    for _ in range(30):  # the alert goes unanswered; the ladder climbs
        clock.advance(seconds=60)
        svc.tick()
    snap()
    clock.advance(seconds=1)  # the state at an instant includes what happened at that instant
    svc.acknowledge_conflict(mechanism_id=M, actor="IL", conflict_id="C1")  # settles its alert too
    clock.advance(seconds=1)
    snap()
    clock.advance(seconds=3600)
    svc.tick()  # line checks
    svc.amend(mechanism_id=M, actor="IL", activity_id="IL-0001", seen_version=1, volumes=[vol(PALMYRA, start_h=6)])
    hama = zone("z-hama", "restricted", ["uav_patrol"], HAMA, 15000, valid_from=clock())
    svc.declare_zone(mechanism_id=M, actor="IL", zone=hama)
    snap()
    clock.advance(seconds=7200)
    svc.tick()
    snap()
    return snapshots


def _signed_notifier(svc: Service, key: signing.KeyPair) -> Any:
    def notify(**kwargs: Any) -> None:
        with pytest.raises(Prepared) as got:
            svc.notify(mechanism_id=M, actor="TR", kind="uav_patrol", **kwargs, mode=SignatureMode(prepare=True))
        e = got.value.entry
        signed = Signed(datetime.fromisoformat(e["at"]), e["hash"], key.key_id, key.sign_entry(e["hash"]))
        svc.notify(mechanism_id=M, actor="TR", kind="uav_patrol", **kwargs, mode=SignatureMode(signed=signed))

    return notify


def test_replay_at_each_instant_equals_the_live_state_then(
    svc: Service, clock: FixedClock, tr_key: signing.KeyPair
) -> None:
    snapshots = scripted_day(svc, clock, tr_key)
    assert len(snapshots) == 6
    distinct = {repr(s) for s in snapshots.values()}
    assert len(distinct) == 6  # every instant shows something new
    for at, live in snapshots.items():
        replayed = svc.replay(M, at)
        body = {k: replayed[k] for k in replay.TABLES}
        assert body == live, at
    # the escalation steps are in the snapshot taken after the climb
    climbed = list(snapshots.values())[2]
    assert max(m["steps"] for m in climbed["messages"]) >= 2


# --- over HTTP ------------------------------------------------------------------------------------


def test_the_python_client_signs_on_the_partys_side(live: LiveServer, tr_key: signing.KeyPair) -> None:
    token = live.service.issue_token(mechanism_id=M, member_id="TR")
    unsigned = Client(live.url, token)
    with pytest.raises(ClientError, match="signs its own entries"):
        unsigned.notify(kind="uav_patrol", volumes=[vol()])
    client = Client(live.url, token, key=tr_key)
    out = client.notify(kind="uav_patrol", volumes=[vol()])
    assert out["activity"]["id"] == "TR-0001"
    entry = live.service.entries_after(M, out["seq"] - 1, limit=1)[0]
    assert entry["key_id"] == tr_key.key_id and entry["actor"] == "TR"
    assert live.service.verify(M).ok
    wrong = Client(live.url, token, key=signing.KeyPair.generate())
    with pytest.raises(ClientError, match="is not registered"):
        wrong.notify(kind="uav_patrol", volumes=[vol(start_h=8)])


class _Forging(httpx.BaseTransport):
    """The real server behind, with what a service bent on it would change in a prepared answer: ``mutate``
    changes the payload, and its hash and the entry's are made to agree again."""

    def __init__(self, mutate: Any) -> None:
        self.inner, self.mutate = httpx.HTTPTransport(), mutate

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        response = self.inner.handle_request(request)
        if request.headers.get("Deconflict-Prepare") != "true" or response.status_code != 200:
            return response
        response.read()
        doc = response.json()
        e = doc["prepared"]
        self.mutate(e["payload"])
        e["payload_hash"] = sha256_hex(canonical(e["payload"]))
        e["hash"] = entry_hash(
            mechanism=e["mechanism"], seq=e["seq"], at=parse_utc(e["at"], field="at"), actor=e["actor"],
            type=e["type"], payload_hash=e["payload_hash"], prev_hash=e["prev_hash"],
        )  # fmt: skip
        doc["canonical_payload"] = canonical(e["payload"]).decode()
        return httpx.Response(200, json=doc)


def test_the_python_client_signs_nothing_but_what_it_asked_for(live: LiveServer, tr_key: signing.KeyPair) -> None:
    """A prepared message with other words, recipients or parameters, a notice moved, a resolution turned
    into another: the client refuses to sign each, though every hash agrees; what was asked it signs."""
    token = live.service.issue_token(mechanism_id=M, member_id="TR")
    client = Client(live.url, token, key=tr_key)
    live.service.notify(mechanism_id=M, actor="IL", kind="air_sortie", volumes=[builders.vol(HAMA)])  # IL-0001
    cases: list[tuple[Any, Any]] = [
        (lambda p: p.update(text="ALL CLEAR, proceed"), lambda c: c.send_message(text="hold", lang="en", to=["IL"])),
        (lambda p: p.update(to=["AZ", "IL"]), lambda c: c.send_message(text="hold", lang="en", to=["IL"])),
        (
            lambda p: p["params"].update(t1="2025-04-09T09:00"),
            lambda c: c.send_message(
                template="query_activity", to=["IL"],
                params={"ref": "IL-0001", "t1": "2025-04-09T07:00:00Z", "t2": "2025-04-09T08:00:00+00:00"},
            ),
        ),
        (
            lambda p: p["volumes"][0]["geometry"].update(coordinates=[36.0, 33.5]),
            lambda c: c.notify(kind="uav_patrol", volumes=[vol()]),
        ),
        # a free text made an acknowledgement, or given a subject it did not name
        (
            lambda p: p.update(template="holding", params={"ref": "C1"}, settles={"conflicts": ["C1"], "messages": []}),
            lambda c: c.send_message(text="checking", lang="en", to=["IL"]),
        ),
        (
            lambda p: p.update(about={"kind": "activity", "id": "IL-0001"}),
            lambda c: c.send_message(text="checking", lang="en", to=["IL"]),
        ),
        # a phrase that acknowledges, made to acknowledge another conflict than the one its ref names
        (
            lambda p: p.update(settles={"conflicts": ["C9"], "messages": ["M9"]}),
            lambda c: c.send_message(template="holding", params={"ref": "TR-0001"}, to=["IL"]),
        ),
    ]  # fmt: skip
    for mutate, write in cases:
        forged = Client(live.url, token, key=tr_key)
        forged.http = httpx.Client(
            base_url=client.http.base_url, headers=client.http.headers, transport=_Forging(mutate), timeout=15
        )
        before = head(live.service)
        with pytest.raises(ClientError, match="with other contents than the request's"):
            write(forged)
        assert head(live.service) == before
    # the same requests, unchanged, are signed and recorded; a title with spaces around it (kept trimmed) too
    for _, write in cases:
        write(client)
    assert (
        client.notify(kind="uav_patrol", volumes=[vol(start_h=6)], title=" Devriye 7 ")["activity"]["title"]
        == "Devriye 7"
    )
    # a position with GeoJSON's altitude, a polygon with a radius of 0: the service stores them in two
    # dimensions and without the radius, and that is what was asked
    lifted = {**vol(start_h=7), "geometry": {"type": "Point", "coordinates": [37.6298, 34.5226, 1500.0]}}
    ring = [[37.5, 34.4, 0], [37.8, 34.4, 0], [37.8, 34.7, 0], [37.5, 34.4, 0]]
    flat = {**vol(start_h=8), "geometry": {"type": "Polygon", "coordinates": [ring], "bbox": [37.5, 34.4, 37.8, 34.7]}}
    flat["radius_m"] = 0
    for v in (lifted, flat):
        assert client.notify(kind="uav_patrol", volumes=[v])["activity"]["party"] == "TR"
    assert live.service.verify(M).ok


def test_the_phrases_that_acknowledge_are_the_same_to_the_service_the_client_and_the_page() -> None:
    """The service and the client share one list (``hotline.messages.ACK_PHRASES``); the page has its copy."""
    import re

    from deconflict.hotline import messages

    page = Path(messages.__file__).parents[1] / "web" / "js" / "signing.js"
    listed = re.search(r"const ACK_PHRASES = \[([^\]]*)\]", page.read_text(encoding="utf-8"))
    assert listed is not None
    assert messages.ACK_PHRASES == frozenset(re.findall(r"'(\w+)'", listed.group(1)))


def test_an_alert_acknowledged_by_its_message_signs_its_conflicts_acknowledgement(
    live: LiveServer, tr_key: signing.KeyPair
) -> None:
    """``deconflict hotline ack M…`` on a conflict's alert: the service appends the conflict's acknowledgement
    naming the alert, and the client signs that (it refused it as not a message's acknowledgement)."""
    tokens = {p: live.service.issue_token(mechanism_id=M, member_id=p) for p in ("TR", "IL")}
    tr = Client(live.url, tokens["TR"], key=tr_key)
    tr.notify(kind="uav_patrol", volumes=[vol()])
    conflict = Client(live.url, tokens["IL"]).notify(kind="air_sortie", volumes=[vol()])["raised"][0]["id"]
    alert = next(
        m["id"] for m in tr.http.get(f"/mechanisms/{M}/messages").json() if m["type"] == "alert" and "TR" in m["to"]
    )
    tr.acknowledge_message(alert)
    acked = [e for e in live.service.entries_after(M, 0, limit=100) if e["type"] == "conflict.acknowledged"]
    assert [(e["actor"], e["payload"]["id"], e["key_id"]) for e in acked] == [("TR", conflict, tr_key.key_id)]
    assert alert in acked[0]["payload"]["messages"]


def test_replay_route_shows_what_the_caller_could_see_then(live: LiveServer, clock: FixedClock) -> None:
    svc: Service = live.service
    tokens = {m: svc.issue_token(mechanism_id=M, member_id=m) for m in ("IL", "AZ")}
    before = clock()
    clock.advance(seconds=60)
    svc.notify(mechanism_id=M, actor="IL", kind="air_sortie", volumes=[vol()])
    with httpx.Client(base_url=live.url + "/api/v1") as http:
        then = http.get(f"/mechanisms/{M}/replay", params={"at": iso(before)}, headers=auth(tokens["IL"])).json()
        now = http.get(f"/mechanisms/{M}/replay", params={"at": iso(clock())}, headers=auth(tokens["IL"])).json()
        assert then["activities"] == [] and [a["id"] for a in now["activities"]] == ["IL-0001"]
        assert now["activities"][0]["history"][0]["version"] == 1
        bad = http.get(f"/mechanisms/{M}/replay", params={"at": "yesterday"}, headers=auth(tokens["IL"]))
        assert bad.status_code == 422 and bad.json()["field"] == "at"
        keys = http.get(f"/mechanisms/{M}/keys", headers=auth(tokens["AZ"])).json()["keys"]
        assert {k["owner"] for k in keys} >= {"TR", "IL", "service"}


def test_the_stream_carries_signed_checkpoints(live: LiveServer) -> None:
    svc: Service = live.service
    token = svc.issue_token(mechanism_id=M, member_id="AZ")
    svc.checkpoint(M)
    with httpx.Client() as http:
        reader = SSEReader(http, f"{live.url}/api/v1/mechanisms/{M}/events?after={head(svc)}", auth(token))
        try:
            _, event, first = reader.next_event()
            assert event == "checkpoint" and first["seq"] == head(svc)
            svc.notify(mechanism_id=M, actor="IL", kind="air_sortie", volumes=[vol(PALMYRA)])
            svc.checkpoint(M)
            ((_, _, second),) = next_events_of(reader, {"checkpoint"}, 1)  # after the notice's entries
            assert second["seq"] == head(svc) > first["seq"]
        finally:
            reader.close()


# --- the command line -----------------------------------------------------------------------------


def test_cli_keys_generate_then_notify_signed_on_the_partys_side(tmp_path: Path, clock: FixedClock) -> None:
    import json

    from typer.testing import CliRunner

    from deconflict.cli import app

    runner = CliRunner()
    keyfile = tmp_path / "tr.key"
    made = runner.invoke(app, ["keys", "generate", "--party", "TR", "--out", str(keyfile)])
    assert made.exit_code == 0 and "fingerprint: ed25519:" in made.output
    assert keyfile.stat().st_mode & 0o777 == 0o600
    assert runner.invoke(app, ["keys", "generate", "--party", "TR", "--out", str(keyfile)]).exit_code == 2
    party, key = signing.read_key_file(keyfile)
    path = declared_db(tmp_path / "cli.db", clock, keys={"TR": key})
    listed = runner.invoke(app, ["keys", "list", "--db", path])
    assert f"{key.key_id}  TR       held by party" in listed.output
    server = start_server(path, clock)
    try:
        token = server.service.issue_token(mechanism_id=M, member_id="TR")
        notice = tmp_path / "patrol.json"
        notice.write_text(json.dumps({"kind": "uav_patrol", "volumes": [vol()]}), encoding="utf-8")
        env = {"DECONFLICT_URL": server.url, "DECONFLICT_TOKEN": token}
        refused = runner.invoke(app, ["notify", str(notice)], env=env)
        assert refused.exit_code == 2 and "signs its own entries" in refused.output
        done = runner.invoke(app, ["notify", str(notice), "--key", str(keyfile)], env=env)
        assert done.exit_code == 0 and f"signed with {key.key_id}" in done.output, done.output
        clock.advance(seconds=60)
        shown = runner.invoke(app, ["replay", "--db", path, "--at", iso(clock())])
        assert shown.exit_code == 0 and "TR-0001  TR  uav_patrol  v1" in shown.output
        early = runner.invoke(app, ["replay", "--db", path, "--at", "2020-01-01T00:00:00Z"])
        assert early.exit_code == 2 and "had no record yet" in early.output
    finally:
        server.stop()


def test_a_party_with_no_key_in_the_record_is_told_to_have_one_registered(tmp_path: Path) -> None:
    svc = Service(open_store(str(tmp_path / "bare.db")), clock=FixedClock(builders.T0))
    svc.declare_mechanism(mechanism=builders.syria(), keys={}, key_proofs={}, demo_custody=False)
    before = head(svc)
    with pytest.raises(Forbidden, match="party TR has no key in force in the record") as got:
        svc.notify(mechanism_id=M, actor="TR", kind="uav_patrol", volumes=[vol()])
    assert "deconflict keys register" in got.value.message and "--party TR" in got.value.message
    with pytest.raises(Forbidden, match=r"AZ \(facilitator\) has no key in force"):
        svc.send_message(mechanism_id=M, actor="AZ", text="radio check", lang="en", to=["TR"])
    assert head(svc) == before
