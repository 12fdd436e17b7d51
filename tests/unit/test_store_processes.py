"""One SQLite file, several processes: a store kept open (a serve) sees every commit another
process makes (the CLI pairing, revoking, renaming), and its own commits survive that
process closing. Opening one more store in the serving process must not lose its locks."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from sessionbase.store.base import UserChange
from sessionbase.store.sqlite import SQLiteStore

OTHER_PROCESS = """
import sys
from pathlib import Path
from sessionbase.store.base import UserChange
from sessionbase.store.sqlite import SQLiteStore
with SQLiteStore(Path(sys.argv[1])) as store:
    store.apply_user_changes([UserChange("thread", sys.argv[2], {"title": "from the cli"})],
                             None, None)
"""


def titles(store: SQLiteStore) -> dict[str, str]:
    return {d["id"]: d["value"] for d in store.decisions() if d["key"] == "title"}


def commit_in_another_process(path: Path, thread_id: str) -> None:
    subprocess.run([sys.executable, "-c", OTHER_PROCESS, str(path), thread_id], check=True,
                   timeout=60)  # fmt: skip


def test_a_store_kept_open_sees_other_processes_and_keeps_its_own_commits(
    tmp_path: Path,
) -> None:
    path = tmp_path / "sessionbase.db"
    serving = SQLiteStore(path)
    try:
        # A serve opens stores as it goes (a reader per thread, the device authority's):
        # each open once closed a descriptor of the file, dropping every lock it held.
        SQLiteStore(path).close()
        readonly = SQLiteStore(path, readonly=True)
        readonly.close()
        expected: dict[str, str] = {}
        for n in range(3):
            commit_in_another_process(path, f"cli-{n}")
            expected[f"cli-{n}"] = '"from the cli"'
            assert titles(serving) == expected  # seen at once, not a stale snapshot
            change = UserChange("thread", f"serve-{n}", {"title": "from serve"})
            serving.apply_user_changes([change], None, None)
            expected[f"serve-{n}"] = '"from serve"'
    finally:
        serving.close()
    with SQLiteStore(path) as after:
        assert titles(after) == expected  # nobody's commit went to a WAL another deleted
        assert after.integrity_problems() == []
