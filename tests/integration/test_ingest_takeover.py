"""Who ingests into a shared PostgreSQL database: one process per (machine, Codex home).

A claim is a session advisory lock per (machine, home) plus a token in ``ingesters`` that
every commit checks, so a process that lost its claim cannot commit. A standby replica on the
same machine takes over when the ingester dies, even by kill -9 in the middle of a batch, and
the database still equals a clean ingest row for row. Backfills from several machines at once
share the database safely.
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import psycopg
import pytest

from sessionbase.errors import StoreError
from sessionbase.store import open_store
from sessionbase.store.base import IngestBatch, SourceRow
from tests.builders.codex import Rollout
from tests.support.db_snapshot import diff, snapshot
from tests.support.postgres import TestDatabases
from tests.support.server import ServerProcess

pytestmark = pytest.mark.integration
WAIT = 60.0


def sessionbase(*args: str, env: dict[str, str] | None = None) -> subprocess.Popen[str]:
    base = {k: v for k, v in os.environ.items() if not k.startswith("SESSIONBASE_")}
    return subprocess.Popen(
        [sys.executable, "-c", "from sessionbase.cli import main; main()", *args],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env={**base, **(env or {})},
    )  # fmt: skip


def eventually(attempt: Callable[[], bool]) -> bool:
    """Whether ``attempt`` succeeds within WAIT seconds (tried every 50 ms)."""
    deadline = time.monotonic() + WAIT
    while not attempt():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


def test_one_claim_per_machine_and_home(pg_url: str) -> None:
    first = open_store(pg_url, machine="laptop")
    second = open_store(pg_url, machine="laptop")
    elsewhere = open_store(pg_url, machine="desktop")
    try:
        assert first.claim_ingest(["/home/me/.codex"])
        assert not second.claim_ingest(["/home/me/.codex"])
        assert elsewhere.claim_ingest(["/home/me/.codex"])  # another machine's home
        assert first.claim_held()
        first.close()  # frees the claim (once the server has seen the connection go)
        assert eventually(lambda: second.claim_ingest(["/home/me/.codex"]))
        with open_store(pg_url, readonly=True) as reader:
            holders = {(i["machine"], i["pid"]) for i in reader.ingesters()}
        assert holders == {("laptop", os.getpid()), ("desktop", os.getpid())}
    finally:
        for store in (first, second, elsewhere):
            store.close()


def test_a_writer_that_lost_its_claim_cannot_commit(pg_url: str) -> None:
    old = open_store(pg_url, machine="laptop")
    new = open_store(pg_url, machine="laptop")
    try:
        assert old.claim_ingest(["/h"])
        with psycopg.connect(pg_url, autocommit=True) as conn:  # its claim connection dies
            conn.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                " WHERE datname = current_database() AND application_name = 'sessionbase-ingest'"
            )
        assert not old.claim_held()
        assert eventually(lambda: new.claim_ingest(["/h"]))
        with pytest.raises(StoreError, match="took over"):
            old.commit(IngestBatch(source=SourceRow("/h/sessions/a.jsonl", "/h", offset=5)))
        assert new.commit(IngestBatch(source=SourceRow("/h/sessions/a.jsonl", "/h", offset=5)))
    finally:
        old.close()
        new.close()


def write_home(home: Path, threads: int, messages: int, rng: random.Random) -> list[Rollout]:
    rollouts = []
    for n in range(threads):
        rollout = Rollout(cwd=f"/work/project-{n % 3}")
        for m in range(messages):
            words = " ".join(rng.choice(("alpha", "beta", "gamma_delta", "src/app.py", "Δelta"))
                             for _ in range(rng.randint(5, 40)))  # fmt: skip
            rollout.user(f"{n}.{m} {words}").assistant(f"answer {m}: {words}")
        rollout.write(home)
        rollouts.append(rollout)
    return rollouts


def test_backfills_from_two_machines_at_once_share_the_database(
    tmp_path: Path, pg_url: str
) -> None:
    rng = random.Random(5)
    homes = {name: tmp_path / f"{name}-codex" for name in ("laptop", "desktop")}
    for home in homes.values():
        (home / "sessions").mkdir(parents=True)
        write_home(home, 6, 40, rng)
    runs = [
        sessionbase("--database", pg_url, "--data-dir", str(tmp_path / f"data-{name}"),
                    "--codex-home", str(home), "backfill", "--no-embed",
                    env={"SESSIONBASE_MACHINE": name})
        for name, home in homes.items()
    ]  # fmt: skip
    again = sessionbase("--database", pg_url, "--data-dir", str(tmp_path / "data-again"),
                        "--codex-home", str(homes["laptop"]), "backfill", "--no-embed",
                        env={"SESSIONBASE_MACHINE": "laptop"})  # fmt: skip
    outputs = [run.communicate(timeout=WAIT)[0] for run in (*runs, again)]
    laptop, desktop, laptop_again = (run.returncode for run in (*runs, again))
    assert desktop == 0, outputs[1]
    # The same machine's home twice at once: one ingests it; the other either found the
    # work done or says in one line that another process is ingesting it.
    assert 0 in (laptop, laptop_again), outputs
    for code, output in ((laptop, outputs[0]), (laptop_again, outputs[2])):
        assert code == 0 or "already ingesting" in output, output
        assert "Traceback" not in output
    with open_store(pg_url, readonly=True) as store:
        assert store.totals() == {"threads": 12, "messages": 12 * 80}
    with psycopg.connect(pg_url) as conn:
        machines = {row[0] for row in conn.execute("SELECT DISTINCT machine FROM threads")}
    assert machines == {"laptop", "desktop"}


@pytest.fixture
def clean_database(pg_databases: TestDatabases) -> Iterator[str]:
    url = pg_databases.create()
    yield url
    pg_databases.drop(url)


def test_kill_9_the_ingester_twenty_times_and_a_standby_takes_over(
    tmp_path: Path, pg_url: str, clean_database: str
) -> None:
    """Replicas on one machine (same name, same Codex home) ingest in turn: the ingester is
    killed at 20 random moments while rollouts are being written and appended to; each time
    a standby takes over, and in the end the database equals a clean ingest row for row."""
    rng = random.Random(16)
    home = tmp_path / "codex-home"
    (home / "sessions").mkdir(parents=True)
    rollouts = write_home(home, 8, 60, rng)
    env = {"SESSIONBASE_MACHINE": "the-machine", "SESSIONBASE_BATCH_BYTES": "16384",
           "SESSIONBASE_RESCAN_INTERVAL": "1"}  # fmt: skip
    stop_writing = threading.Event()

    def keep_writing() -> None:
        n = 0
        while not stop_writing.is_set():
            rollout = rng.choice(rollouts)
            before = len(rollout.lines)
            rollout.user(f"appended {n} " + "word " * rng.randint(1, 200))
            with open(rollout.path_in(home), "ab") as f:
                f.write(b"".join(line + b"\n" for line in rollout.lines[before:]))
            n += 1
            time.sleep(rng.uniform(0.005, 0.05))

    def replica(n: int) -> ServerProcess:
        """A new standby, started without waiting: the one already up takes over first."""
        server = ServerProcess(tmp_path / f"replica-{n}", home,
                               extra=("--database", pg_url), env=env)  # fmt: skip
        server.launch()
        return server

    def ingester_pid() -> int | None:
        with psycopg.connect(pg_url) as conn:
            if conn.execute("SELECT to_regclass('ingesters')").fetchone() == (None,):
                return None  # the first replica has not created the tables yet
            row = conn.execute(
                "SELECT i.pid FROM ingesters i JOIN pg_stat_activity a ON a.application_name"
                " = 'sessionbase-ingest' AND a.datname = current_database()"
                " WHERE i.machine = 'the-machine' LIMIT 1"
            ).fetchone()
        return None if row is None else int(row[0])

    writer = threading.Thread(target=keep_writing, daemon=True)
    writer.start()
    servers = [replica(0), replica(1)]
    try:
        for kill in range(20):
            deadline = time.monotonic() + WAIT
            while (pid := ingester_pid()) is None or pid not in {
                s.proc.pid for s in servers if s.proc
            }:
                assert time.monotonic() < deadline, "no replica took over the ingest"
                time.sleep(0.05)
            time.sleep(rng.uniform(0.05, 1.0))  # a random moment of its work
            victim = next(s for s in servers if s.proc is not None and s.proc.pid == pid)
            os.kill(pid, signal.SIGKILL)
            victim.proc.wait()  # type: ignore[union-attr]
            victim.proc = None
            servers.remove(victim)
            servers.append(replica(kill + 2))
        stop_writing.set()
        writer.join()
        # The survivor catches up with everything written.
        deadline = time.monotonic() + WAIT
        final = {str(r.path_in(home)): r.path_in(home).stat().st_size for r in rollouts}
        while True:
            with psycopg.connect(pg_url) as conn:
                offsets = dict(conn.execute('SELECT path, "offset" FROM sources').fetchall())
            if offsets == final:
                break
            assert time.monotonic() < deadline, "the last ingester never caught up"
            time.sleep(0.2)
    finally:
        stop_writing.set()
        for server in servers:
            server.stop()
    clean = sessionbase("--database", clean_database, "--data-dir", str(tmp_path / "clean"),
                        "--codex-home", str(home), "backfill", "--no-embed", env=env)  # fmt: skip
    output = clean.communicate(timeout=WAIT)[0]
    assert clean.returncode == 0, output
    ignore = {("sources", "mtime_ns")}
    taken_over, fresh = snapshot(pg_url, ignore=ignore), snapshot(clean_database, ignore=ignore)
    assert taken_over == fresh, diff(taken_over, fresh)
