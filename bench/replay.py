"""Replay benchmark: ``replay --at`` at random instants of an N-entry record, from the newest replay snapshot
before the instant (:mod:`deconflict.store.snapshots`) and, as the same run's baseline, from entry 1.

    scripts/uv run python bench/replay.py [--entries 100000] [--every 1000] [--instants 20]

The record is a year-like run of one mechanism's operation in rounds of ten entries, 31.5 s apart (1M
entries is a year): TR and IL each notify an activity, the service detects their conflict and alerts IL,
the alert climbs one rung, IL acknowledges (settling the alert) and amends its activity, the conflict is
resolved, a line check goes to TR and TR answers it. Each round adds 8 rows to the projected tables, so
the state a replay returns grows with the record (800k rows, ~450 MB of JSON at 1M entries): what any
replay must read and return, whatever it starts from. Entries are chained (hashes as the service
computes them) and not signed (replay does not check signatures; ``ledger verify`` does, bench/ledger.py).

The default size finishes in minutes on two loaded cores: deriving any state applies every entry before
it once (about 0.6 ms of CPU an entry through the projection), so a 1M record takes over 10 minutes of
CPU just to derive its snapshots; ``--entries 1000000`` runs it. Figures (CPU time beside wall time,
since the machine is shared):

* ``walk``: one pass from entry 1 to the last entry (the rebuild ``--check-snapshots`` makes), keeping
  the snapshots the sampled instants need: the baseline at the last instant, measured;
* ``write``: the service's write of one snapshot (``snapshots.make``: the previous one loaded, ``--every``
  entries applied, the state encoded, hashed, compressed) at three ages of the record, checked equal to
  the one the walk from entry 1 kept; its rows, canonical and stored sizes. Stored as a delta unless at a
  ``FULL_EVERY``-th; its base is the walk's full snapshot, so loading it costs less than through the chain
  of deltas the service's own writes go through (``stored`` measures those);
* ``write_piece``: a live piece alone (``snapshots.make_piece``) at each ``PIECE_EVERY`` mark the instants
  need, from the newest piece before it;
* ``around``: replay around an instant (what the time bar asks for, ``svc.replay_around``) at the instants
  and ``--per-snapshot`` - 1 more random instants after each of their snapshots, p50/p99 of wall and CPU;
  ``around_worst_instant``: piece found and decoded, tail applied and cut; each checked equal to the whole
  state cut (below) and to replay from entry 1 cut;
* ``with_snapshots``: the whole state (the previous path) at ``--full-instants`` of the random instants
  (seeded, with the entry before the last snapshot: the longest tail), p50/p99 of wall and CPU;
  ``worst_instant``: where the time goes (snapshot found and decoded, tail applied and merged), per row
  and per entry;
* ``from_entry_1``: replay from entry 1 at instants of the first ``--baseline-entries`` entries, CPU per
  entry, extrapolated (a replay at an instant applies its whole prefix), and each compared with the
  replay from a snapshot at the same instant (equal documents);
* ``extrapolated_1m``: the worst instant of a 1M record of this kind, from the measured costs per row
  and per entry;
* ``stored``: every snapshot due on the first ``--storage-entries`` entries, written as the service writes
  them, the whole state as deltas between full ones and, the same run's baseline, every one in full: the
  space (the whole state, and the whole table with the live pieces both modes store alike), each write's
  CPU, the load of the deepest delta against the same state in full, and the space extrapolated to 1M.

Human-readable progress goes to stderr; the last line of stdout is one JSON object.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import resource
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, cast

from sqlalchemy import Table, delete, insert

from deconflict.clock import iso
from deconflict.record import chain
from deconflict.record.chain import EntryType
from deconflict.service import Service
from deconflict.store import open_store, replay, snapshots
from deconflict.store.schema import LedgerEntry, MechanismRow, ReplaySnapshot

M = "bench"
T0 = datetime(2025, 4, 9, 6, 0, tzinfo=UTC)
STEP = timedelta(seconds=31.5)
"""Time between two entries: a million entries is a year."""
ROUND = 10
BATCH = 5000


def cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def at(seq: int) -> datetime:
    return T0 + seq * STEP


def notice(party: str, n: int, version: int, when: datetime) -> dict[str, Any]:
    start, end = iso(when + timedelta(hours=3)), iso(when + timedelta(hours=5))
    return {
        "id": f"{party}-{n:07d}",
        "party": party,
        "kind": "uav_patrol",
        "state": "notified",
        "version": version,
        "title": "",
        "notified_at": iso(when),
        "first_notified_at": iso(when),
        "start": start,
        "end": end,
        "volumes": [
            {
                "id": "v1",
                "geometry": {"type": "Point", "coordinates": [37.6298 + n % 97 * 1e-3, 34.5226]},
                "radius_m": 20000.0 - version,
                "floor_m": 1000.0,
                "ceiling_m": 4000.0,
                "start": start,
                "end": end,
            }
        ],
    }


def entry(seq: int) -> tuple[str, str, dict[str, Any]]:
    """(actor, type, payload) of entry ``seq``: the declaration, then rounds of ten."""
    when = at(seq)
    if seq == 1:
        members = [{"id": p, "party": p, "role": "party", "name": p, "language": "en"} for p in ("TR", "IL")]
        return "operator", EntryType.MECHANISM_DECLARED.value, {"id": M, "name": "bench", "members": members}
    k = seq - 2
    n, step = k // ROUND + 1, k % ROUND
    c, alert, check = f"C-{n:07d}", f"M-{n:07d}", f"L-{n:07d}"
    deadline = iso(when + timedelta(minutes=10))
    if step == 0:
        return "TR", EntryType.ACTIVITY_NOTIFIED.value, notice("TR", n, 1, when)
    if step == 1:
        return "IL", EntryType.ACTIVITY_NOTIFIED.value, notice("IL", n, 1, when)
    if step == 2:
        conflict = {
            "id": c,
            "kind": "separation",
            "activity": f"IL-{n:07d}",
            "other_activity": f"TR-{n:07d}",
            "parties": ["IL", "TR"],
            "awaiting": ["IL"],
            "deadline": deadline,
            "distance_m": 0.0,
        }
        return "system", EntryType.CONFLICT_DETECTED.value, conflict
    if step in (3, 8):
        message = {
            "id": alert if step == 3 else check,
            "type": "alert" if step == 3 else "line_check",
            "to": ["IL"] if step == 3 else ["TR"],
            "from_party": "service",
            "needs_ack": True,
            "deadline": deadline,
            "about": {"kind": "conflict", "id": c} if step == 3 else {"kind": "party", "id": "TR"},
            "text": "Conflict detected; acknowledge." if step == 3 else "Line check.",
        }
        return "system", EntryType.MESSAGE_SENT.value, message
    if step == 4:
        return (
            "system",
            EntryType.MESSAGE_ESCALATED.value,
            {"id": alert, "rung": 1, "name": "watch", "due_at": deadline},
        )
    if step == 5:
        return "IL", EntryType.CONFLICT_ACKNOWLEDGED.value, {"id": c, "party": "IL", "messages": [alert]}
    if step == 6:
        return "IL", EntryType.ACTIVITY_AMENDED.value, notice("IL", n, 2, when)
    if step == 7:
        return "system", EntryType.CONFLICT_RESOLVED.value, {"id": c, "resolution": "amended", "messages": []}
    return "TR", EntryType.MESSAGE_ACKNOWLEDGED.value, {"id": check, "party": "TR"}


def build(path: Path, n: int) -> tuple[float, float]:
    """The record of ``n`` entries in a new database at ``path`` (the mechanism's row too, for the
    snapshots' foreign key); (wall, CPU) seconds."""
    wall, used = time.perf_counter(), cpu()
    store = open_store(str(path))
    head = chain.Head(0, chain.GENESIS_HASH)
    ledger = cast(Table, LedgerEntry.__table__)
    with store.engine.begin() as conn:
        conn.execute(
            insert(cast(Table, MechanismRow.__table__)), [{"id": M, "name": "bench", "doc": {}, "declared_at": T0}]
        )
        rows = []
        for seq in range(1, n + 1):
            actor, kind, payload = entry(seq)
            row = chain.draft(mechanism=M, actor=actor, type=kind, payload=payload, at=at(seq), after=head)
            head = chain.Head(seq, row["hash"])
            rows.append(row)
            if len(rows) == BATCH:
                conn.execute(insert(ledger), rows)
                rows = []
                if seq % 100_000 == 0:
                    print(f"built {seq} entries", file=sys.stderr)
        if rows:
            conn.execute(insert(ledger), rows)
    store.close()
    return time.perf_counter() - wall, cpu() - used


def timed(fn: Any) -> tuple[Any, float, float]:
    wall, used = time.perf_counter(), cpu()
    out = fn()
    return out, time.perf_counter() - wall, cpu() - used


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--entries", type=int, default=100_000)
    ap.add_argument("--every", type=int, default=snapshots.EVERY)
    ap.add_argument("--instants", type=int, default=20)
    ap.add_argument("--per-snapshot", type=int, default=3)
    ap.add_argument("--full-instants", type=int, default=8)
    ap.add_argument("--baseline-entries", type=int, default=20_000)
    ap.add_argument("--seed", type=int, default=17)
    ap.add_argument("--storage-entries", type=int, default=48_000)
    args = ap.parse_args()
    n, every = args.entries, args.every
    rng = random.Random(args.seed)
    result: dict[str, Any] = {"cpus": os.cpu_count(), "entries": n, "every": every}
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "replay.db"
        build_s, build_cpu = build(path, n)
        result["build_s"], result["database_mib"] = round(build_s, 1), round(path.stat().st_size / 2**20)
        print(f"built {n} entries in {build_s:.0f} s", file=sys.stderr)
        svc = Service(open_store(str(path)))

        # the instants: random over the whole record, and the last entry's; replay around an instant is
        # also measured at --per-snapshot more random instants after each of their snapshots
        seqs = sorted({rng.randint(2, n) for _ in range(args.instants - 2)} | {n - 1, n})
        instants = [at(s) + timedelta(seconds=1) for s in seqs]
        grid = {s // every * every for s in seqs if s >= every}
        more = {g + rng.randint(1, every - 1) for g in grid for _ in range(args.per_snapshot - 1)}
        more = {s for s in more if s <= n}
        around_instants = sorted(set(instants) | {at(s) + timedelta(seconds=1) for s in more})
        pe = snapshots.PIECE_EVERY
        piece_grid = sorted({s // pe * pe for s in set(seqs) | more if s >= pe} - {g for g in grid})
        writes = sorted({g for g in (every, (n // 2) // every * every, n // every * every) if g >= every})
        marks = grid | set(writes) | {g - every for g in writes if g > every}

        # one pass from entry 1, storing the snapshots the instants need (the check's rebuild)
        def keep(head: chain.Head, rows: dict[str, list[dict[str, Any]]]) -> None:
            body, digest, size = snapshots.encode(rows)
            live_body, live_hash, live_rows = snapshots.piece(rows, at(head.seq))
            snap = ReplaySnapshot(
                live_body=live_body,
                live_hash=live_hash,
                live_rows=live_rows,
                mechanism_id=M,
                seq=head.seq,
                hash=head.hash,
                at=at(head.seq),
                content_hash=digest,
                rows=sum(len(r) for r in rows.values()),
                size=size,
                body=body,
                made_at=datetime.now(UTC),
            )
            with svc.store.transaction() as s:
                s.merge(snap)

        def walk() -> chain.Head:
            with svc.store.read() as s:
                return replay.walk(snapshots.entries(s, M, after=0), mechanism=M, marks=marks, visit=keep)

        head, walk_s, walk_cpu = timed(walk)
        assert head.seq == n
        result["walk"] = {"s": round(walk_s, 1), "cpu_s": round(walk_cpu, 1), "snapshots_kept": len(marks)}
        print(f"walk from entry 1: {result['walk']}", file=sys.stderr)

        # the service's incremental write of one snapshot at three ages of the record: the previous one
        # loaded, the entries after it applied, the state encoded and compressed (snapshots.make), then
        # stored; it must be the very snapshot the walk from entry 1 kept
        result["write"] = []
        for g in writes:
            snap, wall, used = timed(lambda g=g: snapshots.make(svc.store, M, g, datetime.now(UTC)))
            with svc.store.read() as s:
                kept = s.get(ReplaySnapshot, (M, g))
                assert kept is not None, g
                assert (kept.hash, kept.content_hash) == (snap.hash, snap.content_hash), (g, kept.hash, snap.hash)
                assert kept.live_hash == snap.live_hash, g
            result["write"].append(
                {
                    "seq": g,
                    "rows": snap.rows,
                    "s": round(wall, 3),
                    "cpu_s": round(used, 3),
                    "cpu_ms_per_entry_every": round(used / every * 1000, 3),
                    "canonical_mib": round(snap.size / 2**20, 2),
                    "stored_as": "full" if snap.body is not None else "delta",
                    "stored_mib": round(len(snap.body or snap.delta_body or b"") / 2**20, 3),
                    # compression, of a full body (a delta holds a part of the state: no ratio)
                    "ratio": round(snap.size / len(snap.body), 1) if snap.body is not None else None,
                    "live_rows": snap.live_rows,
                    "live_stored_kib": round(len(snap.live_body or b"") / 1024, 1),
                }
            )
            print(f"write: {result['write'][-1]}", file=sys.stderr)

        # the live pieces alone between two whole snapshots (every PIECE_EVERY entries) the instants need,
        # as the service writes them: from the newest piece before (here the whole snapshot's, up to 750
        # entries back, where the service's own would be 250)
        piece_cpus, piece_walls, piece_rows = [], [], []
        for g in piece_grid:
            snap, wall, used = timed(lambda g=g: snapshots.make_piece(svc.store, M, g, datetime.now(UTC)))
            with svc.store.transaction() as s:
                s.add(snap)
            piece_cpus.append(used)
            piece_walls.append(wall)
            piece_rows.append(snap.live_rows or 0)
        if piece_grid:
            result["write_piece"] = {
                "pieces": len(piece_grid),
                "every": pe,
                "cpu_p50_s": round(pct(piece_cpus, 0.5), 3),
                "cpu_max_s": round(max(piece_cpus), 3),
                "p50_s": round(pct(piece_walls, 0.5), 3),
                "rows_p50": round(pct([float(r) for r in piece_rows], 0.5)),
            }
            print(f"live pieces written: {result['write_piece']}", file=sys.stderr)

        # replay around an instant (what the time bar asks for): the newest snapshot's live piece and the
        # entries after it
        walls, cpus, cut = [], [], {}
        for t in around_instants:
            doc, wall, used = timed(lambda t=t: svc.replay_around(M, t))
            walls.append(wall)
            cpus.append(used)
            cut[t] = doc
        result["around"] = {
            "instants": len(around_instants),
            "window_h": replay.WINDOW.total_seconds() / 3600,
            "p50_s": round(pct(walls, 0.5), 3),
            "p99_s": round(pct(walls, 0.99), 3),
            "max_s": round(max(walls), 3),
            "cpu_p50_s": round(pct(cpus, 0.5), 3),
            "cpu_p99_s": round(pct(cpus, 0.99), 3),
            "cpu_max_s": round(max(cpus), 3),
            "rows_at_last_instant": sum(len(cut[around_instants[-1]][k]) for k in replay.TABLES),
        }
        print(f"around an instant: {result['around']}", file=sys.stderr)

        # where its time goes at the worst instant (the entry before the last snapshot: the longest tail)
        t_worst = at(n - 1) + timedelta(seconds=1)
        with svc.store.read() as s:
            found, load_s, load_cpu = timed(lambda: snapshots.usable_piece(s, M, at=t_worst, window=replay.WINDOW))
            assert found is not None
            piece, history = found
            out, tail_s, tail_cpu = timed(
                lambda: replay.around(
                    snapshots.entries(s, M, after=piece.seq), mechanism=M, at=t_worst, piece=piece, history=history
                )
            )
        assert out == cut[t_worst]
        result["around_worst_instant"] = {
            "snapshot_seq": piece.seq,
            "piece_rows": sum(len(r) for r in piece.rows.values()),
            "find_and_decode_cpu_s": round(load_cpu, 3),
            "tail_entries": n - 1 - piece.seq,
            "tail_and_cut_cpu_s": round(tail_cpu, 3),
        }
        print(f"around, worst instant: {result['around_worst_instant']}", file=sys.stderr)

        # the whole state from snapshots (the previous path, as `deconflict replay` prints it) at
        # --full-instants of the instants (the last two among them), each cut and compared with the above
        full_instants = sorted(set(rng.sample(instants[:-2], max(0, min(len(instants) - 2, args.full_instants - 2)))))
        full_instants += instants[-2:]
        walls, cpus, docs = [], [], {}
        for t in full_instants:
            doc, wall, used = timed(lambda t=t: svc.replay_stored(M, t))
            walls.append(wall)
            cpus.append(used)
            docs[t] = doc
            assert replay.cut(doc) == cut[t], f"replay around {t} differs from the whole state cut"
        rows_at_end = sum(len(docs[instants[-1]][k]) for k in replay.TABLES)
        result["with_snapshots"] = {
            "instants": len(full_instants),
            "p50_s": round(pct(walls, 0.5), 3),
            "p99_s": round(pct(walls, 0.99), 3),
            "max_s": round(max(walls), 3),
            "cpu_p50_s": round(pct(cpus, 0.5), 3),
            "cpu_p99_s": round(pct(cpus, 0.99), 3),
            "rows_at_last_instant": rows_at_end,
        }
        print(f"with snapshots: {result['with_snapshots']}", file=sys.stderr)

        # where the time goes at the worst instant (the entry before the last snapshot: the longest tail)
        with svc.store.read() as s:
            start, load_s, load_cpu = timed(lambda: snapshots.usable(s, M, at=t_worst))
            assert start is not None
            out, tail_s, tail_cpu = timed(
                lambda: replay.replay(snapshots.entries(s, M, after=start.seq), mechanism=M, at=t_worst, start=start)
            )
        assert out == docs[t_worst]
        rows = sum(len(r) for r in start.rows.values())
        tail = n - 1 - start.seq
        decode_us = load_cpu / rows * 1e6
        result["worst_instant"] = {
            "snapshot_seq": start.seq,
            "snapshot_rows": rows,
            "find_and_decode_cpu_s": round(load_cpu, 3),
            "decode_cpu_us_per_row": round(decode_us, 2),
            "tail_entries": tail,
            "tail_and_merge_cpu_s": round(tail_cpu, 3),
            "tail_cpu_ms_per_entry": round(tail_cpu / max(tail, 1) * 1000, 3),
        }
        print(f"worst instant: {result['worst_instant']}", file=sys.stderr)

        # the baseline: from entry 1, at instants of the first baseline entries, per entry of CPU, and the
        # walk above (from entry 1 to the last entry, measured)
        b = min(args.baseline_entries, n)
        base_seqs = sorted(rng.sample(range(b // 2, b + 1), 3))
        per_entry = []
        for s_ in base_seqs:
            t = at(s_) + timedelta(seconds=1)
            ref, wall, used = timed(lambda t=t: svc.replay_stored(M, t, snapshots=False))
            fast = svc.replay_stored(M, t)
            assert fast == ref, f"replay from a snapshot differs from replay from entry 1 at {t}"
            assert svc.replay_around(M, t) == replay.cut(ref), f"replay around {t} differs from entry 1's, cut"
            per_entry.append(used / s_)
        ms = statistics.median(per_entry) * 1000
        result["from_entry_1"] = {
            "instants": base_seqs,
            "cpu_ms_per_entry": round(ms, 3),
            "extrapolated_cpu_p50_s": round(ms * n / 2 / 1000, 1),
            "last_instant_measured_cpu_s": result["walk"]["cpu_s"],
            "extrapolated_1m_cpu_p50_s": round(ms * 500_000 / 1000),
        }
        snap = result["with_snapshots"]
        result["speedup_cpu_p50"] = round(ms * n / 2 / 1000 / snap["cpu_p50_s"])
        result["around_speedup_cpu_p50"] = {
            "vs_from_entry_1": round(ms * n / 2 / 1000 / result["around"]["cpu_p50_s"]),
            "vs_whole_state_from_snapshots": round(snap["cpu_p50_s"] / result["around"]["cpu_p50_s"], 1),
        }
        # a 1M-entry record of this kind: the same tail, and the snapshot's rows grown with the record
        rows_1m = rows / start.seq * 1_000_000
        result["extrapolated_1m"] = {
            "state_rows": round(rows_1m),
            "worst_cpu_s": round(decode_us * rows_1m / 1e6 + tail_cpu, 2),
            "snapshot_only_cpu_s": round(decode_us * rows_1m / 1e6, 2),
            "note": "snapshot decode grows with the state (every row ever projected), the tail does not",
        }
        result["target_p99_under_1s"] = {
            "around_cpu": result["around"]["cpu_p99_s"] < 1.0,
            "around_wall": result["around"]["p99_s"] < 1.0,
            "whole_state_cpu": snap["cpu_p99_s"] < 1.0,
        }
        result["stored"] = storage(svc, min(args.storage_entries, n) // every * every, every)
        print(f"stored: {result['stored']}", file=sys.stderr)
    print(json.dumps(result))


def storage(svc: Service, upto: int, every: int) -> dict[str, Any]:
    """What the snapshots due on the record's first ``upto`` entries take on disk, each written as the service
    writes it (``snapshots.make``, from the one before, then ``make_piece`` between): the whole state stored
    as deltas between full ones (``FULL_EVERY``) and, the baseline in the same run, every one in full
    (``full_every=1``, as before migration 0016); beside it, what both modes store alike: the live piece each
    whole snapshot carries and the pieces alone between them. Then the load of the deepest delta against the
    same state in full, and the totals extrapolated to 1M entries (a full state grows with the record, a
    delta and a piece do not)."""
    out: dict[str, Any] = {"entries": upto, "every": every, "full_every": snapshots.FULL_EVERY}
    deepest = max(
        (g for g in range(every, upto + 1, every) if g // every % snapshots.FULL_EVERY == snapshots.FULL_EVERY - 1),
        default=None,
    )
    mib = 2**20
    pieces: dict[str, float] = {}
    for name, full_every in (("deltas", snapshots.FULL_EVERY), ("all_full", 1)):
        with svc.store.transaction() as s:
            s.execute(delete(ReplaySnapshot).where(ReplaySnapshot.mechanism_id == M))
        stored, live, delta_sizes, used = 0, [], [], 0.0
        last: ReplaySnapshot | None = None
        for g in range(every, upto + 1, every):
            snap, _, cpu_s = timed(
                lambda g=g, f=full_every: snapshots.make(svc.store, M, g, datetime.now(UTC), every=every, full_every=f)
            )
            used += cpu_s
            with svc.store.transaction() as s:
                s.add(snap)
            stored += len(snap.body or snap.delta_body or b"")
            live.append(len(snap.live_body or b""))
            if snap.delta_body is not None:
                delta_sizes.append(len(snap.delta_body))
            last = snap
        assert last is not None
        load = None
        if deepest is not None:
            with svc.store.read() as s:
                start, _, load = timed(lambda: snapshots.usable(s, M, seq=deepest))
            assert start is not None and start.seq == deepest
        if not pieces:  # the pieces alone between the whole snapshots: the same whatever stores the whole state
            alone = []
            for g in range(snapshots.PIECE_EVERY, upto + 1, snapshots.PIECE_EVERY):
                if g % every:
                    piece = snapshots.make_piece(svc.store, M, g, datetime.now(UTC))
                    with svc.store.transaction() as s:
                        s.add(piece)
                    alone.append(len(piece.live_body or b""))
            pieces = {
                "live_pieces_mib": round(sum(live) / mib, 2),
                "pieces_alone_mib": round(sum(alone) / mib, 2),
                "live_piece_kib_p50": round(pct([float(x) for x in live], 0.5) / 1024, 1),
                "piece_alone_kib_p50": round(pct([float(x) for x in alone], 0.5) / 1024, 1) if alone else 0.0,
            }
            out["alike"] = pieces
        alike = pieces["live_pieces_mib"] + pieces["pieces_alone_mib"]
        out[name] = {
            "snapshots": upto // every,
            "whole_state_mib": round(stored / mib, 2),
            "table_mib": round(stored / mib + alike, 2),
            "delta_kib_p50": round(pct([float(d) for d in delta_sizes], 0.5) / 1024, 1) if delta_sizes else None,
            "write_cpu_s_each": round(used / (upto // every), 3),
            "load_deepest_cpu_s": round(load, 3) if load is not None else None,
        }
        if full_every == 1:
            # a full state's stored bytes per row, and rows per entry: the state at entry k*every is
            # k*every*rows_per_entry rows; a delta and a piece keep their size (this record's rows per entry
            # and its pieces do not change with its age)
            per_row = len(last.body or b"") / last.rows
            rows_per_entry = last.rows / last.seq
            n_1m = 1_000_000 // every
            full_1m = per_row * rows_per_entry * every * n_1m * (n_1m + 1) / 2
            k_1m = n_1m // snapshots.FULL_EVERY
            fulls_1m = per_row * rows_per_entry * every * snapshots.FULL_EVERY * k_1m * (k_1m + 1) / 2
            delta_p50 = out["deltas"]["delta_kib_p50"] or 0.0
            deltas_1m = delta_p50 * 1024 * (n_1m - k_1m)
            per_interval = pieces["live_piece_kib_p50"] + pieces["piece_alone_kib_p50"] * (
                every // snapshots.PIECE_EVERY - 1
            )
            pieces_1m = per_interval * 1024 * n_1m
            out["extrapolated_1m_gib"] = {
                "all_full": round((full_1m + pieces_1m) / 2**30, 1),
                "deltas": round((fulls_1m + deltas_1m + pieces_1m) / 2**30, 2),
                "of_which_pieces": round(pieces_1m / 2**30, 2),
            }
    out["whole_state_ratio"] = round(out["deltas"]["whole_state_mib"] / out["all_full"]["whole_state_mib"], 3)
    out["table_ratio"] = round(out["deltas"]["table_mib"] / out["all_full"]["table_mib"], 3)
    if deepest is not None:
        out["deepest_delta"] = deepest
        out["load_ratio"] = round(out["deltas"]["load_deepest_cpu_s"] / out["all_full"]["load_deepest_cpu_s"], 2)
    return out


if __name__ == "__main__":
    main()
