"""GeoJSON in and out: FeatureCollections of volumes, translated to domain types in one place.

Also the other half of the ``deconflict check`` batch contract: its conflicts document, written
straight from a :class:`~deconflict.detect.ConflictTable`.
Also the picture out (:func:`picture_geojson`): what one reader may see, as RFC 7946 GeoJSON.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from json.encoder import encode_basestring
from typing import TYPE_CHECKING, Any, TextIO

from deconflict.clock import iso, parse_utc
from deconflict.errors import InvalidInput
from deconflict.geo import Footprint, FootprintDraft, build_footprints, draft_footprint
from deconflict.model import ALT_MAX_M, ALT_MIN_M, Activity, Disclosure, Member, Volume

if TYPE_CHECKING:
    from deconflict.detect import ConflictTable

__all__ = ["UNBOUNDED_S", "load_json", "parse_volume", "picture_geojson", "volumes_from_geojson", "write_conflicts"]

UNBOUNDED_S = 1e12
"""Epoch seconds at or beyond which (either sign) a conflict's start or end is unbounded (JSON null)."""


def load_json(text: str | bytes, *, source: str) -> Any:
    """Parse JSON, turning a syntax error into a message with line and column."""
    try:
        return json.loads(text)
    except json.JSONDecodeError as e:
        raise InvalidInput(f"{source}: not valid JSON at line {e.lineno}, column {e.colno}: {e.msg}") from None
    except UnicodeDecodeError:
        raise InvalidInput(f"{source}: not UTF-8 text") from None


def _altitude(value: Any, field: str, where: str, default: float | None) -> float:
    if value is None:
        if default is None:
            raise InvalidInput(f"{where} {field}: missing; give metres above mean sea level", field=field)
        return default
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise InvalidInput(f"{where} {field}: expected metres as a number, got {value!r}", field=field)
    try:
        metres = float(value)
    except OverflowError:  # an integer beyond a double's range
        metres = math.inf if value > 0 else -math.inf
    if not math.isfinite(metres) and not isinstance(value, int):
        raise InvalidInput(f"{where} {field}: expected metres as a number, got {value!r}", field=field)
    if not ALT_MIN_M <= metres <= ALT_MAX_M:
        shown = f"{metres:g} m" if math.isfinite(metres) else "a number far too large"
        raise InvalidInput(
            f"{where} {field}: {shown} is outside the accepted band {ALT_MIN_M:g}..{ALT_MAX_M:g} m", field=field
        )
    return metres


def _text(value: Any, field: str, where: str) -> str:
    if isinstance(value, bool) or not isinstance(value, (str, int)) or str(value).strip() == "":
        raise InvalidInput(f"{where} {field}: missing or empty", field=field)
    return str(value).strip()


def parse_volume(
    props: dict[str, Any],
    geometry: Any,
    *,
    where: str,
    require_window: bool,
    default_id: str | None = None,
    party: str | None = None,
) -> Volume:
    """Validate one volume's properties and geometry; errors name ``where`` and the field."""
    head = _volume_head(props, geometry, where=where, default_id=default_id, party=party)
    (footprint,) = build_footprints([head.footprint])
    if isinstance(footprint, InvalidInput):
        raise _named(head.where, footprint)
    return head.volume(footprint, *_volume_tail(props, where=head.where, require_window=require_window))


@dataclass(frozen=True)
class _VolumeHead:
    """The fields checked before a volume's footprint is built: where, id, party, activity, footprint draft."""

    where: str
    id: str
    party: str
    activity: str | None
    footprint: FootprintDraft

    def volume(
        self, footprint: Footprint, start: datetime | None, end: datetime | None, floor_m: float, ceiling_m: float
    ) -> Volume:
        return Volume(self.id, footprint, floor_m, ceiling_m, start, end, party=self.party, activity=self.activity)


def _named(where: str, e: InvalidInput) -> InvalidInput:
    return InvalidInput(f"{where} {e.message}", field=e.field)


def _volume_head(
    props: dict[str, Any], geometry: Any, *, where: str, default_id: str | None, party: str | None
) -> _VolumeHead:
    raw_id = props.get("id")
    vid = _text(raw_id if raw_id is not None else default_id, "id", where)
    where = f"{where} (id {vid!r})"
    party = party if party is not None else _text(props.get("party"), "party", where)
    activity = props.get("activity")
    if activity is not None:
        activity = _text(activity, "activity", where)
    try:
        draft = draft_footprint(geometry, props.get("radius_m"), where="geometry")
    except InvalidInput as e:
        raise _named(where, e) from None
    return _VolumeHead(where, vid, party, activity, draft)


def _volume_tail(
    props: dict[str, Any], *, where: str, require_window: bool
) -> tuple[datetime | None, datetime | None, float, float]:
    """(start, end, floor_m, ceiling_m), checked after the footprint."""
    start = end = None
    for name in ("start", "end"):
        raw = props.get(name)
        if raw is None:
            if require_window:
                raise InvalidInput(f"{where} {name}: missing; give a UTC time such as 2025-04-09T08:00:00Z", field=name)
            continue
        try:
            value = parse_utc(raw, field=name)
        except InvalidInput as e:
            raise InvalidInput(f"{where} {e.message}", field=name) from None
        if name == "start":
            start = value
        else:
            end = value
    if start is not None and end is not None and not end > start:
        raise InvalidInput(f"{where} end: {iso(end)} is not after start {iso(start)}", field="end")
    default_floor = None if require_window else ALT_MIN_M
    default_ceiling = None if require_window else ALT_MAX_M
    floor = _altitude(props.get("floor_m"), "floor_m", where, default_floor)
    ceiling = _altitude(props.get("ceiling_m"), "ceiling_m", where, default_ceiling)
    if not floor < ceiling:
        raise InvalidInput(f"{where} floor_m: {floor:g} m is not below ceiling_m {ceiling:g} m", field="floor_m")
    return start, end, floor, ceiling


def volumes_from_geojson(doc: Any, *, source: str = "input", require_window: bool = False) -> list[Volume]:
    """Volumes from a FeatureCollection (one Feature a volume), ids unique.

    Each feature's fields are checked in turn; the footprints' geometry (circle extents,
    polygon validity) is checked for all features at once. The error reported is the one
    a feature-by-feature reading would meet first.
    """
    if not isinstance(doc, dict) or doc.get("type") != "FeatureCollection":
        raise InvalidInput(f"{source}: expected a GeoJSON FeatureCollection")
    features = doc.get("features")
    if not isinstance(features, list):
        raise InvalidInput(f"{source}: 'features' must be a list")
    heads: list[_VolumeHead] = []
    tails: list[tuple[datetime | None, datetime | None, float, float]] = []
    seen: dict[str, int] = {}
    error: InvalidInput | None = None
    try:
        for n, feature in enumerate(features):
            where = f"feature {n}"
            if not isinstance(feature, dict) or feature.get("type") != "Feature":
                raise InvalidInput(f"{where}: expected a GeoJSON Feature")
            props = feature.get("properties")
            if not isinstance(props, dict):
                raise InvalidInput(f"{where} properties: missing; each volume needs id and party", field="properties")
            default_id = feature.get("id") if isinstance(feature.get("id"), (str, int)) else None
            head = _volume_head(props, feature.get("geometry"), where=where, default_id=default_id, party=None)
            heads.append(head)
            tails.append(_volume_tail(props, where=head.where, require_window=require_window))
            if head.id in seen:
                raise InvalidInput(
                    f"{where} id: {head.id!r} is used twice (also by feature {seen[head.id]}); ids must be unique",
                    field="id",
                )
            seen[head.id] = n
    except InvalidInput as e:
        error = e
    footprints = build_footprints([h.footprint for h in heads])
    for head, footprint in zip(heads, footprints, strict=True):
        if isinstance(footprint, InvalidInput):
            raise _named(head.where, footprint)
    if error is not None:
        raise error
    return [
        head.volume(footprint, *tail)  # type: ignore[arg-type]
        for head, footprint, tail in zip(heads, footprints, tails, strict=True)
    ]


def write_conflicts(
    table: ConflictTable, volumes: Sequence[Volume], out: TextIO, *, rows_per_write: int = 20_000
) -> None:
    """Write the ``deconflict check`` document for a conflict table, one line.

    Byte for byte what ``json.dumps({"conflicts": [...]}, ensure_ascii=False)`` gives for the
    rows (keys a, b, distance_m and vertical_gap_m rounded to 2 decimals, party_a, party_b,
    activity_a, activity_b, start, end as ISO 8601 UTC or null), without a dict per row:
    each volume's strings are encoded once and rows are joined in blocks of ``rows_per_write``.
    """
    if len(table) == 0:
        out.write('{"conflicts": []}\n')
        return
    ids = [encode_basestring(v.id) for v in volumes]
    parties = [encode_basestring(v.party) for v in volumes]
    activities = ["null" if v.activity is None else encode_basestring(v.activity) for v in volumes]
    starts = _instants(table.start_from, table.start_s)
    ends = _instants(table.end_from, table.end_s)
    out.write('{"conflicts": [')
    for lo in range(0, len(table), rows_per_write):
        block = slice(lo, lo + rows_per_write)
        rows = zip(
            table.a[block].tolist(),
            table.b[block].tolist(),
            table.distance_m[block].tolist(),
            table.vertical_gap_m[block].tolist(),
            table.start_from[block].tolist(),
            table.end_from[block].tolist(),
            strict=True,
        )
        text = ", ".join(
            f'{{"a": {ids[a]}, "b": {ids[b]}, "distance_m": {round(d, 2)!r}, "vertical_gap_m": {round(g, 2)!r}, '
            f'"party_a": {parties[a]}, "party_b": {parties[b]}, "activity_a": {activities[a]}, '
            f'"activity_b": {activities[b]}, "start": {starts[s]}, "end": {ends[e]}}}'
            for a, b, d, g, s, e in rows
        )
        out.write(text if lo == 0 else ", " + text)
    out.write("]}\n")


def _instants(volume: Any, seconds: Any) -> dict[int, str]:
    """JSON text (quoted ISO 8601 UTC, or null when unbounded) of each volume's instant, keyed by volume index."""
    found: dict[int, str] = {}
    for k, s in zip(volume.tolist(), seconds.tolist(), strict=True):
        if k not in found:
            bounded = -UNBOUNDED_S < s < UNBOUNDED_S
            found[k] = f'"{iso(datetime.fromtimestamp(s, UTC))}"' if bounded else "null"
    return found


# --- the picture out (RFC 7946), as one reader may see it ----------------------------------------


def _rfc7946_geometry(geometry: dict[str, Any], radius_m: float | None) -> dict[str, Any]:
    """A footprint's geometry as RFC 7946 has it: a circle (a Point and a radius, which GeoJSON cannot say)
    drawn as its geodesic ring; every exterior ring counterclockwise and holes clockwise (the right-hand
    rule, 3.1.6); positions lon, lat."""
    from shapely.geometry import MultiPolygon, Polygon, mapping, shape
    from shapely.geometry.polygon import orient

    from deconflict.geo import circle_ring

    if geometry.get("type") == "Point" and radius_m:
        lon, lat = geometry["coordinates"][:2]
        return mapping(orient(Polygon(circle_ring(float(lon), float(lat), float(radius_m))), sign=1.0))
    geom = shape(geometry)
    if isinstance(geom, Polygon):
        return mapping(orient(geom, sign=1.0))
    if isinstance(geom, MultiPolygon):
        return mapping(MultiPolygon([orient(p, sign=1.0) for p in geom.geoms]))
    return mapping(geom)


def _feature(fid: str, geometry: dict[str, Any], radius_m: float | None, props: dict[str, Any]) -> dict[str, Any]:
    out_props = dict(props)
    if radius_m and geometry.get("type") == "Point":
        out_props["centre"] = list(geometry["coordinates"][:2])
        out_props["radius_m"] = radius_m
    return {"type": "Feature", "id": fid, "geometry": _rfc7946_geometry(geometry, radius_m), "properties": out_props}


def picture_geojson(
    *,
    mechanism_id: str,
    reader: Member,
    disclosure: Disclosure,
    activities: Sequence[Activity],
    zones: Sequence[dict[str, Any]],
    conflicts: Sequence[dict[str, Any]],
    tracks: Sequence[dict[str, Any]] = (),
) -> dict[str, Any]:
    """The picture ``reader`` may see as one RFC 7946 FeatureCollection: zones, the volumes of notices it may
    see whole, only the overlap parts of those it may not (:mod:`deconflict.disclosure`: the same
    ``sees_whole_notices`` / ``partial_activity`` the API's views read through), and the tracks given
    (already the reader's: ``Service.tracks(reader=...)``). Every feature says its ``layer``.

    Circles are drawn as rings (their centre and radius kept in the properties); altitudes are metres
    above mean sea level, times ISO 8601 UTC. No ``crs`` member: RFC 7946 coordinates are WGS 84.
    """
    from deconflict.disclosure import conflict_for, partial_activity, sees_whole_notices
    from deconflict.formats.docs import activity_to_doc

    visible = [c for c in (conflict_for(reader, dict(c), disclosure) for c in conflicts) if c is not None]
    features: list[dict[str, Any]] = []
    for z in zones:
        props = {
            k: z[k] for k in ("owner", "kind", "name", "forbids", "valid_from", "valid_to", "floor_m", "ceiling_m")
        }
        features.append(_feature(f"zone/{z['id']}", z["geometry"], z.get("radius_m"), {"layer": "zone", **props}))
    for a in activities:
        doc = activity_to_doc(a)
        head = {"activity": doc["id"], "party": doc["party"], "kind": doc["kind"], "state": doc["state"]}
        head["version"] = doc["version"]
        if sees_whole_notices(reader, disclosure, a.party):
            for v in doc["volumes"]:
                props = {"layer": "activity", **head, "title": doc["title"], "volume": v["id"]}
                props |= {k: v[k] for k in ("floor_m", "ceiling_m", "start", "end")}
                features.append(_feature(f"activity/{doc['id']}/{v['id']}", v["geometry"], v.get("radius_m"), props))
            continue
        for n, part in enumerate(partial_activity(doc, visible, reader)["overlap"]):
            props = {"layer": "overlap", **head, "partial": True}
            props |= {k: part.get(k) for k in ("floor_m", "ceiling_m", "start", "end")}
            features.append(_feature(f"overlap/{doc['id']}/{n}", part["geometry"], None, props))
    for t in tracks:
        props = {"layer": "track", **{k: v for k, v in t.items() if k not in ("lat", "lon")}}
        point = {"type": "Point", "coordinates": [t["lon"], t["lat"]]}
        features.append(
            {"type": "Feature", "id": f"track/{t.get('track', t['id'])}", "geometry": point, "properties": props}
        )
    return {"type": "FeatureCollection", "mechanism": mechanism_id, "features": features}
