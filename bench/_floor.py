"""The floors under one write through the server, measured in the same run as the write itself.

A write's cost in the server is the HTTP server's share (uvicorn reading the request, answering it) plus
the application's. Two floors bound how fast one process can ever go on this machine:

- **HTTP alone** (:func:`http_floor`): an ASGI application that reads the body and answers 201 with a
  small JSON, and nothing else, served by uvicorn with the very configuration ``deconflict serve`` uses
  (:func:`deconflict.api.serving.uvicorn_config`: httptools, uvloop, the request deadline), driven by the
  same client threads for the same seconds. Its server CPU a request is what any Python server on this
  stack pays before doing any work.
- **The use case alone** (:func:`service_floor`): the service's own call (``send_message``, ``notify``)
  in process, on the seeded Syria scenario, no HTTP: signing, the record, the tables, the picture, the
  answer's view. It is measured in a process of its own (its CPU time a call).

Their sum is a floor for a write through HTTP: the event streams, the middleware and the routing come on
top. ``ceiling_per_core_s`` is the writes a second that sum would allow on one whole core, which is all
one Python process gets for this work (one interpreter lock).

Two more figures place the service against what this stack can do, as yardsticks (not bounds: each leaves
something out, said below):

- **The use case's native work** (``native_floor_ms``): the CPU the use case spends inside its native calls
  (Ed25519, SHA-256, SQLite, orjson, the sync, geometry), profiled on the process's CPU clock, plus the HTTP
  floor: what the service's own statements and signatures cost with no Python around them. An upper
  estimate, not the native work itself: geometry counts shapely's and numpy's Python wrappers with the
  numpy calls made inside them (for one notice's arrays of a volume or two, mostly numpy's per-call
  overhead), and ``cProfile`` adds a read of the process's CPU clock (about 0.6 µs here) to each native
  call it times. Sampled without instrumentation (py-spy ``--native``, ``notify`` at the
  API bench's density, 2026-12-05), the work itself (SQLite, Ed25519, SHA-256, JSON, the sync, GEOS's and
  libm's arithmetic) was about a quarter of the use case's CPU, and numpy's per-call dispatch on one notice's
  small arrays another eighth; the README's benchmarks section has the whole breakdown.
- **A plain server, for a message** (:func:`minimal_floor`, ``plain_server``): on the same uvicorn
  configuration, driven by the same clients, with both parties' event streams read, it does a message's
  work and nothing else: the bearer token and the body (checked: the phrase, its parameter, the
  addressees), the phrase, canonical JSON, the SHA-256 chain, an Ed25519 signature, the ``ledger`` and
  ``messages`` rows through the standard library's ``sqlite3``, a commit, one sync of the log for the
  commits of an event-loop turn, the 201, and each reader's frame. No framework, no ORM, no authority rules,
  no picture, no per-member disclosure. What it achieves shows what a design closer to the metal could.
- **A plain server, for a notice** (:func:`plain_notice_floor`, ``plain_server`` of ``bench/api.py``): the same
  for a notice at the API bench's density (:data:`PLAIN_NOTICE_SERVER`): the body checked, the footprints
  projected and held to the area, the conflicts found with the service's own strategic index, and the notice,
  each finding and its two messages as salted, chained, signed entries with their rows, one transaction a notice,
  group commit, both parties' streams written. Sent as many notices as the service took in the same run, it
  raises the same conflicts: on the same 600 notices, the same 268 pairs at the same distances as the service.
"""

from __future__ import annotations

import contextlib
import http.client
import json
import sqlite3
import subprocess
import sys
import tempfile
import textwrap
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from _http import Poster
from _servers import ServerFailed, _cpu_s, _seed, _tail, free_port

__all__ = ["floors", "http_floor", "minimal_floor", "plain_notice_floor", "service_floor"]

NOOP_SERVER = textwrap.dedent(
    """
    import json, sys
    import uvicorn
    from deconflict.api.serving import uvicorn_config
    from deconflict.api.settings import Settings

    ANSWER = json.dumps({"id": "M1", "seq": 1}).encode()

    async def app(scope, receive, send):
        if scope["type"] != "http":
            return
        more = True
        while more:
            message = await receive()
            more = message.get("more_body", False)
        await send({"type": "http.response.start", "status": 201,
                    "headers": [(b"content-type", b"application/json"), (b"content-length", b"%d" % len(ANSWER))]})
        await send({"type": "http.response.body", "body": ANSWER})

    uvicorn.Server(uvicorn_config(app, Settings(), port=int(sys.argv[1]))).run()
    """
)
"""An ASGI application that reads the body and answers 201, served as ``deconflict serve`` serves."""

_PLAIN_HEAD = textwrap.dedent(
    """
    import asyncio, base64, hashlib, os, sqlite3, sys
    import orjson, uvicorn
    from nacl.signing import SigningKey
    from deconflict.api.serving import uvicorn_config
    from deconflict.api.settings import Settings
    from deconflict.demo import MECHANISM as M

    db, port, tokens = sys.argv[1], int(sys.argv[2]), orjson.loads(sys.argv[3])
    if sys.argv[4]:
        os.sched_setaffinity(0, {int(sys.argv[4])})
    con = sqlite3.connect(db, isolation_level=None, check_same_thread=False)
    con.execute("PRAGMA journal_mode=WAL")
    con.execute("PRAGMA synchronous=NORMAL")
    wal = os.open(db + "-wal", os.O_RDWR)
    HEAD = "SELECT seq, hash FROM ledger WHERE mechanism_id=? ORDER BY seq DESC LIMIT 1"
    key = SigningKey.generate()
    streams = []  # (party, queue)
    LEDGER = "INSERT INTO ledger VALUES (?,?,?,?,?,?,?,?,?,?,?)"
    MESSAGE = "INSERT INTO messages VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)"


    class Refused(Exception):
        pass
    """
)
"""What both plain servers start with (argv: a seeded demo database, the port, ``{token: party}``, a CPU to pin
to or ""): the database in WAL mode, the log's file for the syncs, a signing key of their own, the open streams."""

_PLAIN_SERVING = textwrap.dedent(
    """


    def flush():
        # one sync of the log for every commit made since the last: then their answers and their stream frames
        batch, state["batch"] = state["batch"], None
        try:
            os.fdatasync(wal)
        except OSError as e:
            for future, _ in batch:
                future.set_exception(e)
            return
        for future, _ in batch:
            future.set_result(None)
        send_frames([pending for _, pending in batch])


    async def answer(send, status, body=b""):
        await send({"type": "http.response.start", "status": status,
                    "headers": [(b"content-type", b"application/json"), (b"content-length", b"%d" % len(body))]})
        await send({"type": "http.response.body", "body": body})


    async def app(scope, receive, send):
        if scope["type"] != "http":
            return
        auth = dict(scope["headers"]).get(b"authorization", b"").decode()
        party = tokens.get(auth.removeprefix("Bearer "))
        if party is None:
            await answer(send, 401)
            return
        if scope["method"] == "GET":
            reader = (party, asyncio.Queue())
            streams.append(reader)
            await send({"type": "http.response.start", "status": 200,
                        "headers": [(b"content-type", b"text/event-stream")]})
            await send({"type": "http.response.body", "body": b": open\\n\\n", "more_body": True})
            try:
                while True:
                    await send({"type": "http.response.body", "body": await reader[1].get(), "more_body": True})
            finally:
                streams.remove(reader)
        body, more = b"", True
        while more:
            message = await receive()
            body += message.get("body", b"")
            more = message.get("more_body", False)
        try:
            view, pending = handle(party, body)
        except Refused:
            await answer(send, 422)
            return
        loop = asyncio.get_running_loop()
        future = loop.create_future()
        if state["batch"] is None:
            state["batch"] = []
            loop.call_soon(flush)
        state["batch"].append((future, pending))
        await future
        await answer(send, 201, orjson.dumps(view))


    uvicorn.Server(uvicorn_config(app, Settings(), port=port)).run()
    """
)
"""What both plain servers end with: group commit (each request's answer waits for one sync of the log that
covers its commit, one sync for the commits of an event-loop turn), then each server's ``send_frames`` of what its
``handle(party, body)`` left pending for the streams; 401 without a party's token, 422 for ``Refused``, each party's
event stream, uvicorn as ``deconflict serve`` configures it."""

MINIMAL_SERVER = (
    _PLAIN_HEAD
    + textwrap.dedent(
        """
    from datetime import UTC, datetime
    LANG = {"TR": "tr", "IL": "he"}
    WORDS = {"holding": {"tr": "Bekliyoruz: {ref}", "he": "ממתינים: {ref}"}}
    seq, prev = con.execute(HEAD, (M,)).fetchone()
    state = {"seq": seq, "prev": prev, "n": 0, "batch": None}


    def handle(party, body):
        try:
            req = orjson.loads(body)
            to, params, words = req["to"], req["params"], WORDS[req["template"]]
            ok = isinstance(to, list) and to and all(p in LANG and p != party for p in to)
            ok = ok and isinstance(params, dict) and isinstance(params.get("ref"), str) and len(params) == 1
        except (orjson.JSONDecodeError, KeyError, TypeError):
            ok = False
        if not ok:
            raise Refused()
        lang = LANG[party]
        text = words[lang].format(**params)
        state["n"] += 1
        mid = f"MF{state['n']}"
        payload = {"about": None, "deadline": None, "from_party": party, "id": mid, "lang": lang,
                   "needs_ack": False, "params": params, "template": req["template"], "to": to, "type": "response"}
        canon = orjson.dumps(payload, option=orjson.OPT_SORT_KEYS).decode()
        payload_hash = hashlib.sha256(canon.encode()).hexdigest()
        at = datetime.now(UTC).isoformat()
        seq, prev = state["seq"] + 1, state["prev"]
        head = (f'{{"actor":"{party}","at":"{at}","mechanism":"{M}","payload_hash":"{payload_hash}",'
                f'"prev_hash":"{prev}","seq":{seq},"type":"message.sent"}}')
        digest = hashlib.sha256(head.encode()).hexdigest()
        signature = base64.b64encode(key.sign(bytes.fromhex(digest)).signature).decode()
        con.execute("BEGIN")
        try:
            con.execute(LEDGER, (M, seq, at, party, "message.sent", canon, payload_hash, prev, digest, "k", signature))
            con.execute(MESSAGE, (M, mid, seq, "response", party, orjson.dumps(to).decode(), 0, at, None, "{}", None,
                                  0, None, None, canon, None, None))
            con.execute("COMMIT")
        except BaseException:
            con.execute("ROLLBACK")
            raise
        state["seq"], state["prev"] = seq, digest
        view = {"id": mid, "seq": seq, "from": party, "to": to, "text": text, "sent_at": at, "hash": digest}
        return view, view


    def send_frames(views):
        for view in views:
            for reader, queue in streams:
                if reader == view["from"] or reader in view["to"]:
                    data = orjson.dumps({"seq": view["seq"], "message": view})
                    queue.put_nowait(b"event: message.sent\\ndata: " + data + b"\\n\\n")
    """
    )
    + _PLAIN_SERVING
)
"""A plain server for a durable, signed hotline message that both parties' streams show (:func:`minimal_floor`):
argv[1] a seeded demo database, argv[2] the port, argv[3] ``{token: party}``. It checks what a body must hold
(the phrase, its one parameter, addressees who are parties other than the sender: 422 else), commits each
message in its own transaction, answers once one sync of the log covers the commit (one sync for every commit
of an event-loop turn: group commit, as the service), and writes each reader's frame to the streams of the
parties it concerns. It signs with a key of its own (the mechanism's keys are not registered: its entries
do not verify as the mechanism's), and its statements match the ``ledger`` and ``messages`` tables of this
checkout's schema."""

PLAIN_NOTICE_SERVER = (
    _PLAIN_HEAD
    + textwrap.dedent(
        """
    import math
    from datetime import UTC, datetime, timedelta
    import numpy as np, shapely
    from deconflict.geo import Frame
    from deconflict.volumes import VolumeIndex

    KINDS = {"air_sortie", "uav_patrol", "ground_movement", "deployment", "air_defence_activation", "exercise"}
    LANG = {"TR": "tr", "IL": "he"}
    ALERT = {
        "tr": "{conflict}: {other_ref} ({party}) {ref} ile {distance} m",
        "he": "{conflict}: {other_ref} ({party}) {ref} {distance} m",
    }
    declared = orjson.loads(con.execute(
        "SELECT payload FROM ledger WHERE mechanism_id=? AND type='mechanism.declared'", (M,)).fetchone()[0])
    RULES = declared["rules"]
    SEP, VSEP, ACK = RULES["separation_m"], RULES["vertical_separation_m"], timedelta(minutes=RULES["ack_deadline_min"])
    area = shapely.geometry.shape(declared["area"]["geometry"])
    frame = Frame.for_bounds(tuple(area.bounds))
    allowed = shapely.buffer(frame.project(area), RULES["area_margin_m"])
    shapely.prepare(allowed)
    zones = []  # (id, owner, frame geometry, radius, floor, ceiling, from, to, kinds it forbids, to its owner too)
    for (text,) in con.execute("SELECT payload FROM ledger WHERE mechanism_id=? AND type='zone.declared'", (M,)):
        z = orjson.loads(text)
        to = datetime.fromisoformat(z["valid_to"]).timestamp() if z.get("valid_to") else math.inf
        shape = frame.project(shapely.geometry.shape(z["geometry"]))
        zones.append((z["id"], z["owner"], shape, z.get("radius_m") or 0.0, z["floor_m"], z["ceiling_m"],
                      datetime.fromisoformat(z["valid_from"]).timestamp(), to, set(z["forbids"]),
                      z.get("applies_to_owner", False)))
    index = VolumeIndex(frame)
    for (text,) in con.execute("SELECT doc FROM activities WHERE mechanism_id=?", (M,)):
        a = orjson.loads(text)
        vols = a["volumes"]
        index.add([(a["id"], v["id"]) for v in vols], [a["party"]] * len(vols),
                  frame.project(np.array([shapely.geometry.shape(v["geometry"]) for v in vols], dtype=object)),
                  np.array([v.get("radius_m") or 0.0 for v in vols]),
                  np.array([datetime.fromisoformat(v["start"]).timestamp() for v in vols]),
                  np.array([datetime.fromisoformat(v["end"]).timestamp() for v in vols]),
                  np.array([v["floor_m"] for v in vols]), np.array([v["ceiling_m"] for v in vols]))
    seq, prev = con.execute(HEAD, (M,)).fetchone()
    salt_key = hashlib.blake2b(b"plain salt", key=os.urandom(32), digest_size=32).digest()
    state = {"seq": seq, "prev": prev, "n": 0, "c": 0, "m": 0, "batch": None}
    ACTIVITY = "INSERT INTO activities VALUES (?,?,?,?,?,?,?,?,?,?)"
    VERSION = "INSERT INTO activity_versions VALUES (?,?,?,?,?,?,?)"
    CONFLICT = "INSERT INTO conflicts VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)"


    def iso(t):
        return t.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


    def when(text):
        if not isinstance(text, str) or not text.endswith("Z"):
            raise Refused()
        return datetime.fromisoformat(text)


    def number(value, least=-math.inf):
        if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value) or value < least:
            raise Refused()
        return float(value)


    def read(body):
        # what a notice must hold: a kind, one or more volumes (a point or polygon, a radius, a band, a window)
        try:
            req = orjson.loads(body)
            kind, vols, title = req["kind"], req["volumes"], req.get("title", "")
        except (orjson.JSONDecodeError, KeyError, TypeError):
            raise Refused()
        if kind not in KINDS or not isinstance(vols, list) or not 1 <= len(vols) <= 50 or not isinstance(title, str):
            raise Refused()
        out = []
        for n, v in enumerate(vols):
            try:
                g = v["geometry"]
                shape = shapely.geometry.shape(g) if g.get("type") in ("Point", "Polygon") else None
                radius = number(v.get("radius_m", 0.0), 0.0)
                floor, ceiling = number(v["floor_m"], -500.0), number(v["ceiling_m"], -500.0)
                start, end = when(v["start"]), when(v["end"])
            except (KeyError, TypeError, AttributeError, ValueError, shapely.errors.GEOSException):
                raise Refused()
            if shape is None or not shape.is_valid or floor >= ceiling or start >= end:
                raise Refused()
            out.append({"id": f"v{n + 1}", "geometry": g, "radius_m": radius, "floor_m": floor,
                        "ceiling_m": ceiling, "start": v["start"], "end": v["end"], "_shape": shape,
                        "_t": (start.timestamp(), end.timestamp())})
        return kind, title, out


    def entry(at, actor, kind, payload, rows):
        # salted, canonical, hashed, chained and signed, as the record's entries are (the chain moves on once
        # the notice's transaction commits: rows holds the entries drafted so far)
        seq, prev = (rows[-1][1], rows[-1][8]) if rows else (state["seq"], state["prev"])
        seq += 1
        head = f"{M}\\n{seq}\\n{at}\\n{actor}\\n{kind}\\n{prev}".encode()
        salt = base64.urlsafe_b64encode(hashlib.blake2b(head, key=salt_key, digest_size=16).digest())[:22].decode()
        canon = orjson.dumps({**payload, "salt": salt}, option=orjson.OPT_SORT_KEYS).decode()
        payload_hash = hashlib.sha256(canon.encode()).hexdigest()
        text = (f'{{"actor":"{actor}","at":"{at}","mechanism":"{M}","payload_hash":"{payload_hash}",'
                f'"prev_hash":"{prev}","seq":{seq},"type":"{kind}"}}')
        digest = hashlib.sha256(text.encode()).hexdigest()
        signature = base64.b64encode(key.sign(bytes.fromhex(digest)).signature).decode()
        rows.append((M, seq, at, actor, kind, canon, payload_hash, prev, digest, "k", signature))
        return {"seq": seq, "at": at, "type": kind, "actor": actor, "hash": digest, "payload": payload}


    def handle(party, body):
        kind, title, vols = read(body)
        shapes = frame.project(np.array([v["_shape"] for v in vols], dtype=object))
        radii = np.array([v["radius_m"] for v in vols])
        for shape, radius in zip(shapes, radii):
            if not allowed.covers(shapely.buffer(shape, radius) if radius > 0 else shape):
                raise Refused()
        now = datetime.now(UTC)
        at = iso(now)
        state["n"] += 1
        aid = f"{party}-P{state['n']:05d}"
        t0s = [v["_t"][0] for v in vols]
        t1s = [v["_t"][1] for v in vols]
        shown = [{k: x for k, x in v.items() if not k.startswith("_")} for v in vols]
        doc = {"id": aid, "party": party, "kind": kind, "title": title, "state": "notified", "version": 1,
               "notified_at": at, "first_notified_at": at, "start": min(v["start"] for v in vols),
               "end": max(v["end"] for v in vols), "volumes": shown}
        ledger, frames = [], []
        notified = entry(at, party, "activity.notified", doc, ledger)
        frames.append((None, notified))
        # the conflicts: other parties' live volumes within the separation, their windows and bands overlapping
        hits = {}
        for v, shape, radius in zip(vols, shapes, radii):
            t0, t1 = v["_t"]
            for c in index.query(shape, float(radius), t0, t1, v["floor_m"], v["ceiling_m"], separation_m=SEP,
                                 vertical_separation_m=VSEP, exclude_party=party):
                hits.setdefault(c.key[0], (c.party, []))[1].append((v, c.slot, c.distance_m))
        for zid, owner, zshape, zradius, zfloor, zceiling, zfrom, zto, forbids, to_owner in zones:
            if kind not in forbids or (owner == party and not to_owner):
                continue
            for v, shape, radius in zip(vols, shapes, radii):
                t0, t1 = v["_t"]
                if t0 < zto and zfrom < t1 and v["floor_m"] < zceiling and zfloor < v["ceiling_m"]:
                    if frame.ground_distance(shape, radius, zshape, zradius)[0] <= 0.0:
                        hits.setdefault(zid, (owner, [])) [1].append((v, None, 0.0))
        conflicts, messages, raised = [], [], []
        deadline = iso(now + ACK)
        for other, (other_party, found) in sorted(hits.items()):
            ckind = "zone" if found[0][1] is None else "separation"
            state["c"] += 1
            cid = f"CP{state['c']}"
            raised.append(cid)
            starts, ends, floors, ceilings = [], [], [], []
            for v, s, _ in found:  # the overlap of the two windows and bands (a zone's: the volume's)
                starts.append(v["_t"][0] if s is None else max(v["_t"][0], float(index.t0[s])))
                ends.append(v["_t"][1] if s is None else min(v["_t"][1], float(index.t1[s])))
                floors.append(v["floor_m"] if s is None else max(v["floor_m"], float(index.z0[s])))
                ceilings.append(v["ceiling_m"] if s is None else min(v["ceiling_m"], float(index.z1[s])))
            distance = round(min(d for _, _, d in found), 1)
            start, end = iso(datetime.fromtimestamp(min(starts), UTC)), iso(datetime.fromtimestamp(max(ends), UTC))
            finding = {"id": cid, "activity": aid, "activity_version": 1, "activity_kind": kind, "party": party,
                       "deadline": deadline, "kind": ckind, "other_activity": other, "other_party": other_party,
                       "parties": sorted({party, other_party}), "awaiting": [other_party], "distance_m": distance,
                       "separation_m": SEP, "start": start, "end": end, "floor_m": min(floors),
                       "ceiling_m": max(ceilings), "other_version": 1,
                       "volume_pairs": sorted([v["id"], other if s is None else index.keys[s][1]] for v, s, _ in found)}
            frames.append((None, entry(at, "system", "conflict.detected", finding, ledger)))
            conflicts.append((M, cid, ckind, "open", None, aid, other, None,
                              orjson.dumps(finding["parties"]).decode(), distance, at, deadline, "{}", None, None,
                              orjson.dumps(finding).decode()))
            for to, needs_ack, template in ((other_party, True, "separation_alert"), (party, False, "separation_info")):
                state["m"] += 1
                mid = f"MP{state['m']}"
                theirs = to == other_party
                params = {"conflict": cid, "ref": other if theirs else aid, "other_ref": aid if theirs else other,
                          "party": party if theirs else other_party,
                          "distance": f"{distance:.0f}", "t1": start[:16], "t2": end[:16],
                          "floor": f"{min(floors):.0f}", "ceiling": f"{max(ceilings):.0f}"}
                message = {"id": mid, "type": "alert" if needs_ack else "notice", "to": [to], "needs_ack": needs_ack,
                           "deadline": deadline if needs_ack else None, "about": {"kind": "conflict", "id": cid},
                           "template": template, "params": params, "lang": "en"}
                sent = entry(at, "system", "message.sent", message, ledger)
                frames.append((to, {**sent, "text": ALERT[LANG.get(to, "tr")].format(**params)}))
                messages.append((M, mid, sent["seq"], message["type"], "system", f'["{to}"]', needs_ack, at,
                                 message["deadline"], "{}", None, 0, "conflict", cid, orjson.dumps(message).decode(),
                                 None, None))
        text = orjson.dumps(doc).decode()
        con.execute("BEGIN")
        try:
            con.executemany(LEDGER, ledger)
            con.execute(ACTIVITY, (M, aid, party, kind, "notified", 1, doc["start"], doc["end"], at, text))
            con.execute(VERSION, (M, aid, 1, notified["seq"], at, party, text))
            con.executemany(CONFLICT, conflicts)
            con.executemany(MESSAGE, messages)
            con.execute("COMMIT")
        except BaseException:
            con.execute("ROLLBACK")
            raise
        state["seq"], state["prev"] = ledger[-1][1], ledger[-1][8]
        index.add([(aid, v["id"]) for v in vols], [party] * len(vols), shapes, radii, np.array(t0s), np.array(t1s),
                  np.array([v["floor_m"] for v in vols]), np.array([v["ceiling_m"] for v in vols]))
        return {"activity": doc, "raised": raised, "seq": notified["seq"]}, frames



    def send_frames(batches):
        chunks = {reader: [] for reader, _ in streams}
        for frames in batches:
            for to, view in frames:
                data = b"event: " + view["type"].encode() + b"\\ndata: " + orjson.dumps(view) + b"\\n\\n"
                for reader in chunks:
                    if to is None or to == reader:
                        chunks[reader].append(data)
        for reader, queue in streams:
            if chunks[reader]:
                queue.put_nowait(b"".join(chunks[reader]))
    """
    )
    + _PLAIN_SERVING
)
"""A plain server for a notice at the API bench's density (:func:`plain_notice_floor`): argv as
:data:`MINIMAL_SERVER`'s. It does a notice's work and nothing else: the body checked (a kind, each volume's
point or polygon, radius, band and window), the footprints projected and held to the mechanism's area, the
conflicts found with the strategic index the service uses (``VolumeIndex``: other parties' live volumes within
the separation, in time and band; the declared zones too), and for the notice and each conflict what the service
records: the notice, the finding, an alert to the other party and a notice to the notifying one, each entry
salted, canonical JSON, chained with SHA-256 and signed with Ed25519, and their rows (``ledger``,
``activities``, ``activity_versions``, ``conflicts``, ``messages``) through the standard library's ``sqlite3``
in one transaction a notice; one sync of the log for the commits of an event-loop turn; the 201 with the
activity and the conflicts raised; each frame written once and sent to the streams of the parties it
concerns. No framework, no ORM, no authority rules, no short-notice or horizon rules, no per-reader views, no
escalation bookkeeping. Its ids are its own (``TR-P00001``, ``CP1``, ``MP1``) and it signs with a key of its
own (its entries do not verify as the mechanism's)."""

SERVICE_CALLS = textwrap.dedent(
    """
    import cProfile, json, pstats, random, sys, time
    from datetime import UTC, datetime
    sys.path.insert(0, sys.argv[3])
    from deconflict.demo import MECHANISM, prepare_server
    from deconflict.api.schemas import NoticeIn

    service, _ = prepare_server(sys.argv[1])
    what, calls = sys.argv[2], int(sys.argv[4])
    NATIVE = {name: part for part, names in json.loads(sys.argv[5]).items() for name in names}
    LIBRARIES = [("/shapely/", "geometry"), ("/numpy/", "geometry"), ("/numba/", "geometry")]
    calls = max(calls, 40)
    rng = random.Random(7)
    now = datetime.now(UTC)

    def message(i):
        party, other = ("TR", "IL") if i % 2 == 0 else ("IL", "TR")
        service.send_message(mechanism_id=MECHANISM, actor=party, template="holding", params={"ref": f"C{i}"},
                             to=[other])

    def notice(i):
        from api import random_notice
        n = NoticeIn.model_validate(random_notice(rng, now))
        service.notify(mechanism_id=MECHANISM, actor="TR" if i % 2 == 0 else "IL", kind=n.kind.value,
                       volumes=[v.model_dump(mode="json") for v in n.volumes], title=n.title)

    def head():
        with service.store.engine.connect() as c:
            return c.exec_driver_sql("SELECT max(seq) FROM ledger WHERE mechanism_id = ?", (MECHANISM,)).scalar()

    batch = int(sys.argv[6]) if len(sys.argv) > 6 else 1

    def messages(i):  # ``batch`` messages sent together, as the server records those that arrive together
        from deconflict.service.hotline import Outgoing
        outs = [Outgoing("TR" if k % 2 == 0 else "IL", template="holding", params={"ref": f"C{k}"},
                         to=["IL" if k % 2 == 0 else "TR"]) for k in range(i, i + batch)]
        answers = [a for group in service.send_messages(mechanism_id=MECHANISM, messages=outs) for _, a in group]
        assert len(answers) == batch and all(isinstance(a, dict) for a in answers), answers

    call = (message if batch == 1 else messages) if what == "message" else notice
    step = batch if what == "message" else 1
    warm = max(step, calls // 20 // step * step)  # imports, caches, the picture; then the rest, as the run filled it
    for i in range(0, warm, step):
        call(i)
    first = head()
    cpu, wall = time.process_time(), time.perf_counter()
    timed = range(warm, max(calls, warm + step), step)
    for i in timed:
        call(i)
    cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
    made = len(timed) * step
    entries = (head() - first) / made
    if not entries:
        raise SystemExit(f"{made} calls of the {what} use case recorded nothing")
    profiled = max(step, min(500, calls // 4) // step * step)
    jitted = set()  # numba's compiled functions: cProfile names them by their Python source
    for module in list(sys.modules.values()):
        if getattr(module, "__name__", "").startswith("deconflict"):
            for value in list(vars(module).values()):
                code = getattr(getattr(value, "py_func", None), "__code__", None)
                if code is not None:
                    jitted.add((code.co_filename, code.co_firstlineno, code.co_name))
    profile = cProfile.Profile(time.process_time)
    profile.enable()
    start = warm + made
    for i in range(start, start + profiled, step):
        call(i)
    profile.disable()
    calls = made
    service.store.close()
    native = {}
    for (filename, line, name), (_, _, own, _, _) in pstats.Stats(profile).stats.items():
        part = NATIVE.get(name) or next((p for lib, p in LIBRARIES if lib in filename), None)
        if part is None and ((filename, line, name) in jitted or (filename == "~" and "numpy" in name)):
            part = "geometry"
        if part is not None:
            native[part] = native.get(part, 0.0) + own / profiled * 1000
    print(json.dumps({"calls": calls, "cpu_ms": cpu / calls * 1000, "wall_ms": wall / calls * 1000,
                      "entries_per_call": entries, "native_ms": native}))
    """
)
"""Seeds the demo database argv[1] and makes ``argv[4]`` calls of the use case argv[2] (message, notice), as
many as the measured server took (each notice costs more as the area fills); the first twentieth warms up,
the rest is timed, with the record entries each call appended. Then a quarter as many more (at most 500)
under ``cProfile`` timed by the process's CPU clock, for the CPU spent inside the native code that does the
work (:data:`NATIVE_PARTS`). Those calls come after the timed ones: for notices the area is a little fuller
then, so their native part is, if anything, a little high against ``cpu_ms``."""

NATIVE_PARTS = {
    "signing": ["<built-in method _sodium.crypto_sign>"],
    "hashing": ["<built-in method _hashlib.openssl_sha256>", "<method 'hexdigest' of '_hashlib.HASH' objects>"],
    "sqlite": [
        "<method 'execute' of 'sqlite3.Connection' objects>",
        "<method 'execute' of 'sqlite3.Cursor' objects>",
        "<method 'executemany' of 'sqlite3.Cursor' objects>",
        "<method 'commit' of 'sqlite3.Connection' objects>",
        "<method 'fetchall' of 'sqlite3.Cursor' objects>",
        "<method 'fetchone' of 'sqlite3.Cursor' objects>",
    ],
    "json": ["<orjson.dumps>", "<orjson.loads>"],
    "sync": ["<built-in method posix.fdatasync>", "<built-in method posix.fsync>"],
}
"""The native calls that do a write's work, by part (cProfile's names): the CPU the service's own choice of
statements, signatures and encodings costs with no Python around it (another design could run fewer
statements: this is not a bound on every implementation). Geometry is the CPU inside shapely's, numpy's and
numba's functions (shapely's thin Python wrappers included) and numba's compiled ones."""


def http_floor(seconds: float, clients: int, path: str, body: Callable[[int], Any]) -> dict[str, Any]:
    """The no-op server (:data:`NOOP_SERVER`) driven by ``clients`` threads posting ``body(n)`` to ``path``
    for ``seconds``: requests a second, and its CPU a request."""
    return _drive([NOOP_SERVER], seconds, clients, path, body, "the server that does nothing")


def minimal_floor(seconds: float, clients: int, body: Callable[[int], Any], cpu: int | None = None) -> dict[str, Any]:
    """The plain message server (:data:`MINIMAL_SERVER`) on a freshly seeded demo database, driven as the
    hotline bench drives the service: ``clients`` threads (TR and IL in turn) posting ``body(n)`` with the
    other party as addressee, while TR's and IL's event streams are read; requests a second, its CPU a
    request, the frames each stream carried, and whether every 201 is a stored row (``stored_as_answered``).
    ``cpu``: the server pinned to that CPU, as ``serve --cpus`` pins the service."""
    from hotline import message_key  # the hotline bench's own (it imports this module: not at the top)

    with tempfile.TemporaryDirectory(prefix="bench-minimal-") as folder:
        db = str(Path(folder) / "minimal.db")
        try:
            tokens = _seed(db)
        except ServerFailed as e:
            return {"failed": str(e)}
        parties = {token: party for party, token in tokens.items() if party in ("TR", "IL")}
        by_party = {party: token for token, party in parties.items()}

        def addressed(n: int) -> Any:
            return {**body(n), "to": ["IL" if n % 2 == 0 else "TR"]}

        out = _drive(
            [MINIMAL_SERVER, db, "{port}", json.dumps(parties), "" if cpu is None else str(cpu)],
            seconds,
            clients,
            "/messages",
            addressed,
            "the plain server",
            token=lambda n: by_party["TR" if n % 2 == 0 else "IL"],
            streams=[by_party["TR"], by_party["IL"]],
            key=message_key,
            log=Path(folder) / "server.log",
        )
        if "requests" in out:
            with contextlib.closing(sqlite3.connect(db)) as con:
                stored = con.execute("SELECT count(*) FROM messages WHERE id LIKE 'MF%'").fetchone()[0]
            out["rows_stored"] = stored
            out["stored_as_answered"] = stored == out["requests"] + out["probes"]
        return out


def plain_notice_floor(
    seconds: float, clients: int, body: Callable[[int], Any], most: int | None = None, cpu: int | None = None
) -> dict[str, Any]:
    """The plain notice server (:data:`PLAIN_NOTICE_SERVER`) on a freshly seeded demo database, driven as the API
    bench drives the service: ``clients`` threads (TR and IL in turn) posting ``body(n)``, TR's and IL's event
    streams read, at most ``most`` notices (as many as the service took: the area as full, the same conflicts a
    notice); notices a second, its CPU a notice, the conflicts it raised a notice, the notices whose conflicts
    reached the other party's stream, and whether every 201 is a stored row (``stored_as_answered``). ``cpu``:
    the server pinned to that CPU, as ``serve --cpus`` pins the service."""
    from api import conflict_key  # the API bench's own (it imports this module: not at the top)

    with tempfile.TemporaryDirectory(prefix="bench-plain-") as folder:
        db = str(Path(folder) / "plain.db")
        try:
            tokens = _seed(db)
        except ServerFailed as e:
            return {"failed": str(e)}
        parties = {token: party for party, token in tokens.items() if party in ("TR", "IL")}
        by_party = {party: token for token, party in parties.items()}
        out = _drive(
            [PLAIN_NOTICE_SERVER, db, "{port}", json.dumps(parties), "" if cpu is None else str(cpu)],
            seconds,
            clients,
            "/activities",
            body,
            "the plain notice server",
            token=lambda n: by_party["TR" if n % 2 == 0 else "IL"],
            streams=[by_party["TR"], by_party["IL"]],
            key=conflict_key,
            log=Path(folder) / "server.log",
            most=most,
        )
        if "requests" in out:
            with contextlib.closing(sqlite3.connect(db)) as con:
                stored = con.execute("SELECT count(*) FROM activities WHERE id LIKE '__-P%'").fetchone()[0]
                raised = con.execute("SELECT count(*) FROM conflicts WHERE id LIKE 'CP%'").fetchone()[0]
                entries = con.execute("SELECT count(*) FROM ledger WHERE key_id = 'k'").fetchone()[0]
            out["rows_stored"] = stored
            out["stored_as_answered"] = stored == out["requests"] + out["probes"]
            out["conflicts_per_notice"] = round(raised / max(stored, 1), 2)
            out["entries_per_notice"] = round(entries / max(stored, 1), 2)
            if most is not None and out["requests"] < most:  # its area less full than the service's: cheaper
                out["short_of_the_services_notices"] = most - out["requests"]
        return out


def _drive(
    script: list[str],
    seconds: float,
    clients: int,
    path: str,
    body: Callable[[int], Any],
    name: str,
    *,
    token: Callable[[int], str] = lambda n: "x",
    streams: list[str] | None = None,
    key: Callable[[str, dict[str, Any]], str | None] = lambda event, entry: None,
    log: Path | None = None,
    most: int | None = None,
) -> dict[str, Any]:
    """Start ``python -c script[0] script[1:]`` (the argument ``{port}`` replaced by a free port), post
    ``body(n)`` to ``path`` from ``clients`` threads (thread n with ``token(n)``) for ``seconds`` while one
    reader per token in ``streams`` reads ``GET /events`` (api.StreamWatcher, each connected before the clients start);
    requests answered 201 a second, the server's CPU for each, the other answers counted, and the events each
    stream carried that ``key`` names. ``probes``: the 201s before the clients started (the readiness check).
    ``most``: the clients stop once they have sent that many requests, if the seconds have not run out first."""
    port = free_port()
    argv = [str(port) if a == "{port}" else a for a in script[1:]] or [str(port)]
    with contextlib.ExitStack() as stack:
        errors_to = stack.enter_context(open(log, "wb")) if log is not None else subprocess.DEVNULL
        proc = subprocess.Popen([sys.executable, "-c", script[0], *argv], stderr=errors_to, stdout=errors_to)
        stack.callback(_stop, proc)
        base = f"http://127.0.0.1:{port}"
        probes = 0
        for _ in range(400):
            try:
                with Poster(base, token(0)) as p:
                    first = p.post(path, body(0))
                if first.status_code != 201:
                    return {"failed": f"{name} answered {first.status_code}: {first.text[:200]}"}
                probes += 1
                break
            except (OSError, http.client.HTTPException):
                if proc.poll() is not None:
                    return {"failed": f"{name} exited ({proc.returncode}): {_tail(log) if log else ''}"}
                time.sleep(0.05)
        else:
            return {"failed": f"{name} did not answer within 20 s: {_tail(log) if log else ''}"}
        from api import StreamWatcher  # the benches' own stream reader (api imports this module: not at the top)

        readers = [StreamWatcher(base, reader_token, 0, key) for reader_token in streams or []]
        for reader in readers:
            reader.start()
            if not reader.connected.wait(10):
                return {"failed": f"{name}: an event stream did not open within 10 s"}
        count = [0]
        left = [most if most is not None else -1]  # requests still to send (-1: no cap)
        refused: list[str] = []
        errors: list[str] = []
        lock = threading.Lock()
        stop_at = time.perf_counter() + seconds

        def client(n: int) -> None:
            done = 0
            try:
                with Poster(base, token(n)) as p:
                    while time.perf_counter() < stop_at:
                        with lock:
                            if left[0] == 0:
                                break
                            left[0] -= 1
                        answer = p.post(path, body(n))
                        if answer.status_code == 201:
                            done += 1
                        else:
                            with lock:
                                refused.append(f"{answer.status_code} {answer.text[:200]}")
            except (OSError, http.client.HTTPException) as e:  # counted, and said: the figure stands on the rest
                with lock:
                    errors.append(f"{type(e).__name__}: {e}")
            with lock:
                count[0] += done

        threads = [threading.Thread(target=client, args=(i,)) for i in range(clients)]
        cpu, wall = _cpu_s(proc.pid), time.perf_counter()
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        cpu, wall = _cpu_s(proc.pid) - cpu, time.perf_counter() - wall
        time.sleep(0.2)  # the last answers' frames reach the readers
    if not count[0]:
        return {"failed": f"{name} answered no request 201", "refused": refused[:3], "client_errors": errors[:3]}
    out: dict[str, Any] = {
        "requests_per_s": round(count[0] / wall, 1),
        "server_cpu_ms_per_request": round(cpu / count[0] * 1000, 3),
        "requests": count[0],
        "probes": probes,
    }
    if readers:
        out["stream_frames"] = [len(reader.arrivals) for reader in readers]
    if refused:
        out["refused"] = len(refused)
        out["first_refused"] = refused[:3]
    if errors:
        out["client_errors"] = errors[:3]
    return out


def _stop(proc: subprocess.Popen[bytes]) -> None:
    """Stop a server: politely, then for good (its open event streams keep uvicorn's shutdown waiting)."""
    proc.terminate()
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=10)


def service_floor(what: str, calls: int, batch: int = 1) -> dict[str, Any]:
    """The use case ``what`` (``message`` or ``notice``) called ``calls`` times in a process of its own on a
    fresh demo database (messages ``batch`` at a time through ``send_messages`` when ``batch`` > 1, as the
    server records those that arrive together): CPU and wall milliseconds a call (a message), the record
    entries a call appended, and the milliseconds a call spent in the native code that does the work
    (:data:`NATIVE_PARTS`), by part and in all (``native_cpu_ms``)."""
    with tempfile.TemporaryDirectory(prefix="bench-floor-") as folder:
        out = subprocess.run(
            [
                sys.executable,
                "-c",
                SERVICE_CALLS,
                str(Path(folder) / "floor.db"),
                what,
                str(Path(__file__).parent),
                str(calls),
                json.dumps(NATIVE_PARTS),
                str(batch),
            ],
            capture_output=True,
            text=True,
            check=False,
        )
    if out.returncode != 0:
        return {"failed": out.stderr.strip().splitlines()[-1:] or [f"exit {out.returncode}"]}
    found = json.loads(out.stdout.strip().splitlines()[-1])
    native = {part: round(ms, 3) for part, ms in sorted(found["native_ms"].items())}
    return {
        "calls": found["calls"],
        "cpu_ms": round(found["cpu_ms"], 3),
        "wall_ms": round(found["wall_ms"], 3),
        "entries_per_call": round(found["entries_per_call"], 2),
        "native_ms": native,
        "native_cpu_ms": round(sum(native.values()), 3),
    }


def floors(
    what: str,
    *,
    seconds: float,
    clients: int,
    path: str,
    body: Callable[[int], Any],
    calls: int,
    server_cpu_ms: Any,
    pinned_cpu_ms: Any = None,
    pinned: int | None = None,
    batch: float | None = None,
    pinned_calls: int | None = None,
) -> dict[str, Any]:
    """Both floors, their sum and what it allows on one core, and the measured server CPU a write over it
    (``pinned_over_floor``: the pinned server's, the fairer comparison: the floors run in one thread, with no
    hand-over between cores); ``native_floor_ms``, the HTTP floor plus the CPU the use case spends inside its
    native calls (signatures, hashes, SQLite, JSON, geometry, the sync), with no Python around them (an upper
    estimate, see the module's docstring): the
    writes a second that allows on one core, and the measured server CPU over it. For a message, the plain
    server too (:func:`minimal_floor`), unpinned and, with ``pinned`` (a CPU), pinned to it as the service
    was: what a server on this stack with nothing but a message's work achieves, and the service's CPU a
    message over it (unpinned over unpinned, pinned over pinned).

    ``batch``: the messages the measured server recorded together on average; the use case is then measured
    that many at a time too (``message_batched``, rounded to a whole number), and the floors are taken from
    it: that is the work the server did.

    For a notice, the plain notice server (:func:`plain_notice_floor`), unpinned and pinned alike, sent as
    many notices as the service took in that run (``calls``, ``pinned_calls``), so that its area is as full
    and its notices raise about as many conflicts (its ``conflicts_per_notice`` says how many)."""
    http = http_floor(seconds, clients, path, body)
    alone = service_floor(what, calls)
    out: dict[str, Any] = {"http_alone": http, f"{what}_alone": alone}
    together = round(batch) if isinstance(batch, int | float) else 1
    if what == "message" and together > 1:
        batched = out["message_batched"] = {"batch": together, **service_floor(what, calls, together)}
        if "cpu_ms" in batched:
            alone = batched
    if "cpu_ms" in alone and "server_cpu_ms_per_request" in http:
        total = http["server_cpu_ms_per_request"] + alone["cpu_ms"]
        out["floor_ms"] = round(total, 3)
        out["ceiling_per_core_s"] = round(1000 / total, 1) if total > 0 else None
        if isinstance(server_cpu_ms, int | float) and total > 0:
            out["measured_over_floor"] = round(server_cpu_ms / total, 2)
        if isinstance(pinned_cpu_ms, int | float) and total > 0:
            out["pinned_over_floor"] = round(pinned_cpu_ms / total, 2)
    native = alone.get("native_cpu_ms")
    if isinstance(native, int | float) and "server_cpu_ms_per_request" in http:
        least = http["server_cpu_ms_per_request"] + native
        out["native_floor_ms"] = round(least, 3)
        out["native_floor_per_core_s"] = round(1000 / least, 1) if least > 0 else None
        for key, measured in (("measured_over_native", server_cpu_ms), ("pinned_over_native", pinned_cpu_ms)):
            if isinstance(measured, int | float) and least > 0:
                out[key] = round(measured / least, 2)
    runs = [("plain_server", None, server_cpu_ms, calls)]
    if pinned is not None:
        runs.append(("plain_server_pinned", pinned, pinned_cpu_ms, pinned_calls or calls))
    for key, cpu, measured, most in runs:
        if what == "message":
            plain = out[key] = minimal_floor(seconds, clients, body, cpu=cpu)
        else:  # as many notices as the service took, however long that takes (the same area; a minute at most)
            plain = out[key] = plain_notice_floor(60.0, clients, body, most=most, cpu=cpu)
        spent = plain.get("server_cpu_ms_per_request")
        if isinstance(spent, int | float) and spent > 0:
            plain["per_core_s"] = round(1000 / spent, 1)
            if isinstance(measured, int | float):
                plain["service_over_it"] = round(measured / spent, 2)
    return out
