"""Mechanisms as data: read and validate a mechanism file (TOML), and its document form."""

from __future__ import annotations

import dataclasses
import difflib
import tomllib
from pathlib import Path
from typing import Any

import shapely
from shapely.geometry import mapping, shape

from deconflict.errors import InvalidInput
from deconflict.formats.docs import (
    RULE_KEYS,
    identifier,
    member_to_doc,
    number,
    parse_member,
    parse_rules,
    parse_zone,
    rules_to_doc,
    text,
    zone_to_doc,
)
from deconflict.formats.geojson import load_json
from deconflict.geo import Frame, parse_footprint
from deconflict.model import Disclosure, Mechanism, Role, Rules

CAPS: dict[str, tuple[float, float]] = {
    "max_notice_area_km2": (1.0, 10_000_000.0),
    "max_notice_band_m": (100.0, 30_500.0),
    "max_notice_hours": (1.0, 24.0 * 366),
    "previews_per_hour": (0.0, 10_000.0),
}
"""The rules that bound what a party can learn of another's notice (docs/disclosure.md): what one notice
may cover under ``conflicts-only`` (area, band, span) and how many previews a member may ask for an hour;
each with its accepted range."""


def with_caps(rules: Rules, doc: Any, where: str = "rules") -> Rules:
    """The rules with the caps a mechanism document gives (the defaults where it gives none).

    Raises:
        InvalidInput: a cap that is not a number in its range (named).
    """
    if not isinstance(doc, dict):
        return rules
    changes: dict[str, Any] = {}
    for name, (lo, hi) in CAPS.items():
        if name in doc:
            value = number(doc[name], f"{where} {name}", minimum=lo, maximum=hi)
            changes[name] = int(value) if name == "previews_per_hour" else value
    return dataclasses.replace(rules, **changes) if changes else rules


def caps_to_doc(rules: Rules) -> dict[str, Any]:
    """The caps as a mechanism's recorded rules carry them: all of them under ``conflicts-only`` (where
    they bound what a party learns), otherwise only those that differ from the defaults (so a record of a
    ``full`` mechanism reads as it did before the caps)."""
    default = Rules(0, 0, 0, 0, 0, ())
    caps = {name: getattr(rules, name) for name in CAPS}
    if rules.disclosure is Disclosure.FULL:
        caps = {k: v for k, v in caps.items() if v != getattr(default, k)}
    return caps


def _area_geometry(doc: dict[str, Any], base: Path, where: str) -> Any:
    if "geojson" in doc:
        path = base / str(doc["geojson"])
        if not path.is_file():
            raise InvalidInput(f"{where} geojson: no such file {path}", field="geojson")
        loaded = load_json(path.read_bytes(), source=str(path))
        geometry = loaded.get("geometry", loaded) if isinstance(loaded, dict) else loaded
    else:
        geometry = doc.get("geometry")
    footprint = parse_footprint(geometry, None, where=f"{where} geometry")
    return footprint.geometry


def mechanism_from_doc(doc: Any, *, base: Path = Path("."), source: str = "mechanism") -> Mechanism:
    """Validate a mechanism document (as read from TOML) into a Mechanism with its zones."""
    if not isinstance(doc, dict):
        raise InvalidInput(f"{source}: expected a table of id, name, area, rules, members")
    mid = identifier(doc.get("id"), f"{source} id")
    area_doc = doc.get("area")
    if not isinstance(area_doc, dict):
        raise InvalidInput(f"{source} area: missing; give name and geojson (a file) or geometry")
    area = _area_geometry(area_doc, base, f"{source} area")
    members_raw = doc.get("members")
    if not isinstance(members_raw, list) or not members_raw:
        raise InvalidInput(f"{source} members: list the members (id, name, role)")
    members = tuple(parse_member(m, f"{source} member {n}") for n, m in enumerate(members_raw))
    ids = [m.id for m in members]
    if len(set(ids)) != len(ids):
        dup = next(i for i in ids if ids.count(i) > 1)
        raise InvalidInput(f"{source} members: id {dup!r} is used twice")
    parties = {m.party for m in members if m.role is Role.PARTY}
    if len(parties) < 2:
        raise InvalidInput(f"{source} members: a mechanism needs at least two parties")
    zones = []
    for n, z in enumerate(doc.get("zones", [])):
        if not isinstance(z, dict):
            raise InvalidInput(f"{source} zone {n}: expected a table")
        owner = z.get("owner")
        zones.append(parse_zone(z, mechanism=mid, owner=str(owner), parties=parties, where=f"{source} zone {n}"))
    mechanism = Mechanism(
        id=mid,
        name=text(doc.get("name"), f"{source} name"),
        area=area,
        area_name=text(area_doc.get("name", mid), f"{source} area name"),
        rules=with_caps(
            parse_rules(_known(doc.get("rules"), source), f"{source} rules"), doc.get("rules"), f"{source} rules"
        ),
        members=members,
        zones=tuple(zones),
    )
    zones_reach_area(mechanism, source=f"{source} ")
    return mechanism


def area_in_frame(m: Mechanism) -> tuple[Frame, Any]:
    """The mechanism's frame and its area of responsibility in it, with the margin the rules allow (prepared:
    what every footprint is held to)."""
    frame = Frame.for_bounds(tuple(m.area.bounds))
    allowed = frame.project(m.area)
    if m.rules.area_margin_m > 0:
        allowed = shapely.buffer(allowed, m.rules.area_margin_m)
    shapely.prepare(allowed)
    return frame, allowed


def beyond_area(margin_m: float) -> str:
    """How far beyond the area of responsibility a footprint may reach, in words (empty: not at all): in nautical
    miles when it is a whole number of them, as a mechanism's margin usually is (territorial waters' 12 NM was
    said "22.224 km").

    >>> beyond_area(22_224.0), beyond_area(5_000.0), beyond_area(0.0)
    (' (or within 12 NM, 22.2 km, of it)', ' (or within 5 km of it)', '')
    """
    if margin_m <= 0:
        return ""
    miles = margin_m / 1852.0
    if abs(miles - round(miles)) < 1e-9:
        return f" (or within {round(miles)} NM, {margin_m / 1000:.1f} km, of it)"
    return f" (or within {margin_m / 1000:g} km of it)"


def zone_outside(m: Mechanism, allowed: Any, zone_id: str, projected: Any, radius_m: float | None) -> str | None:
    """Why a zone (its geometry in the mechanism's frame) is refused, when it lies wholly outside the area of
    responsibility (None: it reaches into it). One wholly outside forbids nothing any notice could be (notices
    are held to the area), and is most often positions read latitude first: a zone meant for T4 declared in
    central Türkiye, T4 left unprotected (an interop walk-through). One across the area's edge is kept whole."""
    area = shapely.buffer(projected, radius_m) if radius_m else projected
    if allowed.intersects(area if not area.is_empty else projected):
        return None
    return (
        f"zone {zone_id!r} lies wholly outside the mechanism's area of responsibility, {m.area_name}"
        f"{beyond_area(m.rules.area_margin_m)}, "
        "where no notice can be: are its positions longitude first, as GeoJSON and KML write them?"
    )


def zones_reach_area(m: Mechanism, *, source: str = "") -> None:
    """Every zone of a mechanism reaches into its area (:func:`zone_outside`), checked before anything is
    written: a declaration refused at its third zone had already recorded the mechanism and two.

    Raises:
        InvalidInput: the first zone that does not, named.
    """
    if not m.zones:
        return
    frame, allowed = area_in_frame(m)
    for z in m.zones:
        why = zone_outside(m, allowed, z.id, frame.project(z.footprint.geometry), z.footprint.radius_m)
        if why is not None:
            raise InvalidInput(f"{source}zones: {why}", field="zones")


def _known(rules: Any, source: str) -> Any:
    """The rules table of a mechanism file, once every key in it is one the rules know: a misspelt rule
    would otherwise be read as missing, or left out silently with its default in force."""
    if isinstance(rules, dict):
        known = RULE_KEYS | set(CAPS)
        for key in rules:
            if key not in known:
                near = difflib.get_close_matches(str(key), sorted(known), n=1)
                hint = f" (did you mean {near[0]}?)" if near else f"; the rules are {', '.join(sorted(known))}"
                raise InvalidInput(f"{source} rules {key}: no such rule{hint}", field=str(key))
    return rules


def load_mechanism(path: Path) -> Mechanism:
    """Read a mechanism file (TOML); every error names the file and the field."""
    try:
        # "utf-8-sig": a byte-order mark, as some Windows editors write before UTF-8, is not part of the text
        doc = tomllib.loads(path.read_text(encoding="utf-8-sig"))
    except tomllib.TOMLDecodeError as e:
        raise InvalidInput(f"{path}: not valid TOML: {e}") from None
    except UnicodeDecodeError:
        raise InvalidInput(f"{path}: not UTF-8 text; save the mechanism file as UTF-8") from None
    except FileNotFoundError:
        raise InvalidInput(f"{path}: no such file") from None
    except IsADirectoryError:
        raise InvalidInput(f"{path}: is a folder, not a file") from None
    except OSError as e:
        raise InvalidInput(f"{path}: cannot be read: {e.strerror}") from None
    return mechanism_from_doc(doc, base=path.parent, source=str(path.name))


def mechanism_to_doc(m: Mechanism) -> dict[str, Any]:
    """The mechanism's definition as recorded in its first ledger entry (zones are recorded separately)."""
    return {
        "id": m.id,
        "name": m.name,
        "area": {"name": m.area_name, "geometry": mapping(m.area)},
        "rules": rules_to_doc(m.rules) | caps_to_doc(m.rules),
        "members": [member_to_doc(x) for x in m.members],
    }


def mechanism_from_record(doc: dict[str, Any]) -> Mechanism:
    """Rebuild a mechanism from its recorded definition (already validated)."""
    return Mechanism(
        id=doc["id"],
        name=doc["name"],
        area=shape(doc["area"]["geometry"]),
        area_name=doc["area"]["name"],
        rules=with_caps(parse_rules(doc["rules"]), doc["rules"]),
        members=tuple(parse_member(x) for x in doc["members"]),
    )


__all__ = [
    "CAPS",
    "area_in_frame",
    "caps_to_doc",
    "load_mechanism",
    "mechanism_from_doc",
    "mechanism_from_record",
    "mechanism_to_doc",
    "with_caps",
    "zone_outside",
    "zone_to_doc",
    "zones_reach_area",
]
