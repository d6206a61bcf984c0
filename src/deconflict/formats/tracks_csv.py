"""Track states from CSV, the input of ``deconflict tracks``: aviation units in, SI units out.

Columns ``id,lat,lon,alt_ft,gs_kt,trk_deg,vs_fpm`` (any order, others ignored): latitude and
longitude in WGS84 degrees, altitude in feet above mean sea level, ground speed in knots,
track angle in degrees clockwise from true north, vertical speed in feet per minute.
Every error names the file, the line (the header is line 1) and the column.
"""

from __future__ import annotations

import csv
import io
from json.encoder import encode_basestring_ascii
from typing import Any, TextIO

import numpy as np

from deconflict.errors import InvalidInput
from deconflict.formats.docs import identifier
from deconflict.tactical import TrackConflictTable, Tracks
from deconflict.units import FPM_MPS, FT_M, KT_MPS

COLUMNS = ("id", "lat", "lon", "alt_ft", "gs_kt", "trk_deg", "vs_fpm")
"""The columns a tracks CSV must have."""
_NUMBERS = COLUMNS[1:]
_MEANING = {
    "lat": "latitude (degrees)",
    "lon": "longitude (degrees)",
    "alt_ft": "altitude (feet)",
    "gs_kt": "ground speed (knots)",
    "trk_deg": "track angle (degrees)",
    "vs_fpm": "vertical speed (feet per minute)",
}


def read_tracks_csv(text: str, *, source: str = "tracks.csv", service_ids: bool = False) -> Tracks:
    """Parse a tracks CSV into :class:`~deconflict.tactical.Tracks` (metres, metres per second).

    ``service_ids``: each track id must also be one the service takes (:func:`deconflict.formats.docs.identifier`:
    ASCII letters, digits, - _ . :, at most 64), refused here by its line: what ``deconflict positions`` sends
    (``deconflict tracks``, the batch contract, takes any text).

    >>> t = read_tracks_csv("id,lat,lon,alt_ft,gs_kt,trk_deg,vs_fpm\\nA,34.5,37.6,10000,360,90,-600\\n")
    >>> t.ids, float(t.alt_m[0]), round(float(t.gs_mps[0]), 3), float(t.vs_mps[0])
    (['A'], 3048.0, 185.2, -3.048)
    >>> read_tracks_csv("id,lat,lon,alt_ft,gs_kt,trk_deg,vs_fpm\\nA,34.5,37.6,10000,-1,90,0\\n")
    Traceback (most recent call last):
    ...
    deconflict.errors.InvalidInput: tracks.csv line 2, column gs_kt: ground speed is negative (-1)
    """
    reader = csv.reader(io.StringIO(text.removeprefix("\ufeff"), newline=""))
    try:
        header = next(reader)
    except StopIteration:
        raise InvalidInput(f"{source}: the file is empty; line 1 must be the header {','.join(COLUMNS)}") from None
    except csv.Error as e:
        raise InvalidInput(f"{source} line 1: not readable as CSV ({e})") from None
    names = [h.strip().lower() for h in header]  # ID,LAT,... as some tools write a header: the same columns
    missing = [c for c in COLUMNS if c not in names]
    if missing and len(names) == 1 and any(sep in names[0] for sep in ";\t"):
        sep = "a semicolon" if ";" in names[0] else "a tab"
        raise InvalidInput(
            f"{source} line 1: the columns are separated by {sep}; separate them by commas ({','.join(COLUMNS)})",
            field="header",
        )
    if missing:
        raise InvalidInput(
            f"{source} line 1: missing column {', '.join(missing)}; the header must name {','.join(COLUMNS)}",
            field=missing[0],
        )
    where = {c: names.index(c) for c in COLUMNS}
    width = len(names)
    rows: list[list[str]] = []
    lines: list[int] = []
    try:
        for row in reader:
            if not row or (len(row) == 1 and not row[0].strip()):
                continue  # blank line
            rows.append(row)
            lines.append(reader.line_num)
    except csv.Error as e:
        raise InvalidInput(f"{source} line {reader.line_num}: not readable as CSV ({e})") from None
    for row, line in zip(rows, lines, strict=True):
        if len(row) < width:
            absent = next(c for c in COLUMNS if where[c] >= len(row))
            raise InvalidInput(f"{source} line {line}, column {absent}: the value is missing", field=absent)
    ids = [row[where["id"]].strip() for row in rows]
    for k, name in enumerate(ids):
        if not name:
            raise InvalidInput(f"{source} line {lines[k]}, column id: the track id is empty", field="id")
        if service_ids:
            try:
                identifier(name, "id")
            except InvalidInput as e:  # the service named it "report 3", its place among the rows sent
                raise InvalidInput(
                    f"{source} line {lines[k]}, column id: {e.message.removeprefix('id: ')}", field="id"
                ) from None
    values = {c: _column(rows, lines, where[c], c, source) for c in _NUMBERS}
    checks: tuple[tuple[str, Any, str], ...] = (
        ("lat", np.abs(values["lat"]) > 90.0, "latitude is outside -90..90"),
        ("lon", np.abs(values["lon"]) > 180.0, "longitude is outside -180..180"),
        ("gs_kt", values["gs_kt"] < 0.0, "ground speed is negative"),
    )
    for c, wrong, why in checks:
        if np.any(wrong):
            k = int(np.argmax(wrong))
            raise InvalidInput(f"{source} line {lines[k]}, column {c}: {why} ({rows[k][where[c]].strip()})", field=c)
    if len(set(ids)) != len(ids):
        first: dict[str, int] = {}
        for k, name in enumerate(ids):
            if name in first:
                raise InvalidInput(
                    f"{source} line {lines[k]}, column id: track {name!r} already appears on line {first[name]}",
                    field="id",
                )
            first[name] = lines[k]
    return Tracks.of(
        ids,
        lat_deg=values["lat"],
        lon_deg=values["lon"],
        alt_m=values["alt_ft"] * FT_M,
        gs_mps=values["gs_kt"] * KT_MPS,
        trk_deg=values["trk_deg"],
        vs_mps=values["vs_fpm"] * FPM_MPS,
    )


def _column(rows: list[list[str]], lines: list[int], index: int, name: str, source: str) -> np.ndarray:
    """One numeric column as floats; the first empty, non-numeric or non-finite value is named with its line."""
    texts = [row[index] for row in rows]
    try:
        out = np.array(texts, dtype=float) if texts else np.empty(0)
        bad = np.flatnonzero(~np.isfinite(out))
    except ValueError:
        bad = None
    if bad is not None and len(bad) == 0:
        return out
    for k, text in enumerate(texts):
        try:
            ok = np.isfinite(float(text))
        except ValueError:
            ok = False
        if not ok:
            shown = text.strip()
            what = "the value is missing" if not shown else f"{shown!r} is not a finite number"
            raise InvalidInput(
                f"{source} line {lines[k]}, column {name}: {what}; expected {_MEANING[name]}", field=name
            )
    raise AssertionError("unreachable: numpy refused a column that float() accepts")  # pragma: no cover


def write_track_conflicts(table: TrackConflictTable, tracks: Tracks, out: TextIO) -> None:
    """Write ``{"conflicts": [{"a", "b", "tcpa_s", "dcpa_m", "t_in_s", "t_out_s"}, ...]}`` (the batch contract).

    Times are rounded to the millisecond and distances to the centimetre.
    """
    ids = [encode_basestring_ascii(i) for i in tracks.ids]
    rows = zip(
        table.a.tolist(),
        table.b.tolist(),
        np.round(table.tcpa_s, 3).tolist(),
        np.round(table.dcpa_m, 2).tolist(),
        np.round(table.t_in_s, 3).tolist(),
        np.round(table.t_out_s, 3).tolist(),
        strict=True,
    )
    out.write('{"conflicts": [')
    sep = "\n  "
    for a, b, tcpa, dcpa, t_in, t_out in rows:
        out.write(
            f'{sep}{{"a": {ids[a]}, "b": {ids[b]}, "tcpa_s": {tcpa!r}, "dcpa_m": {dcpa!r}, '
            f'"t_in_s": {t_in!r}, "t_out_s": {t_out!r}}}'
        )
        sep = ",\n  "
    out.write("\n]}\n" if len(table) else "]}\n")
