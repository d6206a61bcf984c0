"""Every answer a C2 client reads is what ``/openapi.json`` says it is: a day of the loop over real HTTP (a
notice, the conflict it raises, a red line entered, the alerts, a phrase, acknowledgements, a resolution, an
amendment, a cancellation, and another party's notice seen in part under conflicts-only), each answer
validated against the schema the served document gives its route and status. (schemathesis checks the same
on what it generates; this holds the answers of a real sequence, deterministically.)"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import pytest
from jsonschema import Draft202012Validator
from support.builders import API, PALMYRA, T0, T4, A, declared_db, syria, vol
from support.live import auth, start_server

from deconflict.clock import FixedClock
from deconflict.model import Disclosure


def _checker(document: dict[str, Any]) -> Any:
    """check(method, route, response): the answer validated against the schema of that route and status."""

    def check(method: str, route: str, r: httpx.Response) -> Any:
        assert r.status_code < 300, (method, route, r.status_code, r.text)
        op = document["paths"][API + route][method]
        schema = op["responses"][str(r.status_code)]["content"]["application/json"]["schema"]
        body = r.json()
        validator = Draft202012Validator({**schema, "components": document["components"]})
        errors = list(validator.iter_errors(body))
        assert not errors, (method, route, [f"{list(e.absolute_path)}: {e.message}" for e in errors[:5]])
        # the schema says something: some field of the answer (of its first item, for a list) is required
        first = body[0] if isinstance(body, list) and body else body
        if isinstance(first, dict) and first:

            def without(key: str) -> Any:
                cut = {k: v for k, v in first.items() if k != key}
                return [cut, *body[1:]] if isinstance(body, list) else cut

            assert any(next(validator.iter_errors(without(k)), None) for k in first), (
                method,
                route,
                "requires nothing",
            )
        return body

    return check


@pytest.mark.parametrize("disclosure", [Disclosure.FULL, Disclosure.CONFLICTS_ONLY])
def test_the_answers_of_a_day_of_the_loop_are_what_the_openapi_document_says(
    tmp_path: Path, disclosure: Disclosure
) -> None:
    clock = FixedClock(T0)
    server = start_server(declared_db(tmp_path / "day.db", clock, mechanism=syria(disclosure=disclosure)), clock)
    try:
        tok = server.tokens()
        with httpx.Client(base_url=server.url, timeout=10) as c:
            check = _checker(c.get("/openapi.json").json())
            m = "/mechanisms/{mechanism_id}"

            def notify(member: str, centre: tuple[float, float], kind: str = "uav_patrol") -> Any:
                body = {"kind": kind, "volumes": [vol(centre, radius_m=10_000)], "title": f"{kind} {member}"}
                return check("post", f"{m}/activities", c.post(f"{A}/activities", json=body, headers=auth(tok[member])))

            notify("TR", T4)
            raised = notify("IL", (T4[0] + 0.05, T4[1]), "air_sortie")["raised"]
            assert [x["kind"] for x in raised] == ["separation"]
            breach = notify("TR", PALMYRA, "deployment")["raised"]
            assert "zone" in {x["kind"] for x in breach}
            for member in ("TR", "IL", "AZ"):
                assert check("get", "/me", c.get(f"{API}/me", headers=auth(tok[member])))["member"]["id"] == member
                seen = check("get", f"{m}/activities", c.get(f"{A}/activities", headers=auth(tok[member])))
                if disclosure is Disclosure.CONFLICTS_ONLY and member == "IL":
                    assert any(a.get("partial") for a in seen)  # TR's notice, seen in part
                check("get", f"{m}/conflicts", c.get(f"{A}/conflicts", headers=auth(tok[member])))
                check("get", f"{m}/messages", c.get(f"{A}/messages", headers=auth(tok[member])))
            one = c.get(f"{A}/activities/TR-0001", headers=auth(tok["TR"]))
            assert check("get", f"{m}/activities/{{activity_id}}", one)["history"]
            cid = raised[0]["id"]
            check("get", f"{m}/conflicts/{{conflict_id}}", c.get(f"{A}/conflicts/{cid}", headers=auth(tok["IL"])))

            prepare = {**auth(tok["TR"]), "Deconflict-Prepare": "true"}
            prepared = c.post(f"{A}/messages", json={"text": "prepared, never sent"}, headers=prepare)
            assert prepared.status_code == 200 and check("post", f"{m}/messages", prepared)["prepared"]["seq"] > 0
            sent = c.post(f"{A}/messages", json={"text": "Patrol TR-0001 holding west of T4"}, headers=auth(tok["TR"]))
            check("post", f"{m}/messages", sent)
            awaited = raised[0]["awaiting"][0]
            awaiting = c.get(f"{A}/messages", params={"awaiting": "true"}, headers=auth(tok[awaited])).json()
            alert = next(x for x in awaiting if x["type"] == "alert" and x["about"]["id"] == cid)
            route = f"{m}/messages/{{message_id}}/acknowledge"
            acked = c.post(f"{A}/messages/{alert['id']}/acknowledge", headers=auth(tok[awaited]))
            assert check("post", route, acked)["status"] == "acknowledged"
            phrase = {"template": "holding", "params": {"ref": cid}, "to": ["IL"]}
            check("post", f"{m}/messages", c.post(f"{A}/messages", json=phrase, headers=auth(tok["TR"])))
            zone = next(x for x in breach if x["kind"] == "zone")
            acked = c.post(f"{A}/conflicts/{zone['id']}/acknowledge", headers=auth(tok[zone["awaiting"][0]]))
            check("post", f"{m}/conflicts/{{conflict_id}}/acknowledge", acked)
            body = {"resolution": "escalated", "note": "to the facilitator"}
            done = c.post(f"{A}/conflicts/{cid}/resolve", json=body, headers=auth(tok["AZ"]))
            assert check("post", f"{m}/conflicts/{{conflict_id}}/resolve", done)["status"] == "resolved"

            amend = {"version": 1, "kind": "air_sortie", "volumes": [vol((36.7, 35.1), radius_m=5_000)]}
            put = c.put(f"{A}/activities/IL-0001", json=amend, headers=auth(tok["IL"]))
            assert check("put", f"{m}/activities/{{activity_id}}", put)["activity"]["version"] == 2
            cancelled = c.post(f"{A}/activities/IL-0001/cancel", json={"version": 2}, headers=auth(tok["IL"]))
            assert (
                check("post", f"{m}/activities/{{activity_id}}/cancel", cancelled)["activity"]["state"] == "cancelled"
            )
    finally:
        server.stop()


@pytest.mark.parametrize("disclosure", [Disclosure.FULL, Disclosure.CONFLICTS_ONLY])
def test_the_rest_of_what_a_c2_client_reads_is_what_the_document_says(tmp_path: Path, disclosure: Disclosure) -> None:
    """The mechanism and its rules, the phrases, zones declared and withdrawn, a preview, what waits on a
    party, tracks reported and read, pages of the record (withheld entries too) and the state replayed, the
    keys: each answer validated against its route's schema in the served document."""
    clock = FixedClock(T0)
    server = start_server(declared_db(tmp_path / "rest.db", clock, mechanism=syria(disclosure=disclosure)), clock)
    try:
        tok = server.tokens()
        with httpx.Client(base_url=server.url, timeout=10) as c:
            check = _checker(c.get("/openapi.json").json())
            m = "/mechanisms/{mechanism_id}"
            for member in ("TR", "US"):
                mech = check("get", m, c.get(A, headers=auth(tok[member])))
                assert mech["rules"]["disclosure"] == disclosure.value and mech["rules"]["ladder"]
                assert check("get", "/mechanisms", c.get(f"{API}/mechanisms", headers=auth(tok[member])))
                assert check("get", f"{m}/templates", c.get(f"{A}/templates", headers=auth(tok[member])))
            draft = {"kind": "deployment", "volumes": [vol(PALMYRA, radius_m=5_000)]}
            seen = check(
                "post",
                f"{m}/activities/preview",
                c.post(f"{A}/activities/preview", json=draft, headers=auth(tok["TR"])),
            )
            assert [x["kind"] for x in seen["conflicts"]] == ["zone"]
            c.post(
                f"{A}/activities",
                json={"kind": "uav_patrol", "volumes": [vol(T4, radius_m=10_000)]},
                headers=auth(tok["TR"]),
            )
            near = {"kind": "air_sortie", "volumes": [vol((T4[0] + 0.05, T4[1]), radius_m=10_000)]}
            seen = check(
                "post", f"{m}/activities/preview", c.post(f"{A}/activities/preview", json=near, headers=auth(tok["IL"]))
            )
            assert [x["kind"] for x in seen["conflicts"]] == ["separation"]
            c.post(f"{A}/activities", json=near, headers=auth(tok["IL"]))  # C1
            query = {
                "template": "query_activity",
                "params": {"ref": "TR-0001", "t1": "2025-04-09T08:00", "t2": "2025-04-09T10:00"},
                "to": ["TR"],
            }
            assert c.post(f"{A}/messages", json=query, headers=auth(tok["IL"])).status_code == 201
            waiting = check("get", f"{m}/waiting", c.get(f"{A}/waiting", headers=auth(tok["TR"])))
            assert {i["kind"] for i in waiting["items"]} == {"conflict", "message"}

            zone = {
                "id": "TR-RZ-1",
                "kind": "restricted",
                "name": "Test range",
                "geometry": {"type": "Point", "coordinates": [38.0, 35.0]},
                "radius_m": 5000,
                "floor_m": 0,
                "ceiling_m": 5000,
                "forbids": ["air_sortie"],
                "valid_from": "2025-04-09T06:00:00Z",
            }
            declared = check("post", f"{m}/zones", c.post(f"{A}/zones", json=zone, headers=auth(tok["TR"])))
            assert declared["zone"]["id"] == "TR-RZ-1"
            zones = check("get", f"{m}/zones", c.get(f"{A}/zones", headers=auth(tok["IL"])))
            assert "TR-RZ-1" in {z["id"] for z in zones}
            gone = c.delete(f"{A}/zones/TR-RZ-1", headers=auth(tok["TR"]))
            assert check("delete", f"{m}/zones/{{zone_id}}", gone)["withdrawn"] == "TR-RZ-1"
            every = c.get(f"{A}/zones", params={"include_withdrawn": "true"}, headers=auth(tok["TR"]))
            assert any(z["withdrawn_at"] for z in check("get", f"{m}/zones", every))

            def report(member: str, track: str, lon: float, trk: int) -> Any:
                body = {
                    "reports": [
                        {
                            "id": track,
                            "at": "2025-04-09T06:00:00Z",
                            "lat": 34.52,
                            "lon": lon,
                            "alt_ft": 10000,
                            "gs_kt": 120,
                            "trk_deg": trk,
                            "vs_fpm": 0,
                        }
                    ]
                }
                return check("post", f"{m}/tracks", c.post(f"{A}/tracks", json=body, headers=auth(tok[member])))

            report("TR", "UAV-1", 37.60, 90)
            assert "tracks" in {x["kind"] for x in report("IL", "F-1", 37.62, 270)["raised"]}
            assert check("get", f"{m}/tracks", c.get(f"{A}/tracks", headers=auth(tok["IL"])))["tracks"]

            for member in ("TR", "IL", "US"):
                page = check(
                    "get", f"{m}/record", c.get(f"{A}/record", params={"limit": 5000}, headers=auth(tok[member]))
                )
                assert page["entries"] and page["next_after"] == page["entries"][-1]["seq"]
                assert any("message" in e for e in page["entries"])
                if disclosure is Disclosure.CONFLICTS_ONLY and member == "IL":
                    assert any(e.get("withheld") for e in page["entries"])  # TR's own notices, hashes kept
                for params in ({"at": "2025-04-09T06:00:00Z"}, {"at": "2025-04-09T06:00:00Z", "window_h": 24}):
                    state = check("get", f"{m}/replay", c.get(f"{A}/replay", params=params, headers=auth(tok[member])))
                    assert state["conflicts"] and state["messages"] and state["zones"]
            assert check("get", f"{m}/keys", c.get(f"{A}/keys", headers=auth(tok["IL"])))["keys"]
    finally:
        server.stop()


FREE = {
    # a witness's tools read these (docs/contracts.md describes them); a C2 client does not
    ("get", "/mechanisms/{mechanism_id}/checkpoints"),
    ("get", "/mechanisms/{mechanism_id}/checkpoints/keys"),
    ("post", "/mechanisms/{mechanism_id}/checkpoints/{seq}/cosignature"),
    ("get", "/mechanisms/{mechanism_id}/proof/consistency"),
    ("get", "/mechanisms/{mechanism_id}/proof/inclusion"),
    ("get", "/mechanisms/{mechanism_id}/previews"),
}


def test_every_json_answer_a_c2_client_reads_has_its_schema(tmp_path: Path) -> None:
    """No JSON answer of the API is a free object in ``/openapi.json`` (a client generated from it would read
    nothing typed), but for the witness's few listed in ``FREE``."""
    clock = FixedClock(T0)
    server = start_server(declared_db(tmp_path / "doc.db", clock), clock)
    try:
        document = httpx.get(f"{server.url}/openapi.json", timeout=10).json()
    finally:
        server.stop()

    untyped = sorted(
        (method, path[len(API) :], status)
        for path, ops in document["paths"].items()
        for method, op in ops.items()
        for status, answer in op["responses"].items()
        if status.startswith("2") and (method, path[len(API) :]) not in FREE and _free(answer)
    )
    assert untyped == []


def _free(answer: dict[str, Any]) -> bool:
    """A JSON answer documented as any object: no properties and no model (itself, its items, or one of its
    alternatives)."""
    schema = answer.get("content", {}).get("application/json", {}).get("schema")
    if schema is None:
        return False
    if "anyOf" in schema:
        return any(_free({"content": {"application/json": {"schema": s}}}) for s in schema["anyOf"])
    if schema.get("type") == "array":
        schema = schema.get("items") or {}
    # a map of typed values (``additionalProperties`` a schema) is typed
    return (
        "$ref" not in schema and "properties" not in schema and not isinstance(schema.get("additionalProperties"), dict)
    )


def test_the_stream_says_every_entry_type_the_record_has() -> None:
    """The event stream's description lists every entry type (its ``event`` field), so a client can switch on
    them; a type added to the record and not to the document fails here."""
    from deconflict.api.routes.events import events
    from deconflict.record.chain import EntryType

    said = events.__doc__ or ""
    assert [e.value for e in EntryType if e.value not in said] == []
