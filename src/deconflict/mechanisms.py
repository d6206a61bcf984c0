"""Mechanisms as data: read and validate a mechanism file (TOML), and its document form."""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any

from shapely.geometry import mapping, shape

from deconflict.errors import InvalidInput
from deconflict.formats.docs import (
    identifier,
    member_to_doc,
    parse_member,
    parse_rules,
    parse_zone,
    rules_to_doc,
    text,
    zone_to_doc,
)
from deconflict.formats.geojson import load_json
from deconflict.geo import parse_footprint
from deconflict.model import Mechanism, Role


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
    return Mechanism(
        id=mid,
        name=text(doc.get("name"), f"{source} name"),
        area=area,
        area_name=text(area_doc.get("name", mid), f"{source} area name"),
        rules=parse_rules(doc.get("rules"), f"{source} rules"),
        members=members,
        zones=tuple(zones),
    )


def load_mechanism(path: Path) -> Mechanism:
    """Read a mechanism file (TOML); every error names the file and the field."""
    try:
        doc = tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as e:
        raise InvalidInput(f"{path}: not valid TOML: {e}") from None
    except OSError as e:
        raise InvalidInput(f"{path}: cannot be read: {e.strerror}") from None
    return mechanism_from_doc(doc, base=path.parent, source=str(path.name))


def mechanism_to_doc(m: Mechanism) -> dict[str, Any]:
    """The mechanism's definition as recorded in its first ledger entry (zones are recorded separately)."""
    return {
        "id": m.id,
        "name": m.name,
        "area": {"name": m.area_name, "geometry": mapping(m.area)},
        "rules": rules_to_doc(m.rules),
        "members": [member_to_doc(x) for x in m.members],
    }


def mechanism_from_record(doc: dict[str, Any]) -> Mechanism:
    """Rebuild a mechanism from its recorded definition (already validated)."""
    return Mechanism(
        id=doc["id"],
        name=doc["name"],
        area=shape(doc["area"]["geometry"]),
        area_name=doc["area"]["name"],
        rules=parse_rules(doc["rules"]),
        members=tuple(parse_member(x) for x in doc["members"]),
    )


__all__ = ["load_mechanism", "mechanism_from_doc", "mechanism_to_doc", "mechanism_from_record", "zone_to_doc"]
