"""The ICAO NOTAM text itself (ICAO Annex 15 / Doc 8126 layout), without what it means to deconflict:
the Q-line, items A–G, coordinates, times and levels, written and read.

Written in the layout most NOTAM offices and parsers read: item 1 (``A0003/25 NOTAMN``) on its own line,
``Q)`` on the next, ``A) B) C)`` on one line, then ``D)``, ``E)`` and ``F) G)``. Read leniently: the
whole NOTAM may be wrapped in parentheses, items may wrap over lines, several NOTAMs may follow each
other in one text (each starts at its item 1 line). Errors name the NOTAM (its place in the text) and
the item.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from deconflict.errors import InvalidInput
from deconflict.units import FT_M

__all__ = [
    "Level",
    "NotamError",
    "QLine",
    "RawNotam",
    "fail",
    "format_dms",
    "format_minutes",
    "format_stamp",
    "parse_dms_pair",
    "parse_level",
    "parse_qline",
    "parse_stamp",
    "split_notams",
]

ITEM1 = re.compile(r"^\(?\s*([A-Z])(\d{4})/(\d{2})\s+NOTAM([NRC])(?:\s+([A-Z]\d{4}/\d{2}))?\s*$")
_ITEM = re.compile(r"(?:^|(?<=\s))([A-GQ])\)\s*")
_Q_CENTRE = re.compile(r"^(\d{2})(\d{2})([NS])(\d{3})(\d{2})([EW])(\d{3})$")
_DMS_PAIR = re.compile(
    r"(?<![\d.])(\d{2})(\d{2})(\d{2}(?:\.\d+)?)?([NS])\s*(\d{3})(\d{2})(\d{2}(?:\.\d+)?)?([EW])",
)
_STAMP = re.compile(r"^(\d{2})(\d{2})(\d{2})(\d{2})(\d{2})$")


class NotamError(InvalidInput):
    """A NOTAM that cannot be read: the message names the NOTAM (``NOTAM 2``) and the item."""


def fail(n: int, item: str, message: str) -> NotamError:
    """The error for NOTAM ``n`` (1-based place in the text), item ``item``."""
    return NotamError(f"NOTAM {n} item {item}: {message}", field=f"item {item}")


@dataclass
class RawNotam:
    """One NOTAM's items as text, with where it stood in the text it was read from."""

    n: int
    """Its place in the text, from 1."""
    line: int
    """The line its item 1 is on, from 1."""
    series: str
    number: int
    year: int
    kind: str
    """N (new), R (replaces) or C (cancels)."""
    items: dict[str, str] = field(default_factory=dict)

    @property
    def ident(self) -> str:
        return f"{self.series}{self.number:04d}/{self.year % 100:02d}"

    def item(self, letter: str) -> str:
        """Item ``letter``'s text (lines joined), or the error naming it as missing."""
        text = self.items.get(letter)
        if text is None or not text.strip():
            raise fail(self.n, letter, f"missing ({self.ident})")
        return text.strip()


def split_notams(text: str) -> list[RawNotam]:
    """The NOTAMs in ``text``, each split into its items (Q and A–G, in that order).

    Raises:
        NotamError: text before the first NOTAM, no NOTAM at all, or items out of order or repeated.
    """
    text = text.removeprefix("\ufeff")  # as some editors save UTF-8
    lines = text.replace("\r\n", "\n").replace("\r", "\n").split("\n")
    found: list[tuple[int, re.Match[str]]] = [(i, m) for i, ln in enumerate(lines) if (m := ITEM1.match(ln.strip()))]
    if not found and text != text.upper():  # NOTAM text is upper case: one typed or pasted in lower case is the same
        lines = [ln.upper() for ln in lines]
        found = [(i, m) for i, ln in enumerate(lines) if (m := ITEM1.match(ln.strip()))]
    if not found:
        raise NotamError(
            "no NOTAM found: each starts with a line such as 'A0003/25 NOTAMN' (series, number/year, type)",
            field="item 1",
        )
    stray = next((i for i in range(found[0][0]) if lines[i].strip()), None)
    if stray is not None:
        raise NotamError(
            f"line {stray + 1}: {lines[stray].strip()[:40]!r} is not part of a NOTAM "
            "(each starts with a line such as 'A0003/25 NOTAMN')",
            field="item 1",
        )
    out = []
    for k, (i, m) in enumerate(found):
        end = found[k + 1][0] if k + 1 < len(found) else len(lines)
        body = "\n".join(lines[i + 1 : end]).strip()
        if m.group(0).lstrip().startswith("(") and body.endswith(")"):
            body = body[:-1]
        raw = RawNotam(k + 1, i + 1, m.group(1), int(m.group(2)), 2000 + int(m.group(3)), m.group(4))
        raw.items = _items(raw, body)
        out.append(raw)
    return out


def _items(raw: RawNotam, body: str) -> dict[str, str]:
    """Items Q, A–G of one NOTAM's body; a marker out of order (``TWY A)`` in item E) is the text's own."""
    order = "QABCDEFG"
    marks: list[re.Match[str]] = []
    for m in _ITEM.finditer(body):
        if marks and order.index(m.group(1)) <= order.index(marks[-1].group(1)):
            if m.group(1) in "QABC" and marks[-1].group(1) in "QABC":
                raise fail(raw.n, m.group(1), f"repeated or out of order ({raw.ident}): items come Q, A, B, C...")
            continue
        marks.append(m)
    if not marks or marks[0].start() != 0 and body[: marks[0].start()].strip():
        lead = body[: marks[0].start()] if marks else body
        raise fail(raw.n, "Q", f"expected 'Q)' after item 1, found {lead.strip()[:40]!r}")
    items: dict[str, str] = {}
    for k, m in enumerate(marks):
        stop = marks[k + 1].start() if k + 1 < len(marks) else len(body)
        items[m.group(1)] = " ".join(body[m.end() : stop].split())
    return items


# --- coordinates --------------------------------------------------------------------------------


def format_minutes(lon: float, lat: float) -> tuple[str, float, float]:
    """The Q-line's centre ``DDMMNDDDMME`` (rounded to the nearest minute), and the (lon, lat) it says.

    >>> format_minutes(37.6298, 34.5226)[0]
    '3431N03738E'
    """
    lat_min = round(abs(lat) * 60)
    lon_min = round(abs(lon) * 60)
    text = (
        f"{lat_min // 60:02d}{lat_min % 60:02d}{'N' if lat >= 0 else 'S'}"
        f"{lon_min // 60:03d}{lon_min % 60:02d}{'E' if lon >= 0 else 'W'}"
    )
    return text, math.copysign(lon_min / 60, lon), math.copysign(lat_min / 60, lat)


@dataclass(frozen=True)
class QLine:
    """The Q-line's eight fields, read."""

    fir: str
    code: str
    traffic: str
    purpose: str
    scope: str
    lower_fl: int
    upper_fl: int
    lon: float
    lat: float
    radius_nm: int

    def text(self) -> str:
        """The Q-line as written (the centre rounded to the minute)."""
        centre = format_minutes(self.lon, self.lat)[0]
        return (
            f"{self.fir}/{self.code}/{self.traffic}/{self.purpose}/{self.scope}/"
            f"{self.lower_fl:03d}/{self.upper_fl:03d}/{centre}{self.radius_nm:03d}"
        )


_Q_FIELDS = ("FIR", "NOTAM code", "traffic", "purpose", "scope", "lower limit", "upper limit", "centre and radius")


def parse_qline(text: str, n: int) -> QLine:
    """The Q-line ``FIR/QCODE/TRAFFIC/PURPOSE/SCOPE/LOWER/UPPER/DDMMNDDDMMERRR``."""
    parts = [p.strip() for p in text.split("/")]
    if len(parts) != 8:
        raise fail(n, "Q", f"{len(parts)} fields where it has 8 ({', '.join(_Q_FIELDS)}), separated by '/'")
    fir, code, traffic, purpose, scope, lower, upper, centre = parts
    checks = (
        (fir, r"[A-Z]{4}", "FIR", "a 4-letter ICAO location indicator such as OSTT"),
        (code, r"Q[A-Z]{4}", "NOTAM code", "Q and four letters such as QRTCA"),
        (traffic, r"IV|I|V|K", "traffic", "I, V or IV"),
        (purpose, r"[NBOMK]{1,3}", "purpose", "letters of NBOM such as BO"),
        (scope, r"[AEWK]{1,2}", "scope", "letters of AEW such as W"),
        (lower, r"\d{3}", "lower limit", "a flight level of three digits such as 000"),
        (upper, r"\d{3}", "upper limit", "a flight level of three digits such as 150"),
    )
    for value, pattern, name, expected in checks:
        if not re.fullmatch(pattern, value):
            raise fail(n, "Q", f"{name} {value!r}: expected {expected}")
    if int(lower) > int(upper):
        raise fail(n, "Q", f"lower limit FL{lower} is above upper limit FL{upper}")
    m = _Q_CENTRE.match(centre)
    if m is None:
        raise fail(n, "Q", f"centre and radius {centre!r}: expected DDMMNDDDMMERRR such as 3431N03738E010")
    lat_d, lat_m, ns, lon_d, lon_m, ew, radius = m.groups()
    if int(lat_m) >= 60 or int(lon_m) >= 60 or int(lat_d) > 90 or int(lon_d) > 180:
        raise fail(n, "Q", f"centre {centre[:11]!r}: degrees or minutes out of range")
    lat = (int(lat_d) + int(lat_m) / 60) * (1 if ns == "N" else -1)
    lon = (int(lon_d) + int(lon_m) / 60) * (1 if ew == "E" else -1)
    return QLine(fir, code, traffic, purpose, scope, int(lower), int(upper), lon, lat, int(radius))


def format_dms(lon: float, lat: float) -> str:
    """A position in item E: ``DDMMSS.SSN DDDMMSS.SSE`` (to 0.01 second, about 0.3 m).

    >>> format_dms(37.6298, 34.5226)
    '343121.36N 0373747.28E'
    """

    def dms(value: float, width: int) -> str:
        hundredths = round(abs(value) * 360_000)
        d, rest = divmod(hundredths, 360_000)
        m, s = divmod(rest, 6000)
        return f"{d:0{width}d}{m:02d}{s // 100:02d}.{s % 100:02d}"

    return f"{dms(lat, 2)}{'N' if lat >= 0 else 'S'} {dms(lon, 3)}{'E' if lon >= 0 else 'W'}"


def parse_dms_pair(text: str) -> list[tuple[float, float]]:
    """Every ``DDMM[SS[.ss]]N DDDMM[SS[.ss]]E`` position in ``text``, as (lon, lat), in order.

    >>> parse_dms_pair("PSN 3330N03615E AND 343121.36N 0373747.28E")
    [(36.25, 33.5), (37.6298, 34.5226)]
    """
    out = []
    for lat_d, lat_m, lat_s, ns, lon_d, lon_m, lon_s, ew in _DMS_PAIR.findall(text):
        lat = (int(lat_d) + int(lat_m) / 60 + float(lat_s or 0) / 3600) * (1 if ns == "N" else -1)
        lon = (int(lon_d) + int(lon_m) / 60 + float(lon_s or 0) / 3600) * (1 if ew == "E" else -1)
        out.append((round(lon, 8), round(lat, 8)))
    return out


# --- times --------------------------------------------------------------------------------------


def format_stamp(t: datetime, *, up: bool = False) -> str:
    """``YYMMDDHHMM`` UTC, to the minute: down (a start), or up with ``up`` (an end), so the NOTAM's
    window holds the notice's."""
    t = t.astimezone(UTC)
    if up and (t.second or t.microsecond):
        t = t.replace(second=0, microsecond=0) + timedelta(minutes=1)
    return t.strftime("%y%m%d%H%M")


def parse_stamp(text: str, n: int, item: str) -> datetime:
    """A ``YYMMDDHHMM`` UTC stamp."""
    m = _STAMP.match(text.strip())
    if m is None:
        raise fail(n, item, f"{text.strip()[:20]!r} is not a time; expected YYMMDDHHMM in UTC such as 2504090800")
    yy, mo, dd, hh, mi = (int(g) for g in m.groups())
    try:
        return datetime(2000 + yy, mo, dd, hh, mi, tzinfo=UTC)
    except ValueError as e:
        raise fail(n, item, f"{text.strip()!r} is not a time: {e}") from None


# --- levels -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Level:
    """An item F or G level in metres above mean sea level; ``surface``/``unlimited`` when it said so."""

    metres: float
    surface: bool = False
    unlimited: bool = False


_LEVEL = re.compile(r"^(?:(SFC|GND)|(UNL)|FL\s*(\d{1,3})|(\d+)\s*(FT|M)(?:\s*(AMSL|MSL|AGL|SFC|GND))?)$")


def parse_level(text: str, n: int, item: str, *, surface_m: float, unlimited_m: float) -> Level:
    """An item F/G level: ``SFC``/``GND``, ``UNL``, ``FL120``, ``5000FT AMSL`` or ``1500M AMSL``.

    A flight level is read as hundreds of feet above mean sea level (the standard atmosphere). A height
    above ground (AGL) is refused: the service keeps altitudes above mean sea level.
    """
    m = _LEVEL.match(" ".join(text.upper().split()))
    if m is None:
        raise fail(n, item, f"{text!r} is not a level; give SFC, UNL, FL120, 5000FT AMSL or 1500M AMSL")
    sfc, unl, fl, value, unit, ref = m.groups()
    if sfc:
        return Level(surface_m, surface=True)
    if unl:
        return Level(unlimited_m, unlimited=True)
    if ref in ("AGL", "SFC", "GND"):
        raise fail(n, item, f"{text!r} is a height above ground; give it above mean sea level (AMSL) or as FL")
    feet = int(fl) * 100 if fl is not None else (int(value) if unit == "FT" else int(value) / FT_M)
    return Level(round(feet * FT_M, 1))
