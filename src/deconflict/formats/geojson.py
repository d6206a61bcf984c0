"""GeoJSON in and out: FeatureCollections of volumes, translated to domain types in one place."""

from __future__ import annotations

import json
import math
from typing import Any

from deconflict.clock import iso, parse_utc
from deconflict.errors import InvalidInput
from deconflict.geo import parse_footprint
from deconflict.model import ALT_MAX_M, ALT_MIN_M, Volume


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
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise InvalidInput(f"{where} {field}: expected metres as a number, got {value!r}", field=field)
    if not ALT_MIN_M <= value <= ALT_MAX_M:
        raise InvalidInput(
            f"{where} {field}: {value:g} m is outside the accepted band {ALT_MIN_M:g}..{ALT_MAX_M:g} m", field=field
        )
    return float(value)


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
    raw_id = props.get("id")
    vid = _text(raw_id if raw_id is not None else default_id, "id", where)
    where = f"{where} (id {vid!r})"
    party = party if party is not None else _text(props.get("party"), "party", where)
    activity = props.get("activity")
    if activity is not None:
        activity = _text(activity, "activity", where)
    try:
        footprint = parse_footprint(geometry, props.get("radius_m"), where="geometry")
    except InvalidInput as e:
        raise InvalidInput(f"{where} {e.message}", field=e.field) from None
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
    return Volume(vid, footprint, floor, ceiling, start, end, party=party, activity=activity)


def volumes_from_geojson(doc: Any, *, source: str = "input", require_window: bool = False) -> list[Volume]:
    """Volumes from a FeatureCollection (one Feature a volume), ids unique."""
    if not isinstance(doc, dict) or doc.get("type") != "FeatureCollection":
        raise InvalidInput(f"{source}: expected a GeoJSON FeatureCollection")
    features = doc.get("features")
    if not isinstance(features, list):
        raise InvalidInput(f"{source}: 'features' must be a list")
    volumes: list[Volume] = []
    seen: dict[str, int] = {}
    for n, feature in enumerate(features):
        where = f"feature {n}"
        if not isinstance(feature, dict) or feature.get("type") != "Feature":
            raise InvalidInput(f"{where}: expected a GeoJSON Feature")
        props = feature.get("properties")
        if not isinstance(props, dict):
            raise InvalidInput(f"{where} properties: missing; each volume needs id and party", field="properties")
        default_id = feature.get("id") if isinstance(feature.get("id"), (str, int)) else None
        volume = parse_volume(
            props, feature.get("geometry"), where=where, require_window=require_window, default_id=default_id
        )
        if volume.id in seen:
            raise InvalidInput(
                f"{where} id: {volume.id!r} is used twice (also by feature {seen[volume.id]}); ids must be unique",
                field="id",
            )
        seen[volume.id] = n
        volumes.append(volume)
    return volumes
