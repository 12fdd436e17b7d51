"""serve watches before its catch-up pass: a line appended to a file the pass has already
read is ingested at once, not at the next safety-net rescan (disabled here). On SQLite and on
PostgreSQL."""

from __future__ import annotations

import sqlite3
import time
from datetime import timedelta
from pathlib import Path

import psycopg

from tests.builders.codex import DEFAULT_START, Rollout
from tests.support.server import ServerProcess

FILES = 300


def _write_home(codex_home: Path) -> list[Path]:
    paths = []
    for n in range(FILES):
        r = Rollout(start=DEFAULT_START + timedelta(minutes=n))
        for turn_no in range(8):
            turn = r.turn()
            r.user(f"question {n}.{turn_no}")
            r.shell("cat big.log", "log line with some words in it\n" * 800)
            r.assistant(f"answer {n}.{turn_no}")
            r.end_turn(turn)
        paths.append(r.write(codex_home))
    return sorted(paths, key=lambda p: p.name)


def _committed(db: Path | str, sql: str, *args: object) -> int:
    """A count in the server's database (a SQLite file or a PostgreSQL URL); 0 before it has
    the tables."""
    if str(db).startswith("postgresql://"):
        try:
            with psycopg.connect(str(db)) as pg:
                row = pg.execute(sql.replace("?", "%s"), args).fetchone()
                return int(row[0]) if row else 0
        except psycopg.errors.UndefinedTable:
            return 0
    if not Path(db).exists():
        return 0
    try:
        with sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=5) as conn:
            return int(conn.execute(sql, args).fetchone()[0])
    except sqlite3.OperationalError:
        return 0  # not created or migrated yet


def _serve(tmp_path: Path, codex_home: Path, database: str) -> tuple[ServerProcess, Path | str]:
    """serve over ``codex_home`` with the safety-net rescan off, and its database."""
    server = ServerProcess(
        tmp_path / "data",
        codex_home,
        env={"SESSIONBASE_RESCAN_INTERVAL": "0"},
        extra=("--database", database) if database else (),
    )
    return server, database or server.data_dir / "sessionbase.db"


def test_an_append_during_the_catch_up_pass_is_not_missed(
    tmp_path: Path, database_option: str
) -> None:
    codex_home = tmp_path / "codex-home"
    paths = _write_home(codex_home)
    first = paths[0]
    server, db = _serve(tmp_path, codex_home, database_option)
    server.launch()
    try:
        deadline = time.monotonic() + 60
        while not _committed(db, "SELECT count(*) FROM sources WHERE path = ?", str(first)):
            assert time.monotonic() < deadline, server.log()
            time.sleep(0.01)
        marker = f"appended-while-catching-up-{time.time_ns()}"
        r = Rollout(write_meta=False)
        r.user(marker)
        with first.open("ab") as fh:
            fh.write(b"".join(line + b"\n" for line in r.lines))
        appended_before_ready = not server.ready()
        server.wait_ready(120)
        assert appended_before_ready, "the catch-up pass ended before the append: make it longer"
        deadline = time.monotonic() + 10
        while not _committed(db, "SELECT count(*) FROM messages WHERE text = ?", marker):
            assert time.monotonic() < deadline, f"the append was never ingested\n{server.log()}"
            time.sleep(0.05)
    finally:
        server.stop()


def test_serve_on_a_home_without_sessions_says_so_and_takes_the_first_one(
    tmp_path: Path, database_option: str
) -> None:
    """Installed before Codex ever ran: serve says where it looked, and the first session
    Codex writes (sessions/ and its date directories included) arrives without a rescan."""
    codex_home = tmp_path / "codex-home"
    codex_home.mkdir()
    server, db = _serve(tmp_path, codex_home, database_option)
    with server:
        assert "no Codex sessions found" in server.log()
        assert str(codex_home / "sessions") in server.log()
        marker = f"first-session-{time.time_ns()}"
        r = Rollout()
        r.user(marker)
        r.write(codex_home)
        deadline = time.monotonic() + 10
        while not _committed(db, "SELECT count(*) FROM messages WHERE text = ?", marker):
            assert time.monotonic() < deadline, (
                f"the first session was never ingested\n{server.log()}"
            )
            time.sleep(0.05)
    # what it ingested, in its own words, and not the file watcher's "1 change detected"
    assert f"ingested {r.thread_id}: " in server.log()
    assert "1 new row" in server.log()
    assert "1 new rows" not in server.log()
    assert "change detected" not in server.log()


def test_a_skill_written_while_serving_arrives_without_a_rescan(
    tmp_path: Path, database_option: str
) -> None:
    """Skills are watched folder by folder too (the watch never recurses): a new skill's
    folder, and an edit of a SKILL.md deep in the tree, arrive at once."""
    codex_home = tmp_path / "codex-home"
    nested = codex_home / "skills" / "group" / "deep"
    nested.mkdir(parents=True)
    (nested / "SKILL.md").write_text("---\nname: deep\ndescription: Before.\n---\n")
    server, db = _serve(tmp_path, codex_home, database_option)
    described = "SELECT count(*) FROM skills WHERE name = ? AND description = ?"
    with server:
        assert _committed(db, described, "deep", "Before.")
        (nested / "SKILL.md").write_text("---\nname: deep\ndescription: After.\n---\n")
        fresh = codex_home / "skills" / "fresh"
        fresh.mkdir()
        (fresh / "SKILL.md").write_text("---\nname: fresh\ndescription: New.\n---\n")
        deadline = time.monotonic() + 10
        while not (
            _committed(db, described, "deep", "After.")
            and _committed(db, described, "fresh", "New.")
        ):
            assert time.monotonic() < deadline, f"the skill changes never arrived\n{server.log()}"
            time.sleep(0.05)
