"""A small Python client for a party's side: every write it makes is signed with the party's own key.

The private key never leaves the party. Each write goes out twice: first *prepared*
(``Deconflict-Prepare: true``), and the service answers with the exact record entry it would
append, appending nothing; the client recomputes that entry's hash itself, checks that the
entry is the one it asked for (its actor, its type, the chain position it names), signs the
hash, and sends the same request again with the signature. If the record moved on in between
(another entry was appended), the service refuses with 409 and the client prepares again.

    >>> from deconflict.record.signing import KeyPair
    >>> c = Client("http://127.0.0.1:8080", "dcf_x", key=KeyPair.from_seed(bytes(32)), connect=False)
    >>> c.key_id
    'ed25519:139e3940e64b5491722088d9'
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any
from urllib.parse import quote

import httpx

from deconflict.clock import parse_utc
from deconflict.errors import DeconflictError
from deconflict.hotline.messages import ACK_PHRASES
from deconflict.hotline.wording import format_param
from deconflict.record import signing
from deconflict.record.chain import canonical, entry_hash, sha256_hex
from deconflict.record.strict_json import load_json

__all__ = ["API", "RETRIES", "Client", "ClientError", "raise_for"]

API = "/api/v1"
RETRIES = 3


class ClientError(DeconflictError):
    """The service refused a request, or answered with something the client cannot accept.

    ``status`` is the HTTP status of a refusal (0 when the client itself refused), ``field`` the
    field the service named, and ``detail`` its words without the status prefix."""

    def __init__(self, message: str, *, field: str | None = None, status: int = 0, detail: str = "") -> None:
        super().__init__(message, field=field)
        self.status = status
        self.detail = detail or message


class Client:
    """A member's connection to the service; with ``key``, writes are signed on this side."""

    def __init__(
        self,
        url: str,
        token: str,
        *,
        key: signing.KeyPair | None = None,
        timeout: float = 15.0,
        connect: bool = True,
    ) -> None:
        self.key = key
        self.http = httpx.Client(
            base_url=url.rstrip("/") + API, headers={"Authorization": f"Bearer {token}"}, timeout=timeout
        )
        self.mechanism = ""
        self.member = ""
        self.party = ""
        self.language = ""
        self.now = ""
        if connect:
            try:
                me = self.http.get("/me")
            except httpx.TransportError as e:
                raise ClientError(f"cannot reach the service at {url}: {e}") from None
            doc = _json(me)
            self.mechanism, self.member = doc["mechanism"], doc["member"]["id"]
            self.party = doc["member"].get("party", "")
            self.language = doc["member"].get("language", "")
            self.now = doc.get("now", "")  # the service's clock, which decides what is in force

    @property
    def key_id(self) -> str | None:
        return self.key.key_id if self.key is not None else None

    # --- the writes a duty officer makes ----------------------------------------------------------

    def notify(self, *, kind: str, volumes: list[dict[str, Any]], id: str | None = None, title: str = "") -> Any:
        body: dict[str, Any] = {"kind": kind, "volumes": volumes, "title": title}
        if id is not None:
            body["id"] = id
        return self.write("POST", f"/mechanisms/{self.mechanism}/activities", body, expect="activity.notified")

    def amend(self, activity_id: str, *, version: int, **changes: Any) -> Any:
        body = {"version": version, **changes}
        path = f"/mechanisms/{self.mechanism}/activities/{_segment(activity_id)}"
        return self.write("PUT", path, body, expect="activity.amended", about=activity_id)

    def cancel(self, activity_id: str, *, version: int | None = None) -> Any:
        path = f"/mechanisms/{self.mechanism}/activities/{_segment(activity_id)}/cancel"
        body = {"version": version} if version is not None else None
        return self.write("POST", path, body, expect="activity.cancelled", about=activity_id)

    def acknowledge_conflict(self, conflict_id: str) -> Any:
        path = f"/mechanisms/{self.mechanism}/conflicts/{_segment(conflict_id)}/acknowledge"
        return self.write("POST", path, None, expect="conflict.acknowledged", about=conflict_id)

    def resolve_conflict(self, conflict_id: str, *, resolution: str, note: str = "") -> Any:
        path = f"/mechanisms/{self.mechanism}/conflicts/{_segment(conflict_id)}/resolve"
        body = {"resolution": resolution, "note": note}
        return self.write("POST", path, body, expect="conflict.resolved", about=conflict_id)

    def send_message(self, **message: Any) -> Any:
        return self.write("POST", f"/mechanisms/{self.mechanism}/messages", message, expect="message.sent")

    def acknowledge_message(self, message_id: str) -> Any:
        path = f"/mechanisms/{self.mechanism}/messages/{_segment(message_id)}/acknowledge"
        return self.write("POST", path, None, expect="message.acknowledged", about=message_id)

    def report_tracks(self, reports: list[dict[str, Any]]) -> Any:
        """Position reports of the member's party (not record entries: nothing to sign)."""
        return _json(self.http.post(f"/mechanisms/{self.mechanism}/tracks", json={"reports": reports}))

    # --- what a duty officer reads -----------------------------------------------------------------

    def activity(self, activity_id: str) -> Any:
        """An activity as the member may see it, with its current ``version`` and its history."""
        return _json(self.http.get(f"/mechanisms/{self.mechanism}/activities/{_segment(activity_id)}"))

    def activities(self, *, include_closed: bool = False) -> Any:
        params = {"include_closed": "true"} if include_closed else None
        return _json(self.http.get(f"/mechanisms/{self.mechanism}/activities", params=params))

    def conflicts(self, *, status: str | None = None) -> Any:
        params = {"status": status} if status else None
        return _json(self.http.get(f"/mechanisms/{self.mechanism}/conflicts", params=params))

    # --- the record, its checkpoints and proofs (what a party's mirror reads) -------------------------

    def record_page(self, after: int = 0, *, limit: int = 1000) -> list[dict[str, Any]]:
        """The member's copy of the record: entries after ``after`` (withheld ones with hashes only)."""
        params = {"after": after, "limit": limit}
        response = self.http.get(f"/mechanisms/{self.mechanism}/record", params=params)
        raise_for(response)
        return list(load_json(response.content)["entries"])  # strictly: a repeated key or NaN is refused

    def checkpoints(self, *, after: int = 0, with_cosignatures: bool = False) -> list[dict[str, Any]]:
        """Signed checkpoints after entry ``after``, oldest first, each with its C2SP ``note``."""
        params: dict[str, Any] = {"after": after}
        if with_cosignatures:
            params["with_cosignatures"] = "true"
        return list(_json(self.http.get(f"/mechanisms/{self.mechanism}/checkpoints", params=params))["checkpoints"])

    def record_all(self, *, page: int = 1000) -> Iterator[dict[str, Any]]:
        """The member's whole copy of the record, page after page, in order (withheld entries with hashes only)."""
        after = 0
        while batch := self.record_page(after, limit=page):
            yield from batch
            after += len(batch)

    def all_checkpoints(self, *, with_cosignatures: bool = False) -> list[dict[str, Any]]:
        """Every signed checkpoint, oldest first, each with its ``note`` (page after page).

        Raises:
            ClientError: a page does not move on (a checkpoint without a whole ``seq`` after the last one).
        """
        out: list[dict[str, Any]] = []
        while page := self.checkpoints(after=out[-1]["seq"] if out else 0, with_cosignatures=with_cosignatures):
            last = out[-1]["seq"] if out else 0
            if any(type(c.get("seq")) is not int or c["seq"] <= last for c in page):
                raise ClientError(f"the service's checkpoints after entry {last} are not in order by a whole seq")
            out += page
        return out

    def keys(self) -> list[dict[str, Any]]:
        """Every key the record registered, as the service lists them (``GET .../keys``)."""
        body = _json(self.http.get(f"/mechanisms/{self.mechanism}/keys"))
        found = body.get("keys") if isinstance(body, dict) else None
        if not isinstance(found, list) or not all(isinstance(k, dict) for k in found):
            raise ClientError("the service's list of keys is not a list of keys")
        return found

    def note_keys(self) -> dict[str, Any]:
        """The verifier keys (vkeys) of the service's checkpoint notes and of the parties' cosignatures."""
        return dict(_json(self.http.get(f"/mechanisms/{self.mechanism}/checkpoints/keys")))

    def consistency(self, first: int, second: int) -> dict[str, Any]:
        """The service's RFC 9162 consistency proof from size ``first`` to ``second`` (base64 hashes)."""
        params = {"from": first, "to": second}
        return dict(_json(self.http.get(f"/mechanisms/{self.mechanism}/proof/consistency", params=params)))

    def inclusion(self, seq: int, size: int) -> dict[str, Any]:
        """The service's RFC 9162 inclusion proof of entry ``seq`` in the tree of ``size`` entries."""
        params = {"seq": seq, "size": size}
        return dict(_json(self.http.get(f"/mechanisms/{self.mechanism}/proof/inclusion", params=params)))

    def cosign(self, seq: int, line: str) -> dict[str, Any]:
        """Post this party's cosignature line of checkpoint ``seq``; the answer carries the cosigned note."""
        path = f"/mechanisms/{self.mechanism}/checkpoints/{seq}/cosignature"
        return dict(_json(self.http.post(path, json={"cosignature": line})))

    def events(self, after: int, *, read_timeout_s: float = 60.0) -> Iterator[tuple[str, Any]]:
        """The record's event stream from entry ``after`` on (sent as ``Last-Event-ID``): (event, data) pairs,
        entries and ``checkpoint`` events alike, until the connection ends (then the iterator ends).

        ``data`` is parsed strictly (:func:`deconflict.record.strict_json.load_json`): a repeated key or a
        non-finite number raises ValueError naming it."""
        headers = {"Last-Event-ID": str(after)}
        timeout = httpx.Timeout(15.0, read=read_timeout_s)
        with self.http.stream("GET", f"/mechanisms/{self.mechanism}/events", headers=headers, timeout=timeout) as r:
            raise_for(r)
            data: list[str]
            event, data = "message", []
            for line in r.iter_lines():
                if line == "":
                    if data:
                        yield event, load_json("\n".join(data))
                    event, data = "message", []
                elif not line.startswith(":"):
                    name, _, value = line.partition(":")
                    value = value.removeprefix(" ")
                    if name == "event":
                        event = value
                    elif name == "data":
                        data.append(value)

    # --- the protocol -----------------------------------------------------------------------------

    def write(self, method: str, path: str, body: Any, *, expect: str, about: str | None = None) -> Any:
        """Send a write; signed on this side when the client has a key (``about``: the activity, conflict or
        message the path names, which the prepared entry must be about)."""
        if self.key is None:
            return _json(self.http.request(method, path, json=body))
        for _ in range(RETRIES):
            prepared = _json(self.http.request(method, path, json=body, headers={"Deconflict-Prepare": "true"}))
            entry = prepared.get("prepared") if isinstance(prepared, dict) else None
            if not isinstance(entry, dict):
                raise ClientError("the service did not return a prepared entry to sign")
            self._check(entry, expect, body, about, prepared.get("canonical_payload"))
            headers = {
                "Deconflict-Signed-At": entry["at"],
                "Deconflict-Entry-Hash": entry["hash"],
                "Deconflict-Key-Id": self.key.key_id,
                "Deconflict-Signature": self.key.sign_entry(entry["hash"]),
            }
            response = self.http.request(method, path, json=body, headers=headers)
            if response.status_code == 409 and _field(response) == "signature":
                continue  # the record moved on: prepare again
            return _json(response)
        raise ClientError(f"the record kept moving on; {RETRIES} attempts to sign were overtaken")

    def _check(self, entry: dict[str, Any], expect: str, body: Any, about: str | None, text: Any = None) -> None:
        """Sign only what was asked for: the actor, the type (acknowledging a conflict's alert appends the
        conflict's acknowledgement naming the alert), the mechanism, the hash computed again, and the payload
        holding every field of the request's body and the id of its path (:func:`asked`)."""
        types = (expect, "conflict.acknowledged") if expect == "message.acknowledged" else (expect,)
        kind = entry.get("type")
        if entry.get("actor") != self.member or kind not in types or entry.get("mechanism") != self.mechanism:
            raise ClientError(
                f"the service prepared {kind} by {entry.get('actor')}, not {expect} by {self.member}; "
                "nothing was signed"
            )
        payload = entry.get("payload")
        # the canonical text the service sent with it, when it did, is the payload the hash covers
        if text is not None and (not isinstance(text, str) or load_json(text.encode()) != payload):
            raise ClientError("the prepared entry's payload is not its canonical text; nothing was signed")
        if sha256_hex(canonical(payload)) != entry.get("payload_hash"):
            raise ClientError("the prepared entry's payload does not match its hash; nothing was signed")
        digest = entry_hash(
            mechanism=self.mechanism,
            seq=int(entry["seq"]),
            at=parse_utc(entry["at"], field="at"),
            actor=self.member,
            type=str(kind),
            payload_hash=entry["payload_hash"],
            prev_hash=entry["prev_hash"],
        )
        if digest != entry.get("hash"):
            raise ClientError("the prepared entry's hash does not match its contents; nothing was signed")
        if not asked(str(kind), payload, body, about=about, party=self.party, request=expect):
            raise ClientError(
                f"the service prepared {kind} with other contents than the request's ({_short(payload)}); "
                "nothing was signed"
            )


def _short(payload: Any) -> str:
    text = repr(payload)
    return text if len(text) <= 200 else text[:197] + "..."


def _holds(sent: Any, got: Any) -> bool:
    """Whether ``got`` (a prepared payload's part) holds ``sent`` (the request's): every field given (not
    None) the same at any depth, numbers equal (a number the same as its text), times the same instant, text
    but for the spaces around it (the service trims a title, a free text, a note), lists in order; what the
    service adds is not compared."""
    if sent is None:
        return True
    if isinstance(sent, dict):
        return isinstance(got, dict) and all(_holds(v, got.get(k)) for k, v in sent.items() if v is not None)
    if isinstance(sent, (list, tuple)):
        return isinstance(got, list) and len(got) == len(sent) and all(map(_holds, sent, got))
    if isinstance(sent, bool) or isinstance(got, bool):
        return sent is got
    if isinstance(sent, (int, float)):
        try:
            value = float(got) if isinstance(got, str) else got
        except ValueError:
            return False
        return isinstance(value, (int, float)) and abs(sent - value) <= 1e-9 * max(1.0, abs(sent))
    if isinstance(sent, str) and isinstance(got, str):
        if sent.strip() == got.strip():
            return True  # text as the service keeps it, trimmed of the spaces around it
        try:  # a time, written another way
            return parse_utc(sent, field="sent") == parse_utc(got, field="got")
        except DeconflictError:
            return False
    return bool(sent == got)


def _settles_only(settles: Any, template: Any, ref: Any) -> bool:
    """Whether what a prepared message settles (acknowledges) is what its phrase may: nothing, or, for a
    phrase that acknowledges, the conflict or the alert its ``ref`` names (and that alert's conflict)."""
    if not settles:
        return True
    if template not in ACK_PHRASES or not isinstance(settles, dict) or not isinstance(ref, str):
        return False
    conflicts, messages = settles.get("conflicts") or [], settles.get("messages") or []
    return isinstance(conflicts, list) and len(conflicts) <= 1 and (ref in conflicts or ref in messages)


def _as_stored(volume: Any) -> Any:
    """A volume as sent, in the form the service stores it: positions of two numbers (GeoJSON's optional
    altitude dropped), the geometry's type and coordinates only, a radius only for a circle's centre."""
    if not isinstance(volume, dict) or not isinstance(volume.get("geometry"), dict):
        return volume
    geometry = volume["geometry"]
    out = {k: v for k, v in volume.items() if k != "radius_m" or geometry.get("type") == "Point"}
    out["geometry"] = {"type": geometry.get("type"), "coordinates": _flat(geometry.get("coordinates"))}
    return out


def _flat(coordinates: Any) -> Any:
    """GeoJSON coordinates with each position cut to (lon, lat)."""
    if isinstance(coordinates, list) and coordinates and not isinstance(coordinates[0], list):
        return coordinates[:2]
    if isinstance(coordinates, list):
        return [_flat(c) for c in coordinates]
    return coordinates


def _param(name: str, sent: Any, got: Any) -> bool:
    try:
        return format_param(name, sent) == got
    except DeconflictError:
        return False


def asked(kind: str, payload: Any, body: Any, *, about: str | None, party: str, request: str) -> bool:
    """Whether a prepared entry of type ``kind`` with ``payload`` is what a ``request`` (an entry type) with
    ``body`` about ``about`` asked for, by a member of ``party`` (the page's signing.js checks the same)."""
    b = dict(body) if isinstance(body, dict) else {}
    if not isinstance(payload, dict):
        return False
    if "volumes" in b and isinstance(b["volumes"], list):
        b["volumes"] = [_as_stored(v) for v in b["volumes"]]
    if kind == "activity.notified":
        return payload.get("party") == party and _holds(b, payload)
    if kind == "activity.amended":
        version = b.pop("version", None)
        return payload.get("id") == about and payload.get("version") == (version or 0) + 1 and _holds(b, payload)
    if kind == "activity.cancelled":
        version = b.get("version")
        return (
            payload.get("id") == about
            and payload.get("state") == "cancelled"
            and (version is None or payload.get("version") == version + 1)
        )
    if kind == "conflict.acknowledged":
        if payload.get("party") != party:
            return False
        if request == "conflict.acknowledged":
            return payload.get("id") == about
        return isinstance(payload.get("messages"), list) and about in payload["messages"]
    if kind == "conflict.resolved":
        return payload.get("id") == about and _holds(b, payload)
    if kind == "message.sent":
        to, params = b.pop("to", None), b.pop("params", None) or {}
        template, subject = b.get("template"), b.get("about")
        same = to is None or sorted(set(map(str, to))) == sorted(set(map(str, payload.get("to") or [])))
        got = payload.get("params")
        # a phrase's parameters are stored as the service words them (times to the minute in UTC, numbers to
        # two decimals): each sent one worded so, then compared; a free text has none
        worded = isinstance(got, dict) and all(_param(k, v, got.get(k)) for k, v in params.items())
        worded = worded and (template is not None or not got)
        # nothing the request did not say: no template made of a free text, no subject it did not name, and
        # an acknowledgement only by a phrase that acknowledges, of what its ref names
        plain = payload.get("template") == template and payload.get("about") == subject
        return (
            payload.get("from_party") == party
            and same
            and worded
            and plain
            and _settles_only(payload.get("settles"), template, params.get("ref"))
            and _holds(b, payload)
        )
    if kind == "message.acknowledged":
        return payload.get("id") == about and payload.get("party") == party
    return False


def _field(response: httpx.Response) -> str | None:
    try:
        return response.json().get("field")
    except ValueError:
        return None


def _segment(value: str) -> str:
    """An id as one path segment (a '/' or '?' in it cannot reach another route)."""
    return quote(value, safe="")


def raise_for(response: httpx.Response) -> None:
    """Raise :class:`ClientError` with the service's own words when it refused the request."""
    if response.status_code >= 400:
        response.read()  # a streamed response has not read its body yet
        field = None
        try:
            doc = response.json()
            detail = doc.get("detail", response.text) if isinstance(doc, dict) else response.text
            field = doc.get("field") if isinstance(doc, dict) else None
        except ValueError:
            detail = response.text
        raise ClientError(
            f"the service refused ({response.status_code}): {detail}",
            field=field,
            status=response.status_code,
            detail=str(detail),
        )


def _json(response: httpx.Response) -> Any:
    raise_for(response)
    return response.json()
