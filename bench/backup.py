"""Backup benchmark: ``deconflict backup`` and ``deconflict restore`` of a database holding a record of
N entries (the issue's figure is 1,000,000).

    scripts/uv run python bench/backup.py [--entries 1000000]

The database is built first, as the service would have left it: the synthetic record of
``bench/ledger.py`` (the founding block, then rounds of TR's notice, IL's notice and the service's
conflict between them, every entry signed by its own party's key and valid under the authority rules),
appended in order with every entry projected into the tables by the service's own projection, and a
checkpoint of the head signed by the service. Then, each timed from call to return:

* backup: the SQLite online backup into a new file (``deconflict.store.backup.backup``);
* restore: schema, the record copied, every projected table rebuilt from it, the chain verified and
  held against its checkpoint, the rebuilt tables compared row by row with the backup's, the new file
  renamed into place (``deconflict.store.restore.restore``).

Rates are entries per second. Human-readable progress goes to stderr; the last line of stdout is one
JSON object.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, cast

from sqlalchemy import insert
from sqlalchemy.orm import Session

from deconflict.clock import iso
from deconflict.record import chain, signing
from deconflict.store import open_store, projection
from deconflict.store.backup import backup
from deconflict.store.restore import BatchingSession, restore
from deconflict.store.schema import CheckpointRow, LedgerEntry

sys.path.insert(0, str(Path(__file__).resolve().parent))
import ledger as synthetic  # noqa: E402  (bench/ledger.py: the synthetic record it verifies)

BATCH = 5000


def build(path: Path, n: int) -> float:
    """A database at ``path`` holding the synthetic record of ``n`` entries and its projection; seconds."""
    started = time.perf_counter()
    store = open_store(str(path))
    head = chain.Head(0, chain.GENESIS_HASH)
    founding = synthetic.founding()
    ledger = LedgerEntry.__table__
    with store.engine.connect() as conn, conn.begin(), Session(bind=conn) as session:
        batching = BatchingSession(session)  # the projection's inserts sent many rows at a time, as restore does
        rows: list[dict[str, Any]] = []
        for seq in range(1, n + 1):
            actor, kind, payload = synthetic.entry(seq, founding)
            at = synthetic.at(seq)
            row = chain.draft(mechanism=synthetic.M, actor=actor, type=kind, payload=payload, at=at, after=head)
            key = synthetic.KEYS[actor]
            row["key_id"], row["signature"] = key.key_id, key.sign_entry(row["hash"])
            projection.apply(
                cast(Session, batching), mechanism=synthetic.M, type=kind, payload=payload, at=at, seq=seq, actor=actor
            )
            rows.append(row)
            head = chain.Head(seq, row["hash"])
            if len(rows) == BATCH:
                batching.flush()
                session.execute(insert(ledger), rows)
                session.flush()
                session.expunge_all()
                rows = []
                if seq % 50_000 == 0:
                    print(f"built {seq} entries ({seq / (time.perf_counter() - started):.0f}/s)", file=sys.stderr)
        batching.flush()
        if rows:
            session.execute(insert(ledger), rows)
        service = synthetic.KEYS["system"]
        when = iso(synthetic.at(n))
        message = signing.checkpoint_message(mechanism=synthetic.M, seq=head.seq, hash=head.hash, at=when)
        session.add(
            CheckpointRow(
                mechanism_id=synthetic.M,
                seq=head.seq,
                hash=head.hash,
                at=synthetic.at(n),
                key_id=service.key_id,
                signature=service.sign(message),
                note=None,
            )
        )
        session.flush()
    store.close()
    return time.perf_counter() - started


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--entries", type=int, default=1_000_000)
    args = ap.parse_args()
    n = args.entries
    result: dict[str, Any] = {"cpus": os.cpu_count(), "entries": n}
    with tempfile.TemporaryDirectory() as tmp:
        source, copy, target = Path(tmp) / "source.db", Path(tmp) / "source.backup", Path(tmp) / "restored.db"
        result["build_s"] = round(build(source, n), 1)
        result["database_mib"] = round(source.stat().st_size / 2**20)
        print(f"built: {result}", file=sys.stderr)

        made = backup(str(source), copy)
        assert made.heads[synthetic.M].seq == n
        result["backup_s"] = round(made.seconds, 2)
        result["backup_mib"] = round(made.bytes / 2**20)
        result["backup_entries_per_s"] = round(n / made.seconds)
        print(f"backup: {result}", file=sys.stderr)

        done = restore(copy, str(target), progress=lambda line: print(line, file=sys.stderr))
        assert done.heads[synthetic.M].seq == n and done.entries == n and done.checkpoints == 1
        result["restore_s"] = round(done.seconds, 1)
        result["restore_entries_per_s"] = round(n / done.seconds)
    print(json.dumps(result))


if __name__ == "__main__":
    main()
