"""Live ADS-B in: BaseStation (SBS-1) lines and readsb/dump1090 ``aircraft.json``, merged by ICAO address
into the position reports ``POST .../tracks`` takes (``id, at, lat, lon, alt_ft, gs_kt, trk_deg, vs_fpm``).

A receiver's BaseStation port (TCP 30003) sends one comma-separated line per Mode S message, 22 fields:
``MSG,<transmission 1-8>,<session>,<aircraft>,<hex ident>,<flight>,<date gen>,<time gen>,<date log>,
<time log>,<callsign>,<altitude ft>,<ground speed kt>,<track deg>,<lat>,<lon>,<vertical rate fpm>,
<squawk>,<alert>,<emergency>,<spi>,<on ground>``. The position comes in ``MSG,3`` (airborne; ``MSG,2``,
a surface position, and any position flagged on the ground are read and left: the tactical picture is of
what flies), the velocity in ``MSG,4``, the altitude also in ``MSG,5``/``6``/``7``, the squawk in
``MSG,6``, the callsign in ``MSG,1``. No one line holds a whole track state, so :class:`AdsbPicture` keeps the
latest of each field per aircraft and gives a report for each aircraft whose position is new since the
last batch, once it knows its altitude, ground speed and track (vertical rate 0 until one is heard).

The receiver's date and time fields are in its own local time zone (dump1090 writes them so), so a
report's ``at`` is when the line was *received*, on the clock the caller gives (the feed gives the
service's clock, see :mod:`deconflict.formats._adsb_feed`). A line that cannot be read raises
:class:`AdsbLineError` naming its line number; the feed counts it, warns and goes on.

>>> from datetime import UTC, datetime
>>> t = datetime(2025, 4, 9, 6, 0, tzinfo=UTC)
>>> head = "MSG,{},1,1,738065,1,2025/04/09,09:00:00.000,2025/04/09,09:00:00.000,"
>>> p = AdsbPicture()
>>> p.feed(parse_sbs_line(head.format(3) + ",12000,,,34.5,37.1,,,0,0,0,0", 1), t)
>>> p.feed(parse_sbs_line(head.format(4) + ",,420,90.5,,,-640,,0,0,0,0", 2), t)
>>> p.reports()  # doctest: +NORMALIZE_WHITESPACE
[{'id': '738065', 'at': '2025-04-09T06:00:00Z', 'lat': 34.5, 'lon': 37.1, 'alt_ft': 12000.0,
  'gs_kt': 420.0, 'trk_deg': 90.5, 'vs_fpm': -640.0}]
>>> p.reports()  # nothing new since
[]
>>> parse_sbs_line("MSG,3,1,1,73806Z,1,,,,,,12000,,,34.5,37.1,,,,,,", 7)
Traceback (most recent call last):
...
deconflict.formats.adsb.AdsbLineError: line 7: hex ident '73806Z' is not a 24-bit ICAO address (6 hex digits)
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from deconflict.clock import iso
from deconflict.errors import InvalidInput
from deconflict.formats.docs import TRACK_FIELDS

__all__ = [
    "AdsbLineError",
    "AdsbPicture",
    "Aircraft",
    "SbsMessage",
    "parse_aircraft_json",
    "parse_sbs_line",
]

SBS_FIELDS = 22
"""Fields of a BaseStation line (the last ones may be left off by some receivers: at least 17 are needed)."""
_MIN_FIELDS = 17
_HEX = frozenset("0123456789abcdefABCDEF")
SBS_KINDS = frozenset({"MSG", "SEL", "ID", "AIR", "STA", "CLK"})
"""BaseStation message kinds; only ``MSG`` lines carry what a track needs, the others are read and left."""


class AdsbLineError(InvalidInput):
    """A BaseStation line or an ``aircraft.json`` element that cannot be read; the message names it."""


@dataclass(frozen=True)
class SbsMessage:
    """What one ``MSG`` line says about one aircraft (None: the line does not say it)."""

    icao: str
    transmission: int
    callsign: str | None = None
    alt_ft: float | None = None
    gs_kt: float | None = None
    trk_deg: float | None = None
    lat: float | None = None
    lon: float | None = None
    vs_fpm: float | None = None
    squawk: str | None = None


NON_ICAO = "NONICAO-"
"""The track id's prefix of an address readsb marks as not an ICAO one (``~2a0001``: TIS-B, ADS-R, anonymous):
the same six digits can be a real aircraft's ICAO address, so the two must not be one track."""


def _icao(value: Any, where: str) -> str:
    raw = str(value).strip()
    s = raw.removeprefix("~")  # readsb marks non-ICAO (TIS-B) addresses with '~'
    if len(s) != 6 or not set(s) <= _HEX:
        raise AdsbLineError(f"{where}: hex ident {s!r} is not a 24-bit ICAO address (6 hex digits)", field="hex")
    return (NON_ICAO if raw.startswith("~") else "") + s.upper()


def _number(value: Any, name: str, where: str) -> float | None:
    """A field as a finite number in its range (TRACK_FIELDS), or None when the field is empty."""
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    if isinstance(value, bool):
        raise AdsbLineError(f"{where}: {name} {value!r} is not a number", field=name)
    try:
        x = float(value)
    except (TypeError, ValueError):
        raise AdsbLineError(f"{where}: {name} {value!r} is not a number", field=name) from None
    meaning, low, high = TRACK_FIELDS[name]
    if not math.isfinite(x) or not low <= x <= high:
        raise AdsbLineError(f"{where}: {name} {value!r} is out of range ({meaning}, {low:g} to {high:g})", field=name)
    return x


def parse_sbs_line(line: str, line_no: int) -> SbsMessage | None:
    """One BaseStation line: an :class:`SbsMessage` for a ``MSG`` line, None for a blank line or another
    kind of message (``AIR``, ``ID``, ``STA``...).

    Raises:
        AdsbLineError: not a BaseStation line, too few fields, a bad ICAO address or number; it names
            ``line_no``.
    """
    text = line.strip()
    if not text:
        return None
    where = f"line {line_no}"
    fields = text.split(",")
    kind = fields[0].strip().upper()
    if kind not in SBS_KINDS:
        shown = text if len(text) <= 40 else text[:40] + "..."
        raise AdsbLineError(f"{where}: not a BaseStation line (it begins {shown!r}; expected MSG, AIR, ID...)")
    if kind != "MSG":
        return None
    if len(fields) < _MIN_FIELDS:
        raise AdsbLineError(f"{where}: {len(fields)} fields; a BaseStation MSG line has {SBS_FIELDS}")
    try:
        transmission = int(fields[1])
    except ValueError:
        raise AdsbLineError(f"{where}: transmission type {fields[1]!r} is not 1 to 8", field="transmission") from None
    if not 1 <= transmission <= 8:
        raise AdsbLineError(f"{where}: transmission type {transmission} is not 1 to 8", field="transmission")
    icao = _icao(fields[4], where)
    lat, lon = _number(fields[14], "lat", where), _number(fields[15], "lon", where)
    if (lat is None) != (lon is None):
        raise AdsbLineError(f"{where}: a position needs both latitude and longitude", field="lat")
    if transmission == 2 or (len(fields) > 21 and fields[21].strip() in ("-1", "1")):
        lat = lon = None  # on the ground
    callsign = fields[10].strip() or None
    squawk = fields[17].strip() if len(fields) > 17 and fields[17].strip() else None
    return SbsMessage(
        icao=icao,
        transmission=transmission,
        callsign=callsign,
        alt_ft=_number(fields[11], "alt_ft", where),
        gs_kt=_number(fields[12], "gs_kt", where),
        trk_deg=_number(fields[13], "trk_deg", where),
        lat=lat,
        lon=lon,
        vs_fpm=_number(fields[16], "vs_fpm", where),
        squawk=squawk,
    )


@dataclass
class Aircraft:
    """The latest of each field heard from one aircraft, and when its position was received."""

    icao: str
    callsign: str | None = None
    squawk: str | None = None
    lat: float | None = None
    lon: float | None = None
    alt_ft: float | None = None
    gs_kt: float | None = None
    trk_deg: float | None = None
    vs_fpm: float | None = None
    position_at: datetime | None = None
    position_stamp: float | None = None
    reported_at: datetime | None = None

    def report(self) -> dict[str, Any] | None:
        """The position report, or None while a field it needs has not been heard."""
        if self.position_at is None or None in (self.lat, self.lon, self.alt_ft, self.gs_kt, self.trk_deg):
            return None
        return {
            "id": self.icao,
            "at": iso(self.position_at),
            "lat": self.lat,
            "lon": self.lon,
            "alt_ft": self.alt_ft,
            "gs_kt": self.gs_kt,
            "trk_deg": float(self.trk_deg or 0.0) % 360.0,
            "vs_fpm": self.vs_fpm if self.vs_fpm is not None else 0.0,
        }


@dataclass
class AdsbPicture:
    """Aircraft merged by ICAO address from messages as they come; :meth:`reports` gives each aircraft's
    report once per new position.

    Args:
        only: report these ICAO addresses only (upper case; empty: every aircraft heard). A receiver hears
            every aircraft in range, the other parties' and airliners too: a party reports its own.
        forget_s: an aircraft not heard for this long is dropped.
        max_age_s: a position older than this (an ``aircraft.json`` keeps aircraft it lost for minutes,
            with their last ``seen_pos``) is not reported: the service would refuse the whole batch for
            one position older than its ``track_stale_s``.
    """

    only: frozenset[str] = frozenset()
    forget_s: float = 300.0
    max_age_s: float = 30.0
    aircraft: dict[str, Aircraft] = field(default_factory=dict)

    def _plane(self, icao: str) -> Aircraft | None:
        if self.only and icao not in self.only:
            return None
        return self.aircraft.setdefault(icao, Aircraft(icao))

    def feed(self, msg: SbsMessage | None, received: datetime) -> None:
        """Merge one BaseStation message received at ``received``."""
        if msg is None or (plane := self._plane(msg.icao)) is None:
            return
        for name in ("callsign", "squawk", "alt_ft", "gs_kt", "trk_deg", "vs_fpm"):
            value = getattr(msg, name)
            if value is not None:
                setattr(plane, name, value)
        if msg.lat is not None and msg.lon is not None:
            plane.lat, plane.lon, plane.position_at = msg.lat, msg.lon, received

    def put(self, icao: str, state: dict[str, Any], position_at: datetime, stamp: float | None = None) -> None:
        """Merge a whole state (from ``aircraft.json`` or a Beast decoder) whose position dates from
        ``position_at``. ``stamp`` is the source's own time of that position (``aircraft.json``'s ``now``
        less ``seen_pos``): the same stamp again is the same position, not reported again (a receiver
        that stopped writing its file does not keep its aircraft flying)."""
        plane = self._plane(icao)
        if plane is None:
            return
        for name, value in state.items():
            if value is not None:
                setattr(plane, name, value)
        if stamp is None or stamp != plane.position_stamp:
            plane.position_at, plane.position_stamp = position_at, stamp

    def reports(self, now: datetime | None = None) -> list[dict[str, Any]]:
        """A report for each aircraft whose position is new since the last call (and, given ``now``, not
        older than ``max_age_s``), in ICAO order; aircraft not heard for ``forget_s`` are forgotten."""
        out = []
        for icao in sorted(self.aircraft):
            plane = self.aircraft[icao]
            if now is not None and plane.position_at is not None:
                if now - plane.position_at > timedelta(seconds=self.forget_s):
                    del self.aircraft[icao]
                    continue
            if plane.position_at is None or plane.position_at == plane.reported_at:
                continue
            if now is not None and now - plane.position_at > timedelta(seconds=self.max_age_s):
                continue  # an old position: not one to report (a new one will come, or the aircraft is lost)
            report = plane.report()
            if report is not None:
                plane.reported_at = plane.position_at
                out.append(report)
        return out


def parse_aircraft_json(text: str, *, source: str = "aircraft.json") -> tuple[list[dict[str, Any]], list[str]]:
    """The aircraft of a readsb/dump1090 ``aircraft.json`` with a position: each as ``{"icao", "age_s",
    "stamp", "state"}`` (``state`` in report fields: lat, lon, alt_ft, gs_kt, trk_deg, vs_fpm, callsign,
    squawk; ``age_s`` how old the position was when the file was written, its ``seen_pos``; ``stamp`` the
    receiver's time of the position, the file's ``now`` less that age, or None), and a warning for
    each aircraft element that could not be read (named by its index and hex), which is left out.

    Both spellings are read: readsb and dump1090-fa (``alt_baro``, ``gs``, ``track``, ``baro_rate``)
    and the older dump1090 (``altitude``, ``speed``, ``vert_rate``). An aircraft on the ground
    (``alt_baro: "ground"``) is left out without a warning.

    Raises:
        AdsbLineError: not JSON (naming the line), or no ``aircraft`` list.
    """
    try:
        doc = json.loads(text)
    except json.JSONDecodeError as e:
        raise AdsbLineError(f"{source} line {e.lineno}: not JSON ({e.msg})") from None
    planes = doc.get("aircraft") if isinstance(doc, dict) else None
    if not isinstance(planes, list):
        raise AdsbLineError(f"{source}: expected an object with an 'aircraft' list (readsb/dump1090 aircraft.json)")
    written = doc.get("now")
    written = float(written) if isinstance(written, (int, float)) and not isinstance(written, bool) else None
    found: list[dict[str, Any]] = []
    warnings: list[str] = []
    for n, a in enumerate(planes):
        where = f"{source} aircraft[{n}]"
        try:
            if not isinstance(a, dict):
                raise AdsbLineError(f"{where}: expected an object")
            where += f" (hex {str(a.get('hex', '?')).strip()})"
            icao = _icao(a.get("hex", ""), where)
            if a.get("lat") is None or a.get("lon") is None:
                continue  # heard, but no position (yet)
            alt = a.get("alt_baro", a.get("altitude", a.get("alt_geom")))
            if alt == "ground":
                continue
            rate = next((a[k] for k in ("baro_rate", "geom_rate", "vert_rate") if a.get(k) is not None), None)
            state = {
                "lat": _number(a.get("lat"), "lat", where),
                "lon": _number(a.get("lon"), "lon", where),
                "alt_ft": _number(alt, "alt_ft", where),
                "gs_kt": _number(a.get("gs", a.get("speed")), "gs_kt", where),
                "trk_deg": _number(a.get("track"), "trk_deg", where),
                "vs_fpm": _number(rate, "vs_fpm", where),
                "callsign": str(a["flight"]).strip() or None if a.get("flight") else None,
                "squawk": str(a["squawk"]) if a.get("squawk") else None,
            }
            age = a.get("seen_pos", a.get("seen", 0.0))
            age_s = float(age) if isinstance(age, (int, float)) and not isinstance(age, bool) else 0.0
            age_s = max(0.0, age_s)
            stamp = round(written - age_s, 3) if written is not None else None
            found.append({"icao": icao, "age_s": age_s, "stamp": stamp, "state": state})
        except AdsbLineError as e:
            warnings.append(e.message)
    return found, warnings
