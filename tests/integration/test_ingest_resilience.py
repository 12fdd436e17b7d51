"""Live import never stops silently, tested the way it was found to fail: a real `serve` (and
real `backfill` and `status` processes) on homes holding an unreadable directory (under
dropped capabilities, since root reads anything), a symlink to ``/``, a FIFO or ``/dev/zero``
as ``session_index.jsonl``, and a database that stops accepting writes mid-run."""

from __future__ import annotations

import json
import os
import resource
import shutil
import signal
import sqlite3
import time
from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import psutil
import pytest

from sessionbase.codex.paths import NOT_FOLLOWED
from tests.builders.codex import DEFAULT_START, Rollout
from tests.support.server import ServerProcess, run_command

pytestmark = [pytest.mark.integration, pytest.mark.slow]

WAIT = 30.0  # seconds before a wait for something that should happen gives up


def drop_caps() -> tuple[str, ...]:
    """Run as root without the capabilities that bypass file permissions, so that chmod 000
    really denies; nothing to drop for anyone else."""
    if os.geteuid() != 0:
        return ()
    if shutil.which("setpriv") is None:
        pytest.skip("setpriv (util-linux) is needed to drop root's read-anything capabilities")
    return ("setpriv", "--bounding-set=-dac_override,-dac_read_search", "--inh-caps=-all", "--")


def status_json(data_dir: Path, codex_home: Path, prefix: tuple[str, ...] = ()) -> Any:
    done = run_command(data_dir, codex_home, "status", "--json", prefix=prefix)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def wait_for(what: str, check: Callable[[], Any], server: ServerProcess | None = None) -> Any:
    deadline = time.monotonic() + WAIT
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            log = server.log() if server is not None else ""
            pytest.fail(f"gave up waiting: {what}\n{log}")
        time.sleep(0.05)


def count(db: Path, sql: str, *args: object) -> int:
    try:
        with sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=5) as conn:
            return int(conn.execute(sql, args).fetchone()[0])
    except sqlite3.OperationalError:
        return 0  # not created yet


def has_message(db: Path, text: str) -> bool:
    """Whether a message starting with ``text`` is mirrored."""
    return (
        count(db, "SELECT count(*) FROM messages WHERE substr(text, 1, ?) = ?", len(text), text) > 0
    )


def thread_ids(db: Path) -> set[str]:
    with sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=5) as conn:
        return {row[0] for row in conn.execute("SELECT id FROM threads")}


def rollout_on(day: int, text: str) -> Rollout:
    r = Rollout(start=DEFAULT_START + timedelta(days=day))
    r.user(text)
    return r


def inotify_watches(pid: int) -> int:
    """How many inodes the process watches with inotify, from /proc."""
    watches = 0
    for fd in os.listdir(f"/proc/{pid}/fd"):
        try:
            if os.readlink(f"/proc/{pid}/fd/{fd}") != "anon_inode:inotify":
                continue
            with open(f"/proc/{pid}/fdinfo/{fd}") as info:
                watches += sum(1 for line in info if line.startswith("inotify wd:"))
        except OSError:
            continue  # closed meanwhile
    return watches


@pytest.fixture
def locked_dir() -> Iterator[list[Path]]:
    """Directories a test makes unreadable; made readable again afterwards."""
    dirs: list[Path] = []
    yield dirs
    for d in dirs:
        d.chmod(0o755)


def test_an_unreadable_directory_is_skipped_reported_once_and_live_import_goes_on(
    tmp_path: Path, locked_dir: list[Path]
) -> None:
    prefix = drop_caps()
    home = tmp_path / "codex-home"
    hidden = rollout_on(2, "in the unreadable day")
    locked = hidden.write(home).parent
    visible = rollout_on(3, "in a readable day")
    visible_path = visible.write(home)
    locked.chmod(0)
    locked_dir.append(locked)
    server = ServerProcess(
        tmp_path / "data", home, prefix=prefix, env={"SESSIONBASE_RESCAN_INTERVAL": "0.2"}
    )
    db = server.data_dir / "sessionbase.db"
    with server:
        assert has_message(db, "in a readable day")
        status, ready = server.readyz()
        assert status == 200
        assert ready["ingest"]["state"] == "following"
        problem = {"path": str(locked), "reason": "Permission denied"}
        assert ready["ingest"]["unreadable"] == [problem]
        assert server.query("status:get")["ingest"]["unreadable"] == [problem]

        # Live import goes on: an append, a new file in a new day's directory.
        r = Rollout(visible.thread_id, write_meta=False)
        r.user("appended live")
        with visible_path.open("ab") as fh:
            fh.write(r.to_bytes())
        wait_for("the append", lambda: has_message(db, "appended live"), server)
        rollout_on(4, "a new day, live").write(home)
        wait_for("the new day", lambda: has_message(db, "a new day, live"), server)

        cli_status = status_json(server.data_dir, home, prefix)
        assert cli_status["unreadable"] == [problem]
        assert cli_status["ingest"]["state"] == "following"
        assert cli_status["ingest"]["unreadable"] == [problem]

        time.sleep(1)  # several rescans: the path is still logged once, not at each
        assert server.log().count(f"cannot read {locked}") == 1

        locked.chmod(0o755)  # readable again: taken in by the next rescan
        wait_for("the day made readable", lambda: has_message(db, "in the unreadable day"), server)
        wait_for("the cleared problem", lambda: not server.readyz()[1]["ingest"]["unreadable"])
        assert f"{locked} is no longer unreadable" in server.log()
    assert "ingest stopped" not in server.log()
    assert "Traceback" not in server.log()


def test_a_symlink_to_the_root_directory_is_not_followed(tmp_path: Path) -> None:
    home = tmp_path / "codex-home"
    own = rollout_on(1, "our own session")
    own.write(home)
    elsewhere = rollout_on(2, "a session outside the home")
    elsewhere.write(tmp_path / "elsewhere")
    year = home / "sessions" / "2026"
    (year / "root").symlink_to("/", target_is_directory=True)
    (year / "elsewhere").symlink_to(tmp_path / "elsewhere", target_is_directory=True)
    server = ServerProcess(tmp_path / "data", home, env={"SESSIONBASE_RESCAN_INTERVAL": "0"})
    with server:
        assert server.proc is not None
        assert thread_ids(server.data_dir / "sessionbase.db") == {own.thread_id}
        unrecognized = server.query("status:get")["ingest"]["unrecognized"]
        assert unrecognized == [
            {"path": str(year / "elsewhere"), "reason": NOT_FOLLOWED},
            {"path": str(year / "root"), "reason": NOT_FOLLOWED},
        ]
        # Watched: the home, its sessions/ directories and the registry of imports; nothing
        # behind the links.
        real_dirs = sum(
            1 for p in (home / "sessions").rglob("*") if p.is_dir() and not p.is_symlink()
        )
        assert inotify_watches(server.proc.pid) <= real_dirs + 3
    status = status_json(server.data_dir, home)
    assert [p["path"] for p in status["unrecognized"]] == [
        str(year / "elsewhere"),
        str(year / "root"),
    ]


def test_a_fifo_as_the_session_index_neither_hangs_serve_nor_backfill(tmp_path: Path) -> None:
    home = tmp_path / "codex-home"
    rollout_on(1, "mirrored despite the FIFO").write(home)
    os.mkfifo(home / "session_index.jsonl")
    problem = {"path": str(home / "session_index.jsonl"), "reason": "not a regular file (a FIFO)"}

    done = run_command(tmp_path / "backfill-data", home, "backfill", "--no-embed", timeout=60)
    assert done.returncode == 0, done.stderr
    assert f"cannot read: {problem['path']}: {problem['reason']}" in done.stdout

    server = ServerProcess(tmp_path / "data", home)
    server.start(timeout=WAIT)
    try:
        assert has_message(server.data_dir / "sessionbase.db", "mirrored despite the FIFO")
        assert server.readyz()[1]["ingest"]["unreadable"] == [problem]
        assert server.query("status:get")["ingest"]["unreadable"] == [problem]
        assert server.proc is not None
        server.proc.send_signal(signal.SIGTERM)
        # uvicorn shuts down, then re-raises the signal it caught: its exit says SIGTERM.
        assert server.proc.wait(timeout=WAIT) in (0, -signal.SIGTERM)
        assert "Application shutdown complete" in server.log()
    finally:
        server.stop()
    assert status_json(server.data_dir, home)["unreadable"] == [problem]


def test_dev_zero_as_the_index_and_as_a_rollout_keeps_memory_bounded(tmp_path: Path) -> None:
    home = tmp_path / "codex-home"
    own = rollout_on(1, "mirrored beside /dev/zero")
    own_path = own.write(home)
    (home / "session_index.jsonl").symlink_to("/dev/zero")
    zero_rollout = own_path.with_name(f"rollout-2026-05-02T10-00-00-{Rollout().thread_id}.jsonl")
    zero_rollout.symlink_to("/dev/zero")
    server = ServerProcess(tmp_path / "data", home)
    with server:
        assert server.proc is not None
        process = psutil.Process(server.proc.pid)
        ingest = server.query("status:get")["ingest"]
        assert ingest["unreadable"] == [
            {
                "path": str(home / "session_index.jsonl"),
                "reason": "not a regular file (a character device)",
            }
        ]
        assert {"path": str(zero_rollout), "reason": NOT_FOLLOWED} in ingest["unrecognized"]
        peak_mb = _peak_rss(process.pid) / 1e6
        rss_mb = process.memory_info().rss / 1e6
        # The whole server with its embedding model stays in the low hundreds of MB; reading
        # /dev/zero grew it by gigabytes in two seconds.
        assert peak_mb < 1000, (peak_mb, rss_mb)
        assert thread_ids(server.data_dir / "sessionbase.db") == {own.thread_id}

    # Imported by name, the link is refused by the one guarded open.
    done = run_command(tmp_path / "data", home, "import", str(zero_rollout), timeout=60)
    assert done.returncode == 1
    assert "not a regular file (a character device)" in done.stderr


def _peak_rss(pid: int) -> int:
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    raise AssertionError("no VmHWM in /proc/PID/status")


def test_ingest_that_stops_says_so_and_recovers(tmp_path: Path) -> None:
    """The database stops accepting writes mid-run (a file-size limit on the server, as a full
    disk would): /readyz, status:get and `status` say ingest stopped and why, serve retries
    with a growing delay, and when writes are possible again it catches up by itself."""
    home = tmp_path / "codex-home"
    r = rollout_on(1, "before the trouble")
    path = r.write(home)
    server = ServerProcess(
        tmp_path / "data", home, pipe_log=True, env={"SESSIONBASE_RESCAN_INTERVAL": "0"}
    )
    db = server.data_dir / "sessionbase.db"
    with server:
        assert server.proc is not None
        pid = server.proc.pid
        soft, hard = resource.prlimit(pid, resource.RLIMIT_FSIZE)
        resource.prlimit(pid, resource.RLIMIT_FSIZE, (8192, hard))  # no write past 8 KiB
        try:
            more = Rollout(r.thread_id, write_meta=False)
            for n in range(200):
                more.user(f"while the disk is full {n} " + "words " * 40)
            with path.open("ab") as fh:
                fh.write(more.to_bytes())

            def stopped() -> Any:
                status, body = server.readyz()
                return body if status == 503 and body["ingest"]["state"] == "stopped" else None

            body = wait_for("/readyz to say ingest stopped", stopped, server)
            assert body["ready"] is False
            assert body["ingest"]["reason"]
            assert body["ingest"]["retry_at"]
            assert server.query("status:get")["ingest"]["state"] in ("stopped", "starting")
            state = status_json(server.data_dir, home)["ingest"]
            assert state["state"] in ("stopped", "starting")
            assert state["pid"] == pid
            wait_for("a second retry", lambda: "retrying in 2 s" in server.log(), server)
        finally:
            resource.prlimit(pid, resource.RLIMIT_FSIZE, (soft, hard))
        wait_for("the catch-up", lambda: has_message(db, "while the disk is full 199"), server)
        wait_for("/readyz to say ready", lambda: server.readyz()[0] == 200, server)
        assert server.readyz()[1]["ingest"]["state"] == "following"
        assert status_json(server.data_dir, home)["ingest"]["state"] == "following"
        log = server.log()
    assert "ingest stopped: " in log
    assert "retrying in 1 s" in log
    assert "ingest resumed" in log
