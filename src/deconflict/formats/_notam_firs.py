"""The flight information regions a NOTAM's item A may name: a small table of the FIRs the bundled
scenarios cover, and which one holds a point.

A FIR's published boundary is the state's airspace, which for Syria (OSTT, Damascus FIR) follows the land
boundary and the territorial sea. Its lateral limits are taken here as the bundled Natural Earth 1:50m
boundary of Syria (``scenarios/data/syria_ne50m.geojson``) grown by 12 NM, the width of the territorial
sea: the same area the Syria mechanism accepts footprints in (its ``area_margin_m``). This is an
approximation of the published FIR (to about the 1:50m boundary's detail, a few kilometres), good enough to
name the FIR of an activity inside the mechanism's area; a centre outside every FIR here is refused with
the list of those known, never guessed.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import cache
from typing import Any

from deconflict.errors import InvalidInput

__all__ = ["FIRS", "Fir", "fir_at", "fir_named"]

TERRITORIAL_SEA_M = 22_224.0
"""12 NM: how far a state's FIR reaches beyond its land boundary here."""


@dataclass(frozen=True)
class Fir:
    """One flight information region: its ICAO location indicator, its name, and its boundary's source."""

    code: str
    name: str
    boundary: str
    """The GeoJSON file (under ``scenarios/data``) whose polygon, grown by 12 NM, bounds it."""


FIRS: tuple[Fir, ...] = (Fir("OSTT", "Damascus", "syria_ne50m.geojson"),)
"""The FIRs the bundled scenarios cover."""


@cache
def _area(fir: Fir) -> tuple[Any, Any]:
    """(the FIR's area in a local azimuthal equidistant frame, the lon/lat → frame transformer)."""
    import numpy as np
    import shapely
    from pyproj import Transformer
    from shapely.geometry import shape

    from deconflict.scenarios import SCENARIOS

    doc = json.loads((SCENARIOS / "data" / fir.boundary).read_text(encoding="utf-8"))
    land = shape(doc.get("geometry", doc))
    lon, lat = land.centroid.x, land.centroid.y
    to_frame = Transformer.from_crs(
        "EPSG:4326", f"+proj=aeqd +lat_0={lat} +lon_0={lon} +ellps=WGS84 +units=m", always_xy=True
    )
    projected = shapely.transform(land, lambda xy: np.column_stack(to_frame.transform(xy[:, 0], xy[:, 1])))
    area = shapely.buffer(projected, TERRITORIAL_SEA_M)
    shapely.prepare(area)
    return area, to_frame


def fir_at(lon: float, lat: float, *, where: str = "centre") -> Fir:
    """The FIR holding the point (lon, lat).

    Raises:
        InvalidInput: no FIR in :data:`FIRS` holds it (the message lists those known).
    """
    import shapely

    for fir in FIRS:
        area, to_frame = _area(fir)
        x, y = to_frame.transform(lon, lat)
        if area.contains(shapely.Point(x, y)):
            return fir
    known = ", ".join(f"{f.code} {f.name}" for f in FIRS)
    raise InvalidInput(
        f"{where}: {lat:.4f}, {lon:.4f} is in no FIR this service knows (it knows {known}); "
        "a NOTAM is drafted only for an activity or zone whose centre lies in one",
        field="fir",
    )


def fir_named(code: str, *, where: str = "item A") -> Fir:
    """The FIR with ICAO location indicator ``code``.

    Raises:
        InvalidInput: not a FIR in :data:`FIRS`.
    """
    for fir in FIRS:
        if fir.code == code.upper():
            return fir
    known = ", ".join(f"{f.code} {f.name}" for f in FIRS)
    raise InvalidInput(f"{where}: {code!r} is not a FIR this service knows (it knows {known})", field="fir")
