"""New folders appearing while serve follows a Codex home are taken in by their events alone
(the safety-net rescan is off here), however they interleave.

As on Codex's first run: serve watches an empty home; Codex writes its ``skills/`` tree (each
new skill folder changes the set of watched directories, so the watch is replaced) while
``sessions/YYYY/MM/DD/`` and a rollout appear. A change seen by a watch as it was being
replaced was once dropped, and the session never came in.
"""

from __future__ import annotations

import sqlite3
import time
from datetime import timedelta
from pathlib import Path

from tests.builders.codex import DEFAULT_START, Rollout
from tests.support.server import ServerProcess

ROUNDS = 60
SKILLS_PER_ROUND = 10
PACE = 0.005  # seconds between skill folders: serve replaces its watch many times meanwhile
PATIENCE = 120.0  # seconds for all of them; only a missed folder waits this long


def _threads(db: Path) -> set[str]:
    try:
        with sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=5) as conn:
            return {row[0] for row in conn.execute("SELECT id FROM threads")}
    except sqlite3.OperationalError:
        return set()  # not created yet


def test_sessions_and_skill_folders_made_together_are_all_ingested(tmp_path: Path) -> None:
    home = tmp_path / "codex-home"
    home.mkdir()
    server = ServerProcess(tmp_path / "data", home, env={"SESSIONBASE_RESCAN_INTERVAL": "0"})
    db = server.data_dir / "sessionbase.db"
    expected = set()
    with server:
        write_rounds(home, expected)
        deadline = time.monotonic() + PATIENCE
        while (missing := expected - _threads(db)) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not missing, f"{len(missing)} of {ROUNDS} sessions never came in:\n{server.log()}"


def write_rounds(home: Path, expected: set[str]) -> None:
    """Skill folders (each changes the watched set) with a new day's session among them."""
    for n in range(ROUNDS):
        for k in range(SKILLS_PER_ROUND):
            skill = home / "skills" / f"skill-{n}-{k}"
            for sub in ("agents", "assets", "references", "scripts"):
                (skill / sub).mkdir(parents=True)
                (skill / sub / "file.txt").write_text("keeps the watch busy")
            (skill / "SKILL.md").write_text(f"---\nname: skill-{n}-{k}\n---\n")
            time.sleep(PACE)
            if k == n % SKILLS_PER_ROUND:  # each time at another moment of the burst
                r = Rollout(start=DEFAULT_START + timedelta(days=n))
                r.user(f"session {n}")
                r.write(home)  # a new day's folder (and month's, now and then), its rollout
                expected.add(r.thread_id)
