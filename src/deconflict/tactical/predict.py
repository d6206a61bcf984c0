"""Predicted loss of separation: straight-line extrapolated tracks, closest approach, and the conflict window.

The tracks' projection into a frame is in ``_motion``, the compiled grid and exact test in ``_kernel``,
the refinement of pairs in doubt in ``_refine``;
conformance of positions to notified volumes is :mod:`deconflict.tactical.conformance`.

State-based detection as air-traffic tools do it (BlueSky's ``StateBased``): each track
flies on from its current state, and two tracks *conflict* when at some moment of
``[0, T]`` their horizontal distance is below R **and** their vertical distance below H
at that same moment. For a pair the horizontal window ``|dp + dv t| < R`` and the
vertical window ``|dz + dvz t| < H`` are open intervals solved in closed form, then
intersected with each other and with the look-ahead.

**Motion.** A track flies the geodesic that leaves its position along its track angle
(degrees from true north) at constant ground speed, and climbs at constant vertical
speed. Positions are projected into a :class:`~deconflict.geo.Frame` (secant oblique
stereographic, conformal). There the track moves along the *chord* of its path over the
look-ahead: the velocity is the true velocity turned by the frame's meridian
convergence and scaled by its scale factor at the track, plus half the curvature term of
a geodesic in the conformal plane over ``T`` (second order), so the chord's ends are the
geodesic's at 0 and T. The gap to the geodesic is at most about ``c L²/8`` at mid-chord
(``c`` the geodesic's curvature in the plane, about ``ρ / 2R²`` at ``ρ`` from the frame's
centre, ``L`` the distance flown): 4 m at 450 km from the centre for 500 kt over 300 s,
per track; two tracks that cross stray in different directions, so their errors add
(the pair's budget is below).
Plane distances between a pair are divided by the frame's scale factor at the pair's
midpoint at closest approach (the scale varies by a few parts in 10⁵ over 10 km).
Horizontal distances are on the ellipsoid's surface (not at altitude).

**Reported figures** (``TrackConflictTable``):

- ``tcpa_s``: the moment of ``[0, T]`` when the two are horizontally closest: the
  closest approach of the extrapolated lines, ``-dp·dv/|dv|²``, clamped to ``[0, T]``
  (0 when the relative velocity is zero). Horizontal distance is convex in time, so this
  is the minimum over the look-ahead. BlueSky reports the same moment unclamped (it may be
  in the past or beyond T); a duty officer is told only what lies within the look-ahead.
- ``dcpa_m``: the horizontal distance at ``tcpa_s``, metres.
- ``t_in_s`` / ``t_out_s``: the conflict window within ``[0, T]``: both distances below
  the minima strictly inside it (``t_in_s`` 0 when separation is already lost).

"Below" is strict, by ``STRICT_M`` (1 µm): altitudes converted from whole feet exactly H
apart are not a conflict even where binary rounding leaves a residue of 10⁻¹² m.

**What a pair's answer depends on: its two states only.** Every track is measured in
one frame fitted to the input (or to its cell when the input is wide), and that frame's
distance between two tracks is off from the ellipsoid's by up to a few metres: both
tracks' chords stray from their geodesics and, when they cross, the two errors add;
the scale factor also changes along the pair. :func:`~deconflict.tactical._refine.screen_error_m`
bounds this for each pair from how far from the frame's centre it flies (E, the
*pair's* budget: ``1.5 (ρ (La² + Lb²) / 16 Re² + (R + 1) ρ (L + R) / 2 Re²) + 0.5`` m;
about 25 m for a pair at the edge of Syria's frame at 500 kt, measured at most 0.37 E).
The frame's test runs with R + E and R - E: a pair that passes both is a conflict with
the frame's figures (within E of the ellipsoid's); a pair that passes neither is not;
every other pair is decided on the ellipsoid itself by ``_refine.refine``, from its own
two states (``Geod.fwd`` positions, Newton steps in the tangent frame of the geodesic
joining them: figures within 1 mm and 1 ms of the geodesic reference). So adding or
removing other tracks never changes a pair's verdict, and moves its figures by at most
its E.

The broad phase (``_kernel.grid_slice``, compiled with numba and cached on disk) cuts
the look-ahead into time slices. In each slice, each track's path is boxed (in x, y and
altitude, grown by half of R + E and of H) and put in every square cell its box touches;
in each cell the boxes are swept in order of their floor, and a pair is tested only in
the cell holding the low corner of the two boxes' overlap (so once per slice), and only
in the first slice where the boxes overlap (so once). Before that, a pair is screened
without division (``_kernel.pair_may``: level and H apart, or lines passing farther
than R + E apart at the frame's largest scale, E the frame's bound on every pair's own,
with a margin for rounding): it rejects only pairs the exact test rejects. The exact test
tries R - E first: a pair in conflict there is sure, and the wider R + E need not be
computed. Slices run in threads (the kernel and pyproj release the GIL), each refining
its own pairs in doubt when it has many (the few of all slices are refined in one call);
the rows are then put in buckets of ranks of their first track and each bucket sorted in cache
(``_compiled_table``, in threads too), with no sort of the whole table.
Memory grows with the number of tracks and of conflicts, never with N². Below
``NUMBA_FROM`` tracks the numpy engine (``_numpy``: the same test, operation for
operation, on a grid of cells and altitude bands) runs instead, so small
inputs never load numba; both give the same table to the last bit.
``brute_force_track_conflicts`` runs the same exact test on every pair and gives
identical results.

**Start-up.** numba is imported at the first detection in a process (never by
``import deconflict`` nor ``--help``): about 0.7 s of CPU here, plus about 0.7 s to load
the cached machine code; the first detection after installation compiles it (about
20 s of CPU, once: ``cache=True`` keeps it beside the module or in ``NUMBA_CACHE_DIR``).
A process that detects once (``deconflict tracks``) passes ``numba_from=``
:func:`one_shot_numba_from`: the numpy engine below ``ONE_SHOT_NUMBA_FROM`` tracks (below
``COLD_NUMBA_FROM`` when nothing is cached yet), where it finishes before numba would
have loaded; a service detecting every second keeps ``NUMBA_FROM``.
"""

from __future__ import annotations

import math
import os
import sys
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from types import ModuleType

import numpy as np

from deconflict.errors import InvalidInput
from deconflict.geo import Frame
from deconflict.tactical._motion import MAX_FRAME_RADIUS_M, _frames, _plane
from deconflict.tactical._numpy import CELL_SPEED, brute_rows, grid_rows
from deconflict.tactical._refine import refine, screen_error_m
from deconflict.tactical.tracks import TrackConflictTable, Tracks
from deconflict.units import FT_M, NM_M

__all__ = [
    "COLD_NUMBA_FROM",
    "DEFAULT_HPZ_M",
    "DEFAULT_LOOKAHEAD_S",
    "DEFAULT_RPZ_M",
    "KERNEL_CELL_SPEED",
    "NUMBA_FROM",
    "ONE_SHOT_NUMBA_FROM",
    "SLICES",
    "STRICT_M",
    "THREADS",
    "THREADS_FROM",
    "brute_force_track_conflicts",
    "find_track_conflicts",
    "one_shot_numba_from",
]

DEFAULT_RPZ_M = 5 * NM_M
"""Horizontal separation R, metres (5 NM: 9260 m)."""
DEFAULT_HPZ_M = 1000 * FT_M
"""Vertical separation H, metres (1000 ft: 304.8 m)."""
DEFAULT_LOOKAHEAD_S = 300.0
"""Look-ahead T, seconds."""
STRICT_M = 1e-6
"""Distances must be below the minima by more than this (metres) to count as a conflict."""
SLICES = 4
"""Time slices of the look-ahead in the broad phase."""
THREADS = min(os.cpu_count() or 1, 4)
"""Threads that work on time slices at once (numpy releases the GIL in its loops)."""
THREADS_FROM = 2000
"""Fewest tracks in a frame for which slices are worked on in threads."""
KERNEL_CELL_SPEED = 0.5
"""The compiled grid's cell side, in distance flown in one slice at the 90th percentile of speed (plus R + E).

Half the numpy engine's (``CELL_SPEED``): more cells per box, but fewer boxes swept in each
cell whose paths never come near (about 15% less work at 100,000 tracks). The cells decide
only which pairs are tested, never a pair's answer.
"""
BUCKET_ROWS = 4096
"""Rows a bucket of the compiled engine's table holds, about (sorted on its own, in cache)."""
REFINE_IN_SLICE_FROM = 256
"""Fewest pairs in doubt a slice of the compiled engine refines itself, in its thread; fewer wait for one call.

A call to ``_refine.refine`` costs about 0.7 ms whatever its size, then 20-40 us a pair: at
10,000 tracks each slice has a dozen, at 100,000 about a thousand.
"""
TABLE_THREADS_FROM = 100_000
"""Fewest conflicts for which the compiled engine's table is built in threads."""
NUMBA_FROM = 5000
"""Fewest tracks for which the compiled engine (``_kernel``) runs; below, the numpy engine (``_numpy``).

Loading numba costs about 2 s of CPU once per process; below this size a detection
takes less than that in numpy. Both engines give the same answer to the last bit.
"""


ONE_SHOT_NUMBA_FROM = 50_000
"""Fewest tracks for which a process that detects once (``deconflict tracks``) loads the compiled engine.

Importing numba and loading the cached machine code take about 1.4 s of CPU here (0.7 s
each); the numpy engine takes 0.18 s for 10,000 tracks and 0.75 s for 30,000, the
compiled one 1.4 s and 1.6 s counting its start-up.
"""
COLD_NUMBA_FROM = 200_000
"""The same when no compiled code is cached yet: compiling it costs about 20 s of CPU (once per installation)."""


def _compiled_code_cached() -> bool:
    """Whether ``_kernel``'s machine code is in numba's cache, newer than the module (from the files: numba not loaded).

    Looks where numba keeps it: ``NUMBA_CACHE_DIR``, and ``__pycache__`` beside the module.
    """
    source = Path(__file__).with_name("_kernel.py")
    places = [Path(os.environ["NUMBA_CACHE_DIR"])] if os.environ.get("NUMBA_CACHE_DIR") else []
    places.append(source.parent / "__pycache__")
    try:
        stamp = source.stat().st_mtime
        for place in places:
            for index in place.rglob("_kernel.grid_slice-*.nbi"):
                if index.stat().st_mtime >= stamp:
                    return True
    except OSError:
        pass
    return False


def one_shot_numba_from() -> int:
    """The ``numba_from`` for a process that detects once: the compiled engine only where it pays for its start-up."""
    if "deconflict.tactical._kernel" in sys.modules:
        return NUMBA_FROM
    return ONE_SHOT_NUMBA_FROM if _compiled_code_cached() else COLD_NUMBA_FROM


def _check_minima(rpz_m: float, hpz_m: float, lookahead_s: float) -> None:
    for name, value in (("rpz_m", rpz_m), ("hpz_m", hpz_m), ("lookahead_s", lookahead_s)):
        if not (math.isfinite(value) and value > 0):
            raise InvalidInput(f"{name}: must be a number above 0, got {value!r}", field=name)


def _kernel() -> ModuleType:
    """The compiled engine, imported (and numba with it) at its first use only."""
    from deconflict.tactical import _kernel as kernel

    return kernel


class _Found:
    """Conflicts gathered across frames and slices, in rank numbering, and the pairs left to refine."""

    def __init__(self) -> None:
        self.cols: list[tuple[np.ndarray, ...]] = []
        self.doubt: list[tuple[np.ndarray, np.ndarray]] = []

    def add(self, members: np.ndarray, rows: np.ndarray, figures: np.ndarray) -> None:
        """Kernel rows (i, j, code) and their figures: sure pairs kept, pairs in doubt set aside."""
        i, j, code = members[rows[0]], members[rows[1]], rows[2]
        sure = code == 1
        self.cols.append((i[sure], j[sure], *(f[sure] for f in figures)))
        self.doubt.append((i[~sure], j[~sure]))

    def table(
        self,
        tracks: Tracks,
        order: np.ndarray,
        rpz_m: float,
        hpz_m: float,
        lookahead_s: float,
        compiled: bool | None = None,
    ) -> TrackConflictTable:
        """The sorted table, once every pair in doubt has been decided on the ellipsoid (``_refine.refine``).

        Sorted by the compiled ``pair_order`` if ``compiled`` (None: from ``NUMBA_FROM`` tracks), else by numpy.
        """
        if self.doubt:
            ra, rb = (np.concatenate(c) for c in zip(*self.doubt, strict=True))
            if len(ra):
                ok, *figures = refine(tracks, order[ra], order[rb], rpz_m, hpz_m, lookahead_s, STRICT_M)
                self.cols.append((ra[ok], rb[ok], *(c[ok] for c in figures)))
        if not self.cols:
            e = np.empty(0, dtype=np.int64)
            return TrackConflictTable(e, e, np.empty(0), np.empty(0), np.empty(0), np.empty(0))
        ra, rb, *rest = (np.concatenate(c) for c in zip(*self.cols, strict=True))
        if len(order) >= NUMBA_FROM if compiled is None else compiled:
            s = _kernel().pair_order(ra, rb, len(order))
        else:
            s = np.argsort(ra * np.int64(len(order)) + rb, kind="stable")
        return TrackConflictTable(order[ra[s]], order[rb[s]], *(c[s] for c in rest))


def _prepare(tracks: Tracks, rpz_m: float, hpz_m: float, lookahead_s: float) -> np.ndarray:
    _check_minima(rpz_m, hpz_m, lookahead_s)
    return np.array(sorted(range(len(tracks)), key=tracks.ids.__getitem__), dtype=np.int64)


def _margin_m(tracks: Tracks, rpz_m: float, lookahead_s: float) -> float:
    """Farthest apart (metres, generously) two tracks can be now and still conflict within the look-ahead.

    R is grown by the screen's error in the widest frame a split input can have.
    """
    gs = float(tracks.gs_mps.max())
    flown = gs * lookahead_s
    wide = rpz_m + float(screen_error_m(4 * MAX_FRAME_RADIUS_M + flown, flown, flown, rpz_m))
    return 1.01 * (wide + 2 * gs * lookahead_s) + 1.0


class _InFrame:
    """One frame's tracks as the kernel takes them, and the frame's constants."""

    def __init__(
        self,
        tracks: Tracks,
        frame: Frame,
        members: np.ndarray,
        home: np.ndarray,
        order: np.ndarray,
        rpz_m: float,
        lookahead_s: float,
    ) -> None:
        pool = _threads() if len(members) >= THREADS_FROM else None
        p = _plane(frame, tracks.lat_deg, tracks.lon_deg, tracks, order[members], lookahead_s, pool)
        self.members, self.home, self.p = members, np.ascontiguousarray(home), p
        self.st = np.ascontiguousarray(np.stack([p.x, p.y, p.vx, p.vy, p.z, p.vz, p.rho, p.flown], axis=1))
        self.k0, self.kd = frame.k0, 4.0 * frame.r_m**2 * frame.k0**2
        flown = float(p.flown.max())
        far = max(frame.radius_m, float(p.rho.max())) + flown  # bounds every pair's own E
        self.error_m = float(screen_error_m(far, flown, flown, rpz_m))


def _in_frames(tracks: Tracks, order: np.ndarray, rpz_m: float, lookahead_s: float) -> list[_InFrame]:
    """The frames the input is measured in, with their tracks."""
    return [
        _InFrame(tracks, frame, members, home, order, rpz_m, lookahead_s)
        for frame, members, home in _frames(tracks, order, _margin_m(tracks, rpz_m, lookahead_s))
    ]


def brute_force_track_conflicts(
    tracks: Tracks,
    *,
    rpz_m: float = DEFAULT_RPZ_M,
    hpz_m: float = DEFAULT_HPZ_M,
    lookahead_s: float = DEFAULT_LOOKAHEAD_S,
) -> TrackConflictTable:
    """The O(N²) reference: the same exact test on every pair (same engine, same size rule), no broad phase."""
    order = _prepare(tracks, rpz_m, hpz_m, lookahead_s)
    found = _Found()
    if len(tracks) < 2:
        return found.table(tracks, order, rpz_m, hpz_m, lookahead_s)
    for f in _in_frames(tracks, order, rpz_m, lookahead_s):
        if len(tracks) >= NUMBA_FROM:
            parts = [_kernel().brute_force(f.st, f.home, f.k0, f.kd, rpz_m, hpz_m, lookahead_s, STRICT_M)]
        else:
            parts = brute_rows(f.p, f.home, rpz_m, hpz_m, lookahead_s, STRICT_M)
        for rows, figures in parts:
            found.add(f.members, rows, figures)
    return found.table(tracks, order, rpz_m, hpz_m, lookahead_s)


def find_track_conflicts(
    tracks: Tracks,
    *,
    rpz_m: float = DEFAULT_RPZ_M,
    hpz_m: float = DEFAULT_HPZ_M,
    lookahead_s: float = DEFAULT_LOOKAHEAD_S,
    slices: int = SLICES,
    numba_from: int | None = None,
    among: np.ndarray | None = None,
) -> TrackConflictTable:
    """Every pair of tracks predicted to lose separation within the look-ahead, id of a < id of b, sorted.

    ``rpz_m`` (R) and ``hpz_m`` (H) are the horizontal and vertical minima in metres,
    ``lookahead_s`` (T) the look-ahead in seconds; all must be above 0. The compiled
    engine runs from ``numba_from`` tracks (``NUMBA_FROM`` if None; a process that
    detects once passes :func:`one_shot_numba_from`); both engines give the same table.
    ``among`` (a mask over ``tracks``): only the pairs with at least one of those tracks, the rows of
    the whole table that have one (a service checking the tracks just reported against all the others).

    Head-on at 400 m/s closing speed, 91.8 km apart: closest at 229.6 s, less than
    9260 m apart from 206.5 s to 252.8 s (9260 / 400 = 23.15 s either side).

    >>> t = Tracks.of(["E", "W"], [34.5, 34.5], [37.0, 38.0], [9000.0] * 2, [200.0] * 2, [90.0, 270.0], [0.0] * 2)
    >>> c = find_track_conflicts(t).conflicts(t)[0]
    >>> c.a, c.b, round(c.tcpa_s, 1), round(c.dcpa_m, 1), round(c.t_in_s, 1), round(c.t_out_s, 1)
    ('E', 'W', 229.6, 0.0, 206.5, 252.8)
    """
    order = _prepare(tracks, rpz_m, hpz_m, lookahead_s)
    if among is not None and np.shape(among) != (len(tracks),):
        raise ValueError(f"among: a mask of {len(tracks)} tracks expected, got shape {np.shape(among)}")
    found = _Found()
    if len(tracks) < 2 or (among is not None and not np.any(among)):
        return found.table(tracks, order, rpz_m, hpz_m, lookahead_s)
    grow_z = hpz_m / 2 * (1 + 1e-9) + 1e-3
    compiled = len(tracks) >= (NUMBA_FROM if numba_from is None else numba_from)
    kernel_rows: list[tuple[np.ndarray, ...]] = []
    for f in _in_frames(tracks, order, rpz_m, lookahead_s):
        want = np.ones(len(f.members), dtype=bool) if among is None else np.asarray(among, dtype=bool)[order[f.members]]
        if not want.any():
            continue
        x1, y1 = f.p.x + f.p.vx * lookahead_s, f.p.y + f.p.vy * lookahead_s
        kmax = float(np.max(f.p.frame.scale(np.concatenate([f.p.x, x1]), np.concatenate([f.p.y, y1]))))
        grow_xy = (rpz_m + f.error_m) * kmax / 2 * (1 + 1e-9) + 1e-3
        step = lookahead_s / slices
        speed = np.hypot(f.p.vx, f.p.vy)
        cell_speed = KERNEL_CELL_SPEED if compiled else CELL_SPEED
        cell = max(float(np.percentile(speed, 90)) * step * cell_speed + 2 * grow_xy, 1.0)
        span = max(float(np.ptp(np.concatenate([f.p.x, x1]))), float(np.ptp(np.concatenate([f.p.y, y1]))))
        cell = max(cell, span / (2.0 * math.sqrt(len(f.members)) + 1.0))  # at most about 4 N cells
        few: list[np.ndarray] = []  # the slices' pairs in doubt left for one call

        def one_slice(
            s: int,
            f: _InFrame = f,
            want: np.ndarray = want,
            cell: float = cell,
            gxy: float = grow_xy,
            compiled: bool = compiled,
            few: list[np.ndarray] = few,
        ) -> list[tuple[np.ndarray, np.ndarray]]:
            if not compiled:
                return grid_rows(f.p, f.home, want, s, slices, f.error_m, rpz_m, hpz_m, lookahead_s, STRICT_M)
            rules = (rpz_m, hpz_m, lookahead_s, STRICT_M)
            key, figures, doubt = _kernel().grid_slice(
                f.st, f.home, want, s, slices, cell, gxy, grow_z, f.k0, f.kd, *rules, f.error_m
            )
            out: list[tuple[np.ndarray, np.ndarray]] = [(key, figures)]
            if not doubt.shape[1]:
                pass
            elif doubt.shape[1] >= REFINE_IN_SLICE_FROM:  # decided here, in this thread (pyproj releases the GIL)
                out.append(refined(f, doubt))
            else:
                few.append(doubt)  # decided with the other slices' few, in one call
            return out

        def refined(f: _InFrame, doubt: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
            """The pairs in doubt (two rows of indices into ``f``) in conflict on the ellipsoid: keys and figures."""
            a, b = order[f.members[doubt[0]]], order[f.members[doubt[1]]]
            ok, *figures = refine(tracks, a, b, rpz_m, hpz_m, lookahead_s, STRICT_M)
            return (doubt[0, ok] << 32) | doubt[1, ok], np.stack([c[ok] for c in figures], axis=1)

        if len(f.members) >= THREADS_FROM and slices > 1:
            parts = list(_threads().map(one_slice, range(slices)))
        else:
            parts = [one_slice(s) for s in range(slices)]
        if few:
            parts.append([refined(f, np.concatenate(few, axis=1))])
        if compiled:  # the slices' buffers held by kernel_rows only: _compiled_table frees them as it goes
            kernel_rows.extend((f.members, *out) for part in parts for out in part)
        else:
            for rows, figures in (out for part in parts for out in part):
                found.add(f.members, rows, figures)
        parts.clear()
    if compiled:
        return _compiled_table(order, kernel_rows)
    return found.table(tracks, order, rpz_m, hpz_m, lookahead_s, compiled=False)


def _compiled_table(order: np.ndarray, parts: list[tuple[np.ndarray, ...]]) -> TrackConflictTable:
    """The compiled engine's rows as the sorted table: rows bucketed by rank, each bucket sorted (no global sort).

    Each part is (members, keys, figures) of sure rows: ``_kernel.grid_slice``'s, and its pairs in
    doubt that ``_refine.refine`` found in conflict (``parts`` is emptied: each part's buffers go
    as soon as its rows are bucketed). The rows
    are counted by the rank of their lower track, put in buckets of ``2**shift`` ranks (a few
    thousand rows each), and each bucket sorted on its own, in cache: the order
    ``_Found.table`` gives, without sorting millions of rows at once.
    """
    k = _kernel()
    n = len(order)
    counts = np.zeros((len(parts), n + 1), dtype=np.int64)
    for part, (members, key, _) in zip(counts, parts, strict=True):
        k.count_keys(key, members, part)
    start = np.cumsum(counts.sum(axis=0))  # where each track's rows begin, by rank
    total = int(start[-1])
    shift = max(0, int(math.log2(max(BUCKET_ROWS * n / max(total, 1), 1.0))))  # about BUCKET_ROWS rows a bucket
    buckets = ((n - 1) >> shift) + 1
    edges = np.minimum(np.arange(buckets + 1) << shift, n)
    per_bucket = np.add.reduceat(counts[:, 1:], edges[:-1], axis=1)  # rows of each part in each bucket
    fills = start[edges[:-1]] + np.cumsum(per_bucket, axis=0) - per_bucket  # where each part's go in each
    key_all, fig_all = np.empty(total, dtype=np.int64), np.empty((total, 4))
    threads = THREADS if total >= TABLE_THREADS_FROM else 1
    each = _threads().map if threads > 1 else map
    jobs = list(zip(parts, fills, strict=True))
    parts.clear()

    def bucket(job: tuple[tuple[np.ndarray, ...], np.ndarray]) -> None:
        (members, key, fig), fill = job
        k.bucket_rows(key, fig, members, fill, shift, key_all, fig_all)

    # the largest parts first, so that both threads finish together
    list(each(bucket, sorted(jobs, key=lambda j: -len(j[0][1]))))
    del jobs
    cols = [np.empty(total, dtype=np.int64), np.empty(total, dtype=np.int64), *(np.empty(total) for _ in range(4))]
    cuts = np.searchsorted(start[edges], np.linspace(0, total, threads + 1)).clip(0, buckets)
    cuts[0], cuts[-1] = 0, buckets

    def finish(t: int) -> None:
        k.finish_buckets(start, shift, cuts[t], cuts[t + 1], key_all, fig_all, order, *cols)

    list(each(finish, range(threads)))
    return TrackConflictTable(*cols)


_pool: tuple[int, ThreadPoolExecutor] | None = None
_pool_lock = threading.Lock()


def _threads() -> ThreadPoolExecutor:
    """The ``THREADS`` threads detection works in: started by the first detection that needs them, then kept
    (starting threads for each detection cost about a millisecond). A process forked from this one starts its own."""
    global _pool
    with _pool_lock:
        if _pool is None or _pool[0] != os.getpid():
            _pool = (os.getpid(), ThreadPoolExecutor(max_workers=THREADS, thread_name_prefix="deconflict-tactical"))
        return _pool[1]
