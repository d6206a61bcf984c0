"""Builders for the tests: the Syria scenario's places and pinned start, volume documents as notices
carry them, position reports, random footprints, and services on an SQLite file with the mechanism
declared. Every builder takes keyword defaults, so a test names only what matters to it."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np

from deconflict.clock import Clock, iso, system_clock
from deconflict.geo import WGS84, Footprint, parse_footprint
from deconflict.mechanisms import load_mechanism
from deconflict.model import Disclosure, Mechanism
from deconflict.record import signing
from deconflict.record.registration import registration_message
from deconflict.scenarios import scenario_path
from deconflict.service import Service
from deconflict.store import open_store
from deconflict.tactical import Tracks
from deconflict.units import FT_M, KT_MPS

__all__ = [
    "API",
    "BAKU",
    "CENTRAL_SYRIA",
    "HAMA",
    "M",
    "MEMBERS",
    "PALMYRA",
    "T0",
    "T4",
    "A",
    "declared_db",
    "declared_service",
    "level_traffic",
    "offset",
    "point",
    "position",
    "random_footprint",
    "square",
    "syria",
    "vol",
    "zone",
]

M = "tr-il-syria"
"""The Syria scenario's mechanism."""
MEMBERS = ("TR", "IL", "AZ", "US")
"""Its members: the two parties, the facilitator, the observer."""
API = "/api/v1"
A = f"{API}/mechanisms/{M}"
"""The mechanism's routes."""
T0 = datetime(2025, 4, 9, 6, 0, tzinfo=UTC)
"""The instant the tests' clocks are pinned to."""

# Places, as (lon, lat) in degrees.
T4 = (37.6298, 34.5226)
PALMYRA = (38.3169, 34.5574)
HAMA = (36.7114, 35.1183)
BAKU = (49.8671, 40.4093)
CENTRAL_SYRIA = (37.0, 33.5, 39.2, 35.3)
"""~200 km × 200 km in central Syria: (lon0, lat0, lon1, lat1) in degrees."""


def vol(
    centre: Sequence[float] = T4,
    start: datetime | None = None,
    *,
    start_h: float = 2,
    hours: float = 2,
    radius_m: float = 10_000,
    floor_m: float = 1000,
    ceiling_m: float = 4000,
    **extra: Any,
) -> dict[str, Any]:
    """A circular volume as a notice carries it.

    Args:
        centre: (lon, lat) of the circle's centre.
        start: when the window opens; if not given, ``start_h`` hours after ``T0``.
        hours: how long the window lasts.
        extra: further fields, or fields to put in place of the built ones (``id``, ``geometry``...).
    """
    if start is None:
        opens, closes = T0 + timedelta(hours=start_h), T0 + timedelta(hours=start_h + hours)
    else:
        opens, closes = start, start + timedelta(hours=hours)
    return {
        "geometry": {"type": "Point", "coordinates": list(centre)},
        "radius_m": radius_m,
        "floor_m": floor_m,
        "ceiling_m": ceiling_m,
        "start": iso(opens),
        "end": iso(closes),
        **extra,
    }


def point(lon: float, lat: float) -> dict[str, Any]:
    """A GeoJSON point (a circle's centre, with a radius given beside it)."""
    return {"type": "Point", "coordinates": [lon, lat]}


def square(lon: float, lat: float, size: float) -> dict[str, Any]:
    """A GeoJSON polygon: the square ``size`` degrees a side whose south-west corner is (lon, lat)."""
    ring = [[lon, lat], [lon + size, lat], [lon + size, lat + size], [lon, lat + size], [lon, lat]]
    return {"type": "Polygon", "coordinates": [ring]}


def zone(
    zone_id: str,
    kind: str,
    forbids: Sequence[str],
    centre: Sequence[float],
    radius_m: float,
    *,
    valid_from: datetime = T0,
    **extra: Any,
) -> dict[str, Any]:
    """A circular zone as a party declares it: ``kind`` (restricted, protected...), the activity kinds it
    ``forbids``, ``centre`` (lon, lat), valid from ``valid_from``; ``extra``: name, applies_to_owner..."""
    return {
        "id": zone_id,
        "kind": kind,
        "forbids": list(forbids),
        "geometry": {"type": "Point", "coordinates": list(centre)},
        "radius_m": radius_m,
        "valid_from": iso(valid_from),
        **extra,
    }


def offset(origin: Sequence[float], bearing_deg: float, metres: float) -> tuple[float, float]:
    """The (lon, lat) ``metres`` from ``origin`` (lon, lat) along the geodesic at ``bearing_deg``."""
    lon, lat, _ = WGS84.fwd(origin[0], origin[1], bearing_deg, metres)
    return float(lon), float(lat)


def position(
    track: str,
    at: datetime,
    where: Sequence[float],
    trk_deg: float,
    *,
    alt_ft: float = 15_000,
    gs_kt: float = 200,
    vs_fpm: float = 0,
) -> dict[str, Any]:
    """A position report as a party sends it: track id, time, ``where`` (lon, lat), course and speeds."""
    return {
        "id": track,
        "at": iso(at),
        "lat": where[1],
        "lon": where[0],
        "alt_ft": alt_ft,
        "gs_kt": gs_kt,
        "trk_deg": trk_deg,
        "vs_fpm": vs_fpm,
    }


def random_footprint(
    rng: np.random.Generator,
    box: tuple[float, float, float, float],
    *,
    circles_only: bool = False,
    max_radius_m: float = 20_000.0,
    max_corners: int = 8,
    max_reach_m: float = 15_000.0,
) -> Footprint:
    """A random circle, or (unless ``circles_only``) a star-shaped polygon, centred in ``box``
    (lon0, lat0, lon1, lat1): radius from 100 m to ``max_radius_m``, 3 to ``max_corners`` corners at
    increasing azimuths (so its edges never cross), each 500 m to ``max_reach_m`` from the centre."""
    lon, lat = float(rng.uniform(box[0], box[2])), float(rng.uniform(box[1], box[3]))
    if circles_only or rng.integers(2) == 0:
        return parse_footprint({"type": "Point", "coordinates": [lon, lat]}, float(rng.uniform(100.0, max_radius_m)))
    k = int(rng.integers(3, max_corners + 1))
    step = 360.0 / k
    az = np.arange(k) * step + rng.uniform(-0.3 * step, 0.3 * step, k)
    lons, lats, _ = WGS84.fwd(np.full(k, lon), np.full(k, lat), az, rng.uniform(500.0, max_reach_m, k))
    ring = [[float(x), float(y)] for x, y in zip(lons, lats, strict=True)]
    return parse_footprint({"type": "Polygon", "coordinates": [ring + ring[:1]]})


def syria(
    *, disclosure: Disclosure | None = None, languages: dict[str, str] | None = None, **changes: Any
) -> Mechanism:
    """The Syria scenario's mechanism, with its disclosure rule, its members' languages (member id to
    language) or any of its fields (``id``, ``zones``...) changed."""
    mechanism = load_mechanism(scenario_path("syria"))
    if disclosure is not None:
        changes["rules"] = dataclasses.replace(mechanism.rules, disclosure=disclosure)
    if languages is not None:
        members = tuple(dataclasses.replace(m, language=languages.get(m.id, m.language)) for m in mechanism.members)
        changes["members"] = members
    return dataclasses.replace(mechanism, **changes) if changes else mechanism


def declared_service(
    db: str | Path,
    clock: Clock = system_clock,
    *,
    mechanism: Mechanism | None = None,
    keys: dict[str, signing.KeyPair] | None = None,
) -> Service:
    """A service on the SQLite file ``db`` that has just declared ``mechanism`` (the Syria scenario's if
    not given); the service holds the key of every party not in ``keys`` (party to the key pair it holds
    on its side: its public key is declared with its proof of possession)."""
    mechanism = mechanism or syria()
    pairs = keys or {}
    proofs = {
        party: pair.sign(registration_message(mechanism=mechanism.id, party=party, public_key=pair.public_key))
        for party, pair in pairs.items()
    }
    public = {party: pair.public_key for party, pair in pairs.items()}
    service = Service(open_store(str(db)), clock=clock)
    service.declare_mechanism(mechanism=mechanism, keys=public, key_proofs=proofs, demo_custody=True)
    return service


def declared_db(
    db: str | Path,
    clock: Clock = system_clock,
    *,
    mechanism: Mechanism | None = None,
    keys: dict[str, signing.KeyPair] | None = None,
) -> str:
    """The path of the SQLite file ``db`` once ``mechanism`` is declared in it (see :func:`declared_service`)
    and the store is closed again, ready for a server or another service to open."""
    declared_service(db, clock, mechanism=mechanism, keys=keys).store.close()
    return str(db)


def level_traffic(n: int, seed: int, prefix: str) -> Tracks:
    """n level tracks (ids ``prefix`` + number, shuffled) at 20,000-22,000 ft over 1° × 1.5° of central Syria,
    150-500 kt on any heading: dense enough that every time slice has pairs near the minima."""
    rng = np.random.default_rng(seed)
    return Tracks.of(
        [f"{prefix}{k}" for k in rng.permutation(n)],
        rng.uniform(34.0, 35.0, n),
        rng.uniform(37.0, 38.5, n),
        rng.uniform(20000.0, 22000.0, n) * FT_M,
        rng.uniform(150.0, 500.0, n) * KT_MPS,
        rng.uniform(0.0, 360.0, n),
        np.zeros(n),
    )
