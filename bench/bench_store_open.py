"""What checking a database costs: at every open, and in ``sessionbase doctor``.

Every open checks the file's size, its header (as SQLite reads it), its schema version,
that every table exists and that each table's first page reads (``store._sqlite_health``).
This prints, on a given database, the median time of ``open_store(readonly=True)`` (those
checks included) beside a bare read-only SQLite connection that reads the schema (what any
open costs), and the time of the checks alone; then ``PRAGMA quick_check`` (what
``doctor`` runs) and ``PRAGMA integrity_check`` beside reading the whole file once (the
floor for anything that visits every page).

    uv run python bench/generate_codex_home.py --out /var/tmp/home --threads 4000 --total-mb 1200
    uv run sessionbase --data-dir /var/tmp/data --codex-home /var/tmp/home backfill --no-embed
    uv run python bench/bench_store_open.py /var/tmp/data/sessionbase.db
"""

from __future__ import annotations

import argparse
import os
import sqlite3
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import Results, log

from sessionbase.store import _migrations, _sqlite_health, open_store
from sessionbase.store.tokens import parts


def median_ms(run: Callable[[], object], times: int) -> float:
    taken = []
    for _ in range(times):
        began = time.perf_counter()
        run()
        taken.append((time.perf_counter() - began) * 1000)
    return statistics.median(taken)


def bare_open(path: Path) -> None:
    db = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    db.execute("PRAGMA user_version").fetchone()
    db.execute("SELECT count(*) FROM sqlite_schema").fetchone()
    db.close()


def store_open(path: Path) -> None:
    open_store(path, readonly=True).close()


def checks_alone(path: Path) -> None:
    _sqlite_health.database_size(path)
    db = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    db.create_function("sb_parts", 1, parts, deterministic=True)
    _sqlite_health.check_tables(db, path, _migrations.tables())
    db.close()


def read_whole(path: Path) -> None:
    with open(path, "rb", buffering=0) as fh:
        while fh.read(1 << 20):
            pass


def pragma(path: Path, name: str) -> None:
    db = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    assert db.execute(f"PRAGMA {name}").fetchone()[0] == "ok"
    db.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("database", type=Path, help="A sessionbase.db to measure (not changed).")
    parser.add_argument("--opens", type=int, default=50, help="Opens per figure (median).")
    parser.add_argument("--scans", type=int, default=3, help="Whole-file passes per figure.")
    args = parser.parse_args()
    path: Path = args.database
    size_mb = os.path.getsize(path) / 1e6
    log(f"{path}: {size_mb:,.0f} MB, load {os.getloadavg()[0]:.1f}")
    results = Results()
    bare = median_ms(lambda: bare_open(path), args.opens)
    full = median_ms(lambda: store_open(path), args.opens)
    alone = median_ms(lambda: checks_alone(path), args.opens)
    results.add("open_store(readonly) with its checks", f"{full:.2f} ms",
                "bare read-only connect + schema read", f"{bare:.2f} ms",
                f"{full / bare:.1f}x", "", "")  # fmt: skip
    results.add("the open-time checks alone", f"{alone:.2f} ms",
                "bare read-only connect + schema read", f"{bare:.2f} ms",
                f"{alone / bare:.1f}x", "", "")  # fmt: skip
    read_whole(path)  # warm the page cache once, as every figure below then runs warm
    scan = median_ms(lambda: read_whole(path), args.scans)
    for name in ("quick_check", "integrity_check"):
        taken = median_ms(lambda name=name: pragma(path, name), args.scans)
        results.add(f"PRAGMA {name} ({size_mb:,.0f} MB)", f"{taken / 1000:.2f} s",
                    "reading the file once (warm)", f"{scan / 1000:.2f} s",
                    f"{taken / scan:.0f}x", "", "")  # fmt: skip
    print(results.table())
    log(f"done, load {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
