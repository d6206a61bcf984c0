"""``deconflict check`` at density: conflicts found and written in order, a block at a time.

:func:`conflict_blocks` yields the same rows as :func:`deconflict.detect.find_conflict_table`
(same pairs, same distances to the bit) as a sequence of :class:`~deconflict.detect.ConflictTable`
blocks whose concatenation is the sorted table, so memory is bounded by a block rather than
by the number of pairs. Volumes are taken in order of their ids (``a``), a block at a time,
and compiled (:mod:`deconflict.volume_kernel`, numba, cached): a grid of cells about the size
of the median grown footprint box lists each volume in every cell its envelope covers, in order
of id, so that each ``a`` scans only the later ids of the cells its grown box covers; each pair
is kept once (from the cell of the lower-left corner of the boxes' intersection) when the boxes
meet and the interval filters on time, band and party pass; then the exact ground distance
(``volume_kernel.pair_distances``: circles, circle and ring, ring and ring with the same
arithmetic as GEOS, the rest through GEOS itself).

:func:`write_conflict_blocks` writes the ``check`` document from the blocks, byte for byte
what :func:`deconflict.formats.geojson.write_conflicts` writes for the whole table: each
volume's JSON fragments are made once, each row is ten fragments picked with numpy, and
numbers are formatted once per distinct value.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from datetime import UTC, datetime
from json.encoder import encode_basestring
from typing import TextIO

import numpy as np

from deconflict.clock import iso
from deconflict.detect import _FAR_FUTURE, _FAR_PAST, ConflictTable, _Arrays, _split_into_frames, _table_sorted, epoch_s
from deconflict.model import Volume
from deconflict.pair_distance import Shapes
from deconflict.volumes import SEPARATION_PAD

__all__ = ["conflict_blocks", "format_centi", "write_conflict_blocks"]

BLOCK_VOLUMES = 2048
"""Volumes (consecutive by id) whose conflicts are found together: one block of output."""
CELL_SHARE = 1.0
"""Side of the grid's cells as a share of the median grown box's width (found best on the dense bench input)."""
PAIRS_AT_ONCE = 20_000
"""Pairs measured together by GEOS (its temporaries stay in cache)."""
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
    from deconflict import volume_kernel as kernel
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

    # the grid: cells about the median grown box, each listing the volumes whose envelope meets it by id
    lo_x, lo_y = float(env[:, 0].min()), float(env[:, 1].min())
    span_x, span_y = float(env[:, 2].max()) - lo_x, float(env[:, 3].max()) - lo_y
    size = max(float(np.median(grown[:, 2] - grown[:, 0])) * CELL_SHARE, span_x / 4096, span_y / 4096, 1.0)
    nx, ny = int(span_x // size) + 1, int(span_y // size) + 1
    rows = np.column_stack([arr.t0, arr.t1, arr.z0, arr.z1, arr.parties.astype(float)])
    start, members, sides, fields = kernel.grid(kernel.outward_float32(env), rows, by_id, lo_x, lo_y, size, nx, ny)
    kden = 4.0 * frame.r_m**2 * frame.k0**2
    for lo in range(0, n, BLOCK_VOLUMES):
        homes = by_id[lo : lo + BLOCK_VOLUMES]
        a, b = kernel.block_pairs(
            homes, grown, rows, rank, float(v), start, members, sides, fields, lo_x, lo_y, size, nx, ny
        )
        if len(a) == 0:
            continue
        gi, gj = np.minimum(a, b), np.maximum(a, b)  # measured from the lower input index, as find_conflict_table
        dist, geos = kernel.pair_distances(
            gi, gj, radii, shapes.xy, shapes.ring_start, shapes.ring_len, shapes.coords, frame.k0, kden
        )
        rest = np.flatnonzero(geos)
        for k in range(0, len(rest), PAIRS_AT_ONCE):
            at = rest[k : k + PAIRS_AT_ONCE]
            dist[at] = frame.ground_distance(geoms[gi[at]], radii[gi[at]], geoms[gj[at]], radii[gj[at]])
        ok = dist <= m
        a, b, dist = a[ok], b[ok], dist[ok]
        order = np.lexsort((rank[b], rank[a]))
        yield _table_sorted(arr, a[order], b[order], dist[order])


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


def _hundredths(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(k, fast): the hundredths ``_Centi`` writes by arithmetic, and where it does (elsewhere Python's round)."""
    x = np.asarray(values, dtype=float)
    fast = (x >= 0) & (x < 1e9) & ~np.signbit(x)
    scaled = np.where(fast, x * 100.0, 0.0)
    fast &= np.abs(scaled - np.floor(scaled) - 0.5) > 1e-3
    return np.where(fast, np.rint(scaled), 0).astype(np.int64), fast


def _utf8(texts: list[str]) -> tuple[np.ndarray, np.ndarray]:
    """The texts in UTF-8 end to end, and where each starts (one offset more: the end)."""
    encoded = [t.encode("utf-8") for t in texts]
    offsets = np.zeros(len(encoded) + 1, dtype=np.int64)
    offsets[1:] = np.cumsum([len(e) for e in encoded])
    return np.frombuffer(b"".join(encoded), dtype=np.uint8), offsets


def write_conflict_blocks(blocks: Iterator[ConflictTable], volumes: Sequence[Volume], out: TextIO) -> None:
    """Write the ``check`` document of a sorted table given as blocks, as ``write_conflicts`` would write it whole.

    Every text of a row but its two numbers is a fragment made once (each volume's id pieces, start
    and end; each party and activity's pieces); the rows of a block are assembled in UTF-8 by
    ``volume_kernel.format_rows``, which writes the numbers as ``_Centi`` does (the few values it
    leaves to Python's round become fragments of their block).
    """
    from deconflict import volume_kernel as kernel

    n = len(volumes)
    ids = [encode_basestring(vol.id) for vol in volumes]
    kinds: dict[tuple[str, str | None], int] = {}
    kind = np.array([kinds.setdefault((vol.party, vol.activity), len(kinds)) for vol in volumes], dtype=np.int64)
    names = [(encode_basestring(p), "null" if x is None else encode_basestring(x)) for p, x in kinds]
    k = len(names)
    starts = instants(np.array([epoch_s(vol.start, _FAR_PAST) for vol in volumes]), ', "end": ').tolist()
    ends = instants(np.array([epoch_s(vol.end, _FAR_FUTURE) for vol in volumes]), "}").tolist()
    texts = [', {"a": ' + i + ', "b": ' for i in ids] + [i + ', "distance_m": ' for i in ids]
    texts += [', "vertical_gap_m": ']
    texts += [', "party_a": ' + p + ', "party_b": ' for p, _ in names] + [p + ', "activity_a": ' for p, _ in names]
    texts += [x + ', "activity_b": ' for _, x in names] + [x + ', "start": ' for _, x in names]
    texts += starts + ends
    at_a1, at_b1, at_gap = 0, n, 2 * n
    at_pa, at_pb, at_xa, at_xb = 2 * n + 1, 2 * n + 1 + k, 2 * n + 1 + 2 * k, 2 * n + 1 + 3 * k
    at_start, at_end = 2 * n + 1 + 4 * k, 3 * n + 1 + 4 * k
    del ids, starts, ends
    fixed, fixed_offsets = _utf8(texts)
    fixed_len = np.diff(fixed_offsets)
    del texts

    binary = getattr(out, "buffer", None) if str(getattr(out, "encoding", "")).lower() in ("utf-8", "utf8") else None
    if binary is not None:
        out.flush()

    def write(data: bytes | np.ndarray) -> None:
        if binary is not None:
            binary.write(data)
        else:
            out.write(bytes(data).decode("utf-8"))

    first = True
    for block in blocks:
        m = len(block)
        if m == 0:
            continue
        columns = np.empty((m, 11), dtype=np.int64)
        numbers = np.empty((m, 2), dtype=np.int64)
        extra: list[str] = []
        for c, (values, col) in enumerate(((block.distance_m, 2), (block.vertical_gap_m, 4))):
            hundredths, fast = _hundredths(values)
            numbers[:, c] = hundredths
            columns[:, col] = -1 - c
            slow = np.flatnonzero(~fast)
            if len(slow):
                columns[slow, col] = len(fixed_len) + len(extra) + np.arange(len(slow))
                extra += [repr(round(float(x), 2)) for x in np.asarray(values, dtype=float)[slow].tolist()]
        ka, kb = kind[block.a], kind[block.b]
        columns[:, 0] = at_a1 + block.a
        columns[:, 1] = at_b1 + block.b
        columns[:, 3] = at_gap
        columns[:, 5], columns[:, 6], columns[:, 7], columns[:, 8] = at_pa + ka, at_pb + kb, at_xa + ka, at_xb + kb
        columns[:, 9] = at_start + block.start_from
        columns[:, 10] = at_end + block.end_from
        frag, offsets = fixed, fixed_offsets
        if extra:
            more, more_offsets = _utf8(extra)
            frag = np.concatenate([fixed, more])
            offsets = np.concatenate([fixed_offsets[:-1], more_offsets + fixed_offsets[-1]])
        lengths = np.diff(offsets)
        size = int(lengths[columns[columns >= 0]].sum()) + 24 * 2 * m
        rows = kernel.format_rows(frag, offsets, columns, numbers, size)
        if first:
            write(b'{"conflicts": [')
            rows = rows[2:]
            first = False
        write(rows)
    write(b'{"conflicts": []}\n' if first else b"]}\n")
    if binary is not None:
        binary.flush()
