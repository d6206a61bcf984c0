"""A 4D volume index: broad phase over footprints and intervals, exact ground distance on candidates.

Volumes live in one :class:`~deconflict.geo.Frame`. The broad phase is a shapely
``STRtree`` over footprint envelopes (grown by the separation at query time), then
interval filters on time and altitude in numpy; only what survives gets the exact
ground-distance test. The tree is immutable, so new volumes go to a small delta that is
scanned linearly and merged into a rebuilt tree when it grows past a share of the whole.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import shapely

from deconflict.geo import Frame

SEPARATION_PAD = 1.002
"""Growth of query envelopes over the separation, covering the frame's scale error."""


@dataclass(frozen=True)
class Candidate:
    """One indexed volume found within separation of a query, with its ground distance in metres."""

    slot: int
    key: Any
    party: str
    distance_m: float


class VolumeIndex:
    """Index of volumes (footprint in a frame, altitude band, time window) answering conflict queries."""

    def __init__(self, frame: Frame, capacity: int = 1024, delta_share: float = 0.05) -> None:
        self.frame = frame
        self.delta_share = delta_share
        self._n = 0
        self._n_tree = 0
        self._tree: shapely.STRtree | None = None
        self._alloc(capacity)
        self.keys: list[Any] = []
        self._slot_of: dict[Any, int] = {}
        self._party_code: dict[str, int] = {}
        self._party_name: list[str] = []

    def _alloc(self, capacity: int) -> None:
        old = getattr(self, "geoms", None)
        n = self._n
        new_geoms = np.empty(capacity, dtype=object)
        arrays = {
            "radii": np.zeros(capacity),
            "env": np.zeros((capacity, 4)),
            "t0": np.zeros(capacity),
            "t1": np.zeros(capacity),
            "z0": np.zeros(capacity),
            "z1": np.zeros(capacity),
            "party": np.zeros(capacity, dtype=np.int32),
            "alive": np.zeros(capacity, dtype=bool),
        }
        if old is not None:
            new_geoms[:n] = old[:n]
            for name, arr in arrays.items():
                arr[:n] = getattr(self, name)[:n]
        self.geoms = new_geoms
        for name, arr in arrays.items():
            setattr(self, name, arr)

    def __len__(self) -> int:
        return int(self.alive[: self._n].sum())

    def _code(self, party: str) -> int:
        code = self._party_code.get(party)
        if code is None:
            code = self._party_code[party] = len(self._party_name)
            self._party_name.append(party)
        return code

    def add(
        self,
        keys: list[Any],
        parties: list[str],
        geoms: np.ndarray,
        radii: np.ndarray,
        t0: np.ndarray,
        t1: np.ndarray,
        z0: np.ndarray,
        z1: np.ndarray,
    ) -> None:
        """Add volumes: frame geometries, radii (m), windows (epoch seconds) and bands (m)."""
        m = len(keys)
        if m == 0:
            return
        for key in keys:
            if key in self._slot_of:
                raise ValueError(f"volume {key!r} is already indexed")
        if self._n + m > len(self.geoms):
            self._alloc(max(2 * len(self.geoms), self._n + m))
        s = slice(self._n, self._n + m)
        self.geoms[s] = geoms
        self.radii[s] = radii
        self.env[s] = self.frame.envelopes(np.asarray(geoms, dtype=object), np.asarray(radii, dtype=float))
        self.t0[s], self.t1[s], self.z0[s], self.z1[s] = t0, t1, z0, z1
        self.party[s] = [self._code(p) for p in parties]
        self.alive[s] = True
        for i, key in enumerate(keys):
            self._slot_of[key] = self._n + i
        self.keys.extend(keys)
        self._n += m
        if self._n - self._n_tree > max(256, self.delta_share * self._n):
            self.rebuild()

    def remove(self, key: Any) -> bool:
        """Forget a volume; returns whether it was indexed."""
        slot = self._slot_of.pop(key, None)
        if slot is None:
            return False
        self.alive[slot] = False
        self.geoms[slot] = None
        return True

    def rebuild(self) -> None:
        """Compact away removed volumes and rebuild the tree over everything."""
        live = np.flatnonzero(self.alive[: self._n])
        if len(live) < self._n:
            keys = [self.keys[i] for i in live]
            for name in ("geoms", "radii", "env", "t0", "t1", "z0", "z1", "party", "alive"):
                arr = getattr(self, name)
                arr[: len(live)] = arr[live]
                arr[len(live) : self._n] = None if name == "geoms" else 0
            self.keys = keys
            self._slot_of = {k: i for i, k in enumerate(keys)}
            self._n = len(live)
        env = self.env[: self._n]
        self._tree = shapely.STRtree(shapely.box(env[:, 0], env[:, 1], env[:, 2], env[:, 3])) if self._n else None
        self._n_tree = self._n

    def _broad(self, box: np.ndarray) -> np.ndarray:
        parts = []
        if self._tree is not None:
            parts.append(self._tree.query(shapely.box(*box)))
        if self._n > self._n_tree:
            env = self.env[self._n_tree : self._n]
            hit = (env[:, 0] <= box[2]) & (box[0] <= env[:, 2]) & (env[:, 1] <= box[3]) & (box[1] <= env[:, 3])
            parts.append(np.flatnonzero(hit) + self._n_tree)
        return np.concatenate(parts) if parts else np.empty(0, dtype=np.intp)

    def query(
        self,
        geom: Any,
        radius_m: float,
        t0: float,
        t1: float,
        z0: float,
        z1: float,
        *,
        separation_m: float,
        vertical_separation_m: float,
        exclude_party: str | None = None,
    ) -> list[Candidate]:
        """Indexed volumes that conflict with one volume (frame geometry, window, band)."""
        box = self.frame.envelopes(np.array([geom], dtype=object), np.array([radius_m]))[0]
        cx, cy = (box[0] + box[2]) / 2, (box[1] + box[3]) / 2
        pad = separation_m * float(self.frame.scale(cx, cy)) * SEPARATION_PAD + 1.0
        box = box + np.array([-pad, -pad, pad, pad])
        idx = self._broad(box)
        if len(idx) == 0:
            return []
        mask = (
            self.alive[idx]
            & (self.t0[idx] < t1)
            & (t0 < self.t1[idx])
            & (self.z0[idx] < z1 + vertical_separation_m)
            & (z0 < self.z1[idx] + vertical_separation_m)
        )
        if exclude_party is not None and exclude_party in self._party_code:
            mask &= self.party[idx] != self._party_code[exclude_party]
        idx = idx[mask]
        if len(idx) == 0:
            return []
        dist = self.frame.ground_distance(geom, radius_m, self.geoms[idx], self.radii[idx])
        keep = dist <= separation_m
        return [
            Candidate(int(i), self.keys[i], self._party_name[self.party[i]], float(d))
            for i, d in zip(idx[keep], dist[keep], strict=True)
        ]

    def slot(self, key: Any) -> int | None:
        return self._slot_of.get(key)

    def memory_bytes(self) -> int:
        """Approximate bytes held by the index arrays and geometries' coordinates."""
        n = self._n
        coords = int(shapely.get_num_coordinates(self.geoms[:n][self.alive[:n]]).sum()) * 16
        arrays = sum(getattr(self, a).nbytes for a in ("radii", "env", "t0", "t1", "z0", "z1", "party", "alive"))
        return coords + arrays + n * 120
