"""Track states and predicted conflicts as columns: the input and the output of tactical detection.

:class:`Tracks` holds one instant's states (one row per track, numpy columns, checked on
construction); :class:`TrackConflictTable` the pairs predicted to lose separation, and
:class:`TrackConflict` one such pair as an object.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from deconflict.errors import InvalidInput

__all__ = ["TrackConflict", "TrackConflictTable", "Tracks"]


@dataclass(frozen=True)
class Tracks:
    """Track states at one instant, as columns (one row per track).

    ``ids`` are strings; positions WGS84 degrees; ``alt_m`` metres above mean sea level;
    ``gs_mps`` ground speed and ``vs_mps`` vertical speed in metres per second;
    ``trk_deg`` track angle in degrees clockwise from true north.
    """

    ids: list[str]
    lat_deg: np.ndarray
    lon_deg: np.ndarray
    alt_m: np.ndarray
    gs_mps: np.ndarray
    trk_deg: np.ndarray
    vs_mps: np.ndarray

    @classmethod
    def of(
        cls, ids: Sequence[Any], lat_deg: Any, lon_deg: Any, alt_m: Any, gs_mps: Any, trk_deg: Any, vs_mps: Any
    ) -> Tracks:
        """Columns checked: same lengths, finite numbers, positions on the globe, speeds not negative, ids unique.

        >>> t = Tracks.of(["A"], [34.5], [37.6], [3000.0], [100.0], [90.0], [0.0])
        >>> len(t), t.ids
        (1, ['A'])
        """
        names = [str(i) for i in ids]
        cols = {
            "lat_deg": lat_deg,
            "lon_deg": lon_deg,
            "alt_m": alt_m,
            "gs_mps": gs_mps,
            "trk_deg": trk_deg,
            "vs_mps": vs_mps,
        }
        arrays = {}
        for name, value in cols.items():
            a = np.atleast_1d(np.asarray(value, dtype=float))
            if a.shape != (len(names),):
                raise InvalidInput(f"{name}: expected {len(names)} values, one per track, got {a.shape}", field=name)
            bad = np.flatnonzero(~np.isfinite(a))
            if len(bad):
                raise InvalidInput(f"track {names[bad[0]]!r}: {name} is not a finite number", field=name)
            arrays[name] = a
        checks = (
            ("lat_deg", np.abs(arrays["lat_deg"]) > 90.0, "latitude is outside -90..90"),
            ("lon_deg", np.abs(arrays["lon_deg"]) > 180.0, "longitude is outside -180..180"),
            ("gs_mps", arrays["gs_mps"] < 0.0, "ground speed is negative"),
        )
        for name, wrong, why in checks:
            if np.any(wrong):
                raise InvalidInput(f"track {names[int(np.argmax(wrong))]!r}: {why}", field=name)
        if len(set(names)) != len(names):
            seen: set[str] = set()
            dup = next(n for n in names if n in seen or seen.add(n))  # type: ignore[func-returns-value]
            raise InvalidInput(f"track {dup!r} appears more than once", field="id")
        return cls(names, **arrays)

    def __len__(self) -> int:
        return len(self.ids)


@dataclass(frozen=True)
class TrackConflict:
    """Two tracks predicted to lose separation within the look-ahead (times in seconds from now)."""

    a: str
    b: str
    tcpa_s: float
    """Moment of horizontal closest approach within ``[0, T]``."""
    dcpa_m: float
    """Horizontal distance at ``tcpa_s``, metres."""
    t_in_s: float
    """Start of the loss of separation (0 when already lost)."""
    t_out_s: float
    """End of the loss of separation, capped at T."""

    def to_json(self) -> dict[str, Any]:
        """The object ``deconflict tracks`` prints for it."""
        return {
            "a": self.a,
            "b": self.b,
            "tcpa_s": self.tcpa_s,
            "dcpa_m": self.dcpa_m,
            "t_in_s": self.t_in_s,
            "t_out_s": self.t_out_s,
        }


@dataclass(frozen=True)
class TrackConflictTable:
    """Track conflicts as columns, one row per pair; ``a``/``b`` index the tracks, id of a < id of b, sorted."""

    a: np.ndarray
    b: np.ndarray
    tcpa_s: np.ndarray
    dcpa_m: np.ndarray
    t_in_s: np.ndarray
    t_out_s: np.ndarray

    def __len__(self) -> int:
        return len(self.a)

    def conflicts(self, tracks: Tracks) -> list[TrackConflict]:
        """The rows as TrackConflict objects."""
        ids = tracks.ids
        rows = zip(
            self.a.tolist(),
            self.b.tolist(),
            self.tcpa_s.tolist(),
            self.dcpa_m.tolist(),
            self.t_in_s.tolist(),
            self.t_out_s.tolist(),
            strict=True,
        )
        return [TrackConflict(ids[a], ids[b], tc, dc, ti, to) for a, b, tc, dc, ti, to in rows]
