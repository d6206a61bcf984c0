"""``deconflict check`` at density: conflicts found and written in order, a block at a time.

:func:`conflict_blocks` yields the same rows as :func:`deconflict.detect.find_conflict_table`
(same pairs, same distances to the bit) as a sequence of :class:`~deconflict.detect.ConflictTable`
blocks whose concatenation is the sorted table, so memory is bounded by a block rather than
by the number of pairs. Volumes are taken in order of their ids (``a``): each block's
``a`` are looked up together, with one STRtree query over footprint boxes laid out by
party and time bucket (as :class:`~deconflict.volumes.VolumeIndex` does), against a tree
of only the volumes whose id sorts after the block's first id (rebuilt every eighth of
the ids), then interval filters on time, band and party, and the exact ground distance
(:func:`deconflict.volumes.pair_distances`: circle pairs in numpy, the rest through GEOS).

:func:`write_conflict_blocks` writes the ``check`` document from the blocks, byte for byte
what :func:`deconflict.formats.geojson.write_conflicts` writes for the whole table: each
volume's JSON fragments are made once, each row is ten fragments picked with numpy, and
numbers are formatted once per distinct value.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime
from json.encoder import encode_basestring
from typing import TextIO

import numpy as np
import shapely

from deconflict.clock import iso
from deconflict.detect import _FAR_FUTURE, _FAR_PAST, ConflictTable, _Arrays, _split_into_frames, _table_sorted, epoch_s
from deconflict.model import Volume
from deconflict.pair_distance import Shapes, pair_distances
from deconflict.volume_buckets import BUCKET_BASE_S, BUCKET_GROWTH, BUCKET_LEVELS, BUCKET_SPLIT, _levels
from deconflict.volumes import SEPARATION_PAD

__all__ = ["conflict_blocks", "format_centi", "write_conflict_blocks"]

BLOCK_VOLUMES = 2048
"""Volumes (consecutive by id) whose conflicts are found together: one block of output."""
TREE_REBUILDS = 8
"""The tree is rebuilt this many times over the ids, each time without the volumes already passed."""
PAIRS_AT_ONCE = 20_000
"""Pairs measured together (numpy's temporaries stay in cache)."""
UNBOUNDED_S = 1e12
"""As ``deconflict.formats.geojson.UNBOUNDED_S``: instants at or beyond it are written as null."""


def conflict_blocks(
    volumes: Sequence[Volume], *, separation_m: float, vertical_separation_m: float
) -> Iterator[ConflictTable] | None:
    """Blocks of the sorted conflict table, or None when the input needs several frames (use the whole table)."""
    groups = _split_into_frames(volumes, separation_m) if len(volumes) >= 2 else []
    if len(groups) != 1:
        return None
    return _blocks(volumes, groups[0][0], separation_m, vertical_separation_m)


def _blocks(volumes: Sequence[Volume], frame: object, m: float, v: float) -> Iterator[ConflictTable]:
    from deconflict.geo import Frame

    assert isinstance(frame, Frame)
    n = len(volumes)
    arr = _Arrays.of(volumes)
    geoms, radii = frame.project_footprints([vol.footprint for vol in volumes])
    shapes = Shapes.of(geoms, radii)
    env = frame.envelopes(geoms, radii)
    cx, cy = (env[:, 0] + env[:, 2]) / 2, (env[:, 1] + env[:, 3]) / 2
    pad = m * frame.scale(cx, cy) * SEPARATION_PAD + 1.0
    grown = env + np.column_stack([-pad, -pad, pad, pad])
    by_id = np.array(sorted(range(n), key=arr.ids.__getitem__), dtype=np.int64)
    rank = np.empty(n, dtype=np.int64)
    rank[by_id] = np.arange(n)

    # time buckets: level by window length, number by start; one bucket per (party, level, number)
    level = _levels(arr.t1 - arr.t0)
    width = BUCKET_BASE_S * BUCKET_GROWTH ** np.minimum(level, BUCKET_LEVELS - 1) / BUCKET_SPLIT
    number = np.where(level < BUCKET_LEVELS, np.floor(arr.t0 / width), 0.0)
    number = np.nan_to_num(number, nan=0.0, posinf=0.0, neginf=0.0)
    keys = np.column_stack([arr.parties.astype(float), level.astype(float), number])
    uniq, bucket = np.unique(keys, axis=0, return_inverse=True)
    bucket = bucket.reshape(-1)
    lo_x, hi_x = float(env[:, 0].min()), float(env[:, 2].max())
    span = (hi_x - lo_x) * 1.25 + 1.0
    shift = bucket * span - lo_x
    tree_boxes = shapely.box(env[:, 0] + shift, env[:, 1], env[:, 2] + shift, env[:, 3])
    # the groups (party, level): their first bucket id and sorted bucket numbers
    group_of: list[tuple[int, float, float, int, np.ndarray]] = []
    start = 0
    while start < len(uniq):
        p, lvl = uniq[start, 0], uniq[start, 1]
        stop = start
        while stop < len(uniq) and uniq[stop, 0] == p and uniq[stop, 1] == lvl:
            stop += 1
        longest = BUCKET_BASE_S * BUCKET_GROWTH ** int(lvl) if lvl < BUCKET_LEVELS else math.inf
        group_of.append((int(p), longest, longest / BUCKET_SPLIT, start, uniq[start:stop, 2]))
        start = stop

    step = BLOCK_VOLUMES * max(1, -(-n // (TREE_REBUILDS * BLOCK_VOLUMES)))
    tree = None
    subset = by_id
    for lo in range(0, n, BLOCK_VOLUMES):
        if lo % step == 0 or tree is None:
            subset = by_id[lo:]
            tree = shapely.STRtree(tree_boxes[subset])
        homes = by_id[lo : lo + BLOCK_VOLUMES]
        qa, boxes = _query_boxes(homes, arr, grown, group_of, span, lo_x, hi_x)
        if len(qa) == 0:
            continue
        qi, ti = tree.query(boxes)
        a, b = qa[qi], subset[ti]
        keep = rank[b] > rank[a]
        a, b = a[keep], b[keep]
        keep = arr.interval_ok(a, b, v)
        a, b = a[keep], b[keep]
        if len(a) == 0:
            continue
        gi, gj = np.minimum(a, b), np.maximum(a, b)  # measured from the lower input index, as find_conflict_table
        dist = np.concatenate(
            [
                pair_distances(frame, geoms, radii, gi[k : k + PAIRS_AT_ONCE], gj[k : k + PAIRS_AT_ONCE], shapes)
                for k in range(0, len(gi), PAIRS_AT_ONCE)
            ]
        )
        ok = dist <= m
        a, b, dist = a[ok], b[ok], dist[ok]
        order = np.lexsort((rank[b], rank[a]))
        yield _table_sorted(arr, a[order], b[order], dist[order])


def _query_boxes(
    homes: np.ndarray,
    arr: _Arrays,
    grown: np.ndarray,
    groups: list[tuple[int, float, float, int, np.ndarray]],
    span: float,
    lo_x: float,
    hi_x: float,
) -> tuple[np.ndarray, np.ndarray]:
    """(volume of each query box, the boxes): each home's grown box in every bucket that may hold a
    window overlapping its own, of a party other than its own."""
    owners, ids = [], []
    for party, longest, width, first, numbers in groups:
        h = homes[arr.parties[homes] != party]
        if len(h) == 0:
            continue
        if longest == math.inf:
            count = np.full(len(h), len(numbers), dtype=np.int64)
            i0 = np.zeros(len(h), dtype=np.int64)
        else:
            # a window of this level that overlaps [t0, t1) starts in (t0 - longest, t1); a second absorbs rounding
            lo = np.floor((arr.t0[h] - longest - 1.0) / width)
            hi = np.floor(arr.t1[h] / width)
            i0 = np.searchsorted(numbers, lo, side="left")
            count = np.searchsorted(numbers, hi, side="right") - i0
        total = int(count.sum())
        if total == 0:
            continue
        rep = np.repeat(np.arange(len(h)), count)
        within = np.arange(total) - np.repeat(np.cumsum(count) - count, count)
        owners.append(h[rep])
        ids.append(first + i0[rep] + within)
    if not owners:
        return np.empty(0, dtype=np.int64), np.empty(0, dtype=object)
    owner = np.concatenate(owners)
    bucket = np.concatenate(ids)
    g = grown[owner]
    # clipped to the tree's extent in x, so that a box never reaches a neighbouring bucket
    x0, x1 = np.maximum(g[:, 0], lo_x), np.minimum(g[:, 2], hi_x)
    inside = x0 <= x1
    owner, bucket, g, x0, x1 = owner[inside], bucket[inside], g[inside], x0[inside], x1[inside]
    shift = bucket * span - lo_x
    return owner, shapely.box(x0 + shift, g[:, 1], x1 + shift, g[:, 3])


# --- the document ---------------------------------------------------------------------------------


CENTI_CACHE = 2_000_000
"""Hundredths below this are formatted once for the whole run (every distance up to 20 km)."""


class _Centi:
    """``repr(round(x, 2)) + suffix`` of many values: each distinct hundredth formatted once per call, or once
    for the whole run (below ``CENTI_CACHE``) when enough rows have been written to pay for a table."""

    def __init__(self, suffix: str) -> None:
        self.suffix = suffix
        self.cache: np.ndarray = np.empty(0, dtype=object)
        self.rows = 0

    def texts(self, k: np.ndarray) -> np.ndarray:
        """Text of k/100 (integers k >= 0) as ``repr`` writes that hundredth ("12.0", "12.5", "12.34"), suffixed."""
        q, r = np.divmod(k, 100)
        tail = self.suffix
        return np.array(
            [
                f"{a}.{b // 10}{tail}" if b % 10 == 0 else f"{a}.{b:02d}{tail}"
                for a, b in zip(q.tolist(), r.tolist(), strict=True)
            ],
            dtype=object,
        )

    def __call__(self, values: np.ndarray) -> np.ndarray:
        """The texts of ``values``, an object array of str.

        Exact for 0 <= x < 1e9 (a hundredth then has at most 11 significant digits, so the
        shortest repr of the double nearest k/100 is k/100 itself); values whose hundredths
        lie within 1e-3 of a half, and any other value, go through Python's own round.
        """
        x = np.asarray(values, dtype=float)
        fast = (x >= 0) & (x < 1e9) & ~np.signbit(x)
        scaled = np.where(fast, x * 100.0, 0.0)
        fast &= np.abs(scaled - np.floor(scaled) - 0.5) > 1e-3
        k = np.where(fast, np.rint(scaled), 0).astype(np.int64)
        top = int(k.max(initial=0)) + 1
        self.rows += len(k)
        # a table of every hundredth up to the largest pays once more rows than it has entries were written
        if top <= CENTI_CACHE and (top <= len(self.cache) or self.rows > 2 * top):
            if top > len(self.cache):
                size = min(CENTI_CACHE, max(top + top // 4, 1024))
                self.cache = np.concatenate([self.cache, self.texts(np.arange(len(self.cache), size))])
            texts = self.cache[k]
        else:
            uniq, inverse = np.unique(k, return_inverse=True)
            texts = self.texts(uniq)[inverse.reshape(-1)]
        for i in np.flatnonzero(~fast).tolist():
            texts[i] = repr(round(float(x[i]), 2)) + self.suffix
        result: np.ndarray = texts
        return result


def format_centi(values: np.ndarray, suffix: str = "") -> np.ndarray:
    """``repr(round(x, 2)) + suffix`` of each value (see :class:`_Centi`), as an object array of str."""
    return _Centi(suffix)(values)


def _instant(seconds: float) -> str:
    bounded = -UNBOUNDED_S < seconds < UNBOUNDED_S
    return f'"{iso(datetime.fromtimestamp(seconds, UTC))}"' if bounded else "null"


_LAST_WHOLE_S = 253_402_300_799
"""9999-12-31T23:59:59Z in epoch seconds: whole seconds from 1970 to here are written with numpy."""


def instants(seconds: np.ndarray, tail: str) -> np.ndarray:
    """Each instant as the JSON text ``write_conflicts`` gives it (quoted ISO 8601 UTC, or null), then ``tail``.

    Whole seconds since 1970 are formatted by numpy (as ``iso`` writes them: no fraction, ``Z``);
    the rest one by one as ``iso`` does.
    """
    s = np.asarray(seconds, dtype=float)
    whole = (s >= 0) & (s <= _LAST_WHOLE_S) & (s == np.floor(s))
    out = np.empty(len(s), dtype=object)
    if np.any(whole):
        text = np.datetime_as_string(s[whole].astype(np.int64).astype("datetime64[s]"), unit="s")
        out[whole] = [f'"{t}Z"{tail}' for t in text.tolist()]
    for k in np.flatnonzero(~whole).tolist():
        out[k] = _instant(float(s[k])) + tail
    return out


def write_conflict_blocks(blocks: Iterator[ConflictTable], volumes: Sequence[Volume], out: TextIO) -> None:
    """Write the ``check`` document of a sorted table given as blocks, as ``write_conflicts`` would write it whole."""

    def pieces(texts: list[str]) -> np.ndarray:
        arr = np.empty(len(texts), dtype=object)
        arr[:] = texts
        return arr

    ids = [encode_basestring(vol.id) for vol in volumes]
    a1 = pieces([', {"a": ' + i + ', "b": ' for i in ids])
    b1 = pieces([i + ', "distance_m": ' for i in ids])
    # party and activity of both sides as one piece per combination of (party, activity) on each side
    kinds: dict[tuple[str, str | None], int] = {}
    kind = np.array([kinds.setdefault((vol.party, vol.activity), len(kinds)) for vol in volumes], dtype=np.int64)
    names = [(encode_basestring(p), "null" if x is None else encode_basestring(x)) for p, x in kinds]
    k = len(names)
    if k * k <= 100_000:
        middle = pieces(
            [
                f', "party_a": {pa}, "party_b": {pb}, "activity_a": {xa}, "activity_b": {xb}, "start": '
                for pa, xa in names
                for pb, xb in names
            ]
        )
    starts = instants(np.array([epoch_s(vol.start, _FAR_PAST) for vol in volumes]), ', "end": ')
    ends = instants(np.array([epoch_s(vol.end, _FAR_FUTURE) for vol in volumes]), "}")
    distances, gaps = _Centi(', "vertical_gap_m": '), _Centi("")
    binary = getattr(out, "buffer", None) if str(getattr(out, "encoding", "")).lower() in ("utf-8", "utf8") else None
    if binary is not None:
        out.flush()

    def write(text: str) -> None:
        if binary is not None:
            binary.write(text.encode("utf-8"))
        else:
            out.write(text)

    first = True
    for block in blocks:
        m = len(block)
        if m == 0:
            continue
        if first:
            write('{"conflicts": [')
        cols = [
            a1[block.a],
            b1[block.b],
            distances(block.distance_m),
            gaps(block.vertical_gap_m),
        ]
        if k * k <= 100_000:
            cols.append(middle[kind[block.a] * k + kind[block.b]])
        else:
            pa = [', "party_a": ' + p + ', "party_b": ' for p, _ in names]
            pb = [p + ', "activity_a": ' for p, _ in names]
            xa = [x + ', "activity_b": ' for _, x in names]
            xb = [x + ', "start": ' for _, x in names]
            for texts, side in ((pa, block.a), (pb, block.b), (xa, block.a), (xb, block.b)):
                cols.append(pieces(texts)[kind[side]])
        cols.append(starts[block.start_from])
        cols.append(ends[block.end_from])
        flat = np.column_stack(cols).ravel().tolist()
        if first:
            flat[0] = flat[0][2:]
            first = False
        write("".join(flat))
    write('{"conflicts": []}\n' if first else "]}\n")
    if binary is not None:
        binary.flush()
