"""Mode S Beast binary (a receiver's TCP 30005) read with pyModeS: its Beast reader un-escapes the frames,
its :class:`pyModeS.PipeDecoder` decodes each Mode S message with per-aircraft state, resolving CPR
positions from even/odd pairs and then locally from the last trusted one (a position counts only once a
consistent cluster of them has been seen: a corrupted frame does not move an aircraft). What an
ADS-B message says is handed on as the :class:`~deconflict.formats.adsb.SbsMessage` a BaseStation line of
the same kind would carry (identification as MSG,1, airborne position as MSG,3, velocity as MSG,4), so
the same :class:`~deconflict.formats.adsb.AdsbPicture` merges it. Only DF17/18 frames whose CRC holds are
used; surface positions are left (a track on the ground is not in the tactical picture).

>>> b = BeastReader()
>>> frame = lambda hexmsg: b"\\x1a\\x33" + bytes(7) + bytes.fromhex(hexmsg)
>>> pair = frame("8D40621D58C382D690C8AC2863A7") + frame("8D40621D58C386435CC412692AD6")
>>> [m for m in b.messages(pair * 2, 1.0) if m.lat is not None]  # a cluster of positions is not there yet
[]
>>> m = [m for m in b.messages(pair, 2.0) if m.lat is not None][0]
>>> m.icao, m.alt_ft, round(m.lat, 4), round(m.lon, 4)
('40621D', 38000.0, 52.2658, 3.9389)
"""

from __future__ import annotations

import math
import warnings
from typing import Any

from deconflict.formats.adsb import SbsMessage
from deconflict.formats.docs import TRACK_FIELDS

__all__ = ["BeastReader"]

_KINDS = {"0,5": 3, "0,9": 4, "0,8": 1}
"""The BaseStation transmission type that says the same as each ADS-B register (BDS) used."""


def _value(d: Any, key: str, name: str) -> float | None:
    """A decoded field in its report range (TRACK_FIELDS), else None: a value the service would refuse
    is left out here rather than have it refuse the whole batch."""
    value = d.get(key)
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        return None
    _, low, high = TRACK_FIELDS[name]
    return float(value) if low <= value <= high else None


class BeastReader:
    """Beast bytes in, what each usable ADS-B message says out; keeps the partial frame between chunks."""

    def __init__(self) -> None:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            from pyModeS import PipeDecoder
            from pyModeS.cli._source import _parse_beast_buffer  # pyModeS's Beast reader (pinned 3.6.1)
        self._pipe = PipeDecoder()
        self._frames = _parse_beast_buffer
        self._rest = b""
        self.frames = 0
        self.used = 0

    def messages(self, chunk: bytes, timestamp: float) -> list[SbsMessage]:
        """The messages in ``chunk`` (with what came before it), decoded at ``timestamp`` (seconds on
        a steady clock: pyModeS pairs even and odd CPR frames that arrive within 10 s)."""
        frames, self._rest = self._frames(self._rest + chunk)
        out = []
        for _ticks, payload in frames:
            self.frames += 1
            d = self._pipe.decode(payload, timestamp=timestamp)
            kind = _KINDS.get(str(d.get("bds")))
            if d.get("df") not in (17, 18) or not d.get("crc_valid") or not d.get("icao") or kind is None:
                continue
            lat, lon = _value(d, "latitude", "lat"), _value(d, "longitude", "lon")
            callsign = str(d.get("callsign") or "").strip("_ ") or None
            self.used += 1
            out.append(
                SbsMessage(
                    icao=str(d["icao"]).upper(),
                    transmission=kind,
                    callsign=callsign,
                    alt_ft=_value(d, "altitude", "alt_ft"),
                    gs_kt=_value(d, "groundspeed", "gs_kt"),
                    trk_deg=_value(d, "track", "trk_deg"),
                    lat=lat if lon is not None else None,
                    lon=lon if lat is not None else None,
                    vs_fpm=_value(d, "vertical_rate", "vs_fpm"),
                )
            )
        return out
