"""Damage a real sessionbase data dir the ways disks, people and permissions do.

``overwrite_pages`` writes garbage over the pages SQLite itself says hold a table (found with
the ``dbstat`` table), after folding the WAL into the file so readers really read them from
disk. ``without_write_access`` runs a command that cannot write where the mode bits say no,
even as root (its capabilities to override file permissions are dropped).
"""

from __future__ import annotations

import os
import random
import shutil
import sqlite3
import subprocess
from collections.abc import Sequence
from pathlib import Path

SEED = 20260507


def fold_wal(db_path: Path) -> None:
    """Copy every WAL frame into the database file, so the file alone holds the data."""
    db = sqlite3.connect(db_path)
    try:
        busy, _, _ = db.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()
        assert busy == 0, "a reader kept the WAL from being folded in"
    finally:
        db.close()


def table_pages(db_path: Path, table: str) -> list[int]:
    """The page numbers of a table's b-tree (its leaves and inner pages)."""
    db = sqlite3.connect(f"file:{db_path}?mode=ro", uri=True)
    try:
        rows = db.execute("SELECT pageno FROM dbstat WHERE name = ? ORDER BY pageno", (table,))
        return [int(r[0]) for r in rows]
    finally:
        db.close()


def page_size(db_path: Path) -> int:
    with open(db_path, "rb") as fh:
        size = int.from_bytes(fh.read(18)[16:18], "big")
    return 65536 if size == 1 else size


def overwrite_pages(db_path: Path, pages: Sequence[int]) -> None:
    """Fill these pages of the file with random bytes (seeded: a failure reproduces)."""
    fold_wal(db_path)
    size = page_size(db_path)
    rng = random.Random(SEED)
    with open(db_path, "r+b") as fh:
        for page in pages:
            fh.seek((page - 1) * size)
            fh.write(rng.randbytes(size))
        fh.flush()
        os.fsync(fh.fileno())


def middle_page_of(db_path: Path, table: str) -> int:
    """The page of ``table`` nearest the middle of the file."""
    pages = table_pages(db_path, table)
    middle = os.path.getsize(db_path) // page_size(db_path) // 2
    return min(pages, key=lambda page: abs(page - middle))


def without_write_access(command: Sequence[str]) -> list[str]:
    """``command`` run so that file modes bind it: as root, with the capabilities that
    override them dropped (util-linux setpriv); as anyone else, as it is."""
    if os.geteuid() != 0:
        return list(command)
    setpriv = shutil.which("setpriv")
    assert setpriv is not None, "setpriv (util-linux) is needed to drop root's file override"
    return [setpriv, "--bounding-set=-dac_override,-dac_read_search", "--inh-caps=-all",
            *command]  # fmt: skip


def make_read_only(data_dir: Path) -> None:
    """Take write permission away from the data dir and everything in it, then check that a
    process started by ``without_write_access`` really cannot write there."""
    for path in data_dir.iterdir():
        path.chmod(0o444)
    data_dir.chmod(0o555)
    probe = subprocess.run(
        without_write_access(["touch", str(data_dir / "probe")]), capture_output=True
    )
    assert probe.returncode != 0, "writes were not denied"
    assert not (data_dir / "probe").exists(), "writes were not denied"


def make_writable(data_dir: Path) -> None:
    data_dir.chmod(0o755)
    for path in data_dir.iterdir():
        path.chmod(0o644)
