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
        errors = list(Draft202012Validator({**schema, "components": document["components"]}).iter_errors(body))
        assert not errors, (method, route, [f"{list(e.absolute_path)}: {e.message}" for e in errors[:5]])
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


def test_the_stream_says_every_entry_type_the_record_has() -> None:
    """The event stream's description lists every entry type (its ``event`` field), so a client can switch on
    them; a type added to the record and not to the document fails here."""
    from deconflict.api.routes.events import events
    from deconflict.record.chain import EntryType

    said = events.__doc__ or ""
    assert [e.value for e in EntryType if e.value not in said] == []
