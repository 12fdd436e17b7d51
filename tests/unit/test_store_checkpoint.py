"""WAL checkpoints happen after a commit is published, not inside it, and still keep up."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from sessionbase.store import sqlite as sqlite_store
from sessionbase.store.base import Entity, UserChange
from sessionbase.store.sqlite import SQLiteStore

COMMITS = 400  # each writes a few pages: past SQLite's 1,000-page automatic checkpoint
TITLE = "x" * 10_000


def wal_pages_after_commits(path: Path, order: list[str]) -> int:
    """How big the WAL grew over COMMITS commits, in pages. A checkpoint that catches up lets
    the next commit write the WAL from its start again, so checkpoints keep it small."""
    store = SQLiteStore(path)
    store.on_commit = lambda version: order.append("published")
    try:
        for n in range(COMMITS):
            change = UserChange(Entity.THREAD, f"t{n}", {"title": f"{TITLE}{n}"})
            store.apply_user_changes([change], None, None)
        page_size = int(store._db.execute("PRAGMA page_size").fetchone()[0])
        return Path(f"{path}-wal").stat().st_size // page_size
    finally:
        store.close()


def test_commits_leave_checkpoints_to_the_writer(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Never due: nothing folds the WAL back, so SQLite's own checkpoint inside COMMIT is off.
    monkeypatch.setattr(sqlite_store, "CHECKPOINT_SECONDS", 1e9)
    assert wal_pages_after_commits(tmp_path / "never.db", []) > 1000


def test_writer_checkpoints_after_publishing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sqlite_store, "CHECKPOINT_SECONDS", 0.0)
    order: list[str] = []
    original = SQLiteStore._published

    def published(self: SQLiteStore, version: int) -> None:
        original(self, version)
        order.append("checked")

    monkeypatch.setattr(SQLiteStore, "_published", published)
    assert wal_pages_after_commits(tmp_path / "always.db", order) < 200
    assert order[:4] == ["published", "checked", "published", "checked"]


def test_a_live_writer_leaves_checkpoints_to_another_thread(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Following live, the writer must not be the one waiting on a checkpoint's copy and
    fsync: the next line Codex appends would wait with it. A grouped pass still folds the WAL
    back itself, between its own transactions."""
    monkeypatch.setattr(sqlite_store, "CHECKPOINT_SECONDS", 0.0)
    store = SQLiteStore(tmp_path / "live.db")
    statements: list[str] = []
    store._db.set_trace_callback(statements.append)
    try:
        store.checkpoint_in_background()
        background = store._background
        assert background is not None
        for n in range(20):
            change = UserChange(Entity.THREAD, f"t{n}", {"title": TITLE})
            store.apply_user_changes([change], None, None)
        assert not [s for s in statements if "wal_checkpoint" in s]
        deadline = time.monotonic() + 10
        while background.done == 0:
            assert time.monotonic() < deadline, "the background thread never checkpointed"
            time.sleep(0.01)

        with store.grouped_commits():
            store.apply_user_changes([UserChange(Entity.THREAD, "g", {"title": TITLE})], None, None)
        assert [s for s in statements if "wal_checkpoint" in s]
    finally:
        store.close()
    assert not background._thread.is_alive()
