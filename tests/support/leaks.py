"""What a member received, held to what the disclosure rules allow it to learn of another party's notice.

``Envelope``: the allowed overlap region (lon/lat), band and window of one notice as another party may
learn it. ``breaches`` walks every JSON document a member received and names every geometry, band or
time about that notice lying outside its envelope. ``read_all`` fetches what a member can read over
HTTP from every reading route (conflicts, activities, the record, the stream, replay)."""

from __future__ import annotations

import functools
import json
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import numpy as np
import shapely
import shapely.prepared
from shapely.geometry import Polygon, shape

from deconflict.clock import iso
from deconflict.geo import WGS84

from .builders import A
from .live import SSEReader, auth

__all__ = ["TOLERANCE_DEG", "Envelope", "breaches", "circle", "mentions", "read_all", "walk"]

TOLERANCE_DEG = 0.001
"""How far (about 100 m) a disclosed geometry may stray from the allowed region: the service cuts circles
into 64-gons in its own projection, the test into 360-gons on the ellipsoid."""

BAND_KEYS = ("floor_m", "ceiling_m", "floor", "ceiling")
TIME_KEYS = ("start", "end", "t1", "t2")


def circle(centre: Sequence[float], radius_m: float, n: int = 360) -> Polygon:
    """A geodesic circle as a lon/lat polygon."""
    az = np.linspace(0.0, 360.0, n, endpoint=False)
    lons, lats, _ = WGS84.fwd(np.full(n, centre[0]), np.full(n, centre[1]), az, np.full(n, radius_m))
    return Polygon(list(zip(lons.tolist(), lats.tolist(), strict=True)))


@dataclass
class Envelope:
    """What a reader may learn of one notice: where (``region``, or None: no geometry at all), which
    altitudes (``band``, or None: none) and when (``window``)."""

    region: Any
    band: tuple[float, float] | None
    window: tuple[datetime, datetime]

    @functools.cached_property
    def _allowed(self) -> Any:
        """The region with its tolerance, made once (a 360-gon's buffer, thousands of documents each)."""
        return shapely.prepared.prep(self.region.buffer(TOLERANCE_DEG))

    def why_not(self, doc: dict[str, Any]) -> list[str]:
        """What in one document (not its children) lies outside the envelope."""
        out = []
        if isinstance(doc.get("geometry"), dict) and "type" in doc["geometry"]:
            geom = shape(doc["geometry"])
            if self.region is None:
                out.append(f"a geometry where none may be disclosed: {doc['geometry']['type']}")
            elif not self._allowed.covers(geom):
                far = shapely.distance(self.region, shapely.points(shapely.get_coordinates(geom))).max()
                out.append(f"geometry reaches {far * 111_000:.0f} m outside the allowed overlap")
        for key in BAND_KEYS:
            value = _number(doc.get(key))
            if value is not None and (self.band is None or not (self.band[0] - 0.5 <= value <= self.band[1] + 0.5)):
                out.append(f"{key} {value} outside the allowed band {self.band}")
        for key in TIME_KEYS:
            t = _time(doc.get(key))
            if t is not None and not (self.window[0] - MINUTE < t < self.window[1] + MINUTE):
                out.append(f"{key} {doc[key]} outside the allowed window {iso(self.window[0])}..{iso(self.window[1])}")
        return out


MINUTE = timedelta(minutes=1)
"""A hotline message's times are worded to the minute."""


def _number(value: Any) -> float | None:
    """A band value as a document or a message's parameters carry it (a number, or its text)."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return float(value)
    try:
        return float(value) if isinstance(value, str) else None
    except ValueError:
        return None


def _time(value: Any) -> datetime | None:
    """An instant as documents (ISO 8601 UTC) or message parameters (UTC, to the minute) carry it."""
    if not isinstance(value, str) or not value[:4].isdigit():
        return None
    t = datetime.fromisoformat(value.replace("Z", "+00:00"))
    return t if t.tzinfo is not None else t.replace(tzinfo=UTC)


def walk(node: Any) -> Iterator[dict[str, Any]]:
    """Every JSON object in a document, depth first."""
    if isinstance(node, dict):
        yield node
        for v in node.values():
            yield from walk(v)
    elif isinstance(node, list):
        for v in node:
            yield from walk(v)


def mentions(doc: dict[str, Any], activity_id: str) -> bool:
    """Whether an object names the activity directly (as a value, or in a list value)."""
    return any(v == activity_id or (isinstance(v, list) and activity_id in v) for v in doc.values())


def breaches(received: Any, activity_id: str, envelope: Envelope) -> list[str]:
    """Everything about ``activity_id`` in ``received`` (each object naming it, and all within that object)
    that lies outside ``envelope``; skips what names the reader's own notices only through ``own``."""
    found = []
    for doc in walk(received):
        if mentions(doc, activity_id):
            for inner in walk(doc):
                found += [f"{why} in {json.dumps(inner)[:160]}" for why in envelope.why_not(inner)]
    return found


def read_all(client: httpx.Client, token: str, *, at: datetime) -> dict[str, Any]:
    """What a member can read of the mechanism over HTTP, by route."""
    h = auth(token)
    got: dict[str, Any] = {
        "conflicts": client.get(f"{A}/conflicts", headers=h).json(),
        "activities": client.get(f"{A}/activities", headers=h).json(),
        "record": client.get(f"{A}/record", params={"limit": 5000}, headers=h).json(),
        "replay": client.get(f"{A}/replay", params={"at": iso(at)}, headers=h).json(),
    }
    got["conflict"] = [client.get(f"{A}/conflicts/{c['id']}", headers=h).json() for c in got["conflicts"]]
    got["activity"] = [client.get(f"{A}/activities/{a['id']}", headers=h).json() for a in got["activities"]]
    head = got["record"]["entries"][-1]["seq"]
    reader = SSEReader(client, f"{A}/events?after=0", h)
    events = []
    try:
        while not events or events[-1]["seq"] < head:
            _, kind, data = reader.next_event()
            if kind != "checkpoint":
                events.append(data)
    finally:
        reader.close()
    got["events"] = events
    return got
