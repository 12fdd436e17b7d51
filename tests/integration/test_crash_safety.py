"""kill -9 at random moments loses nothing and duplicates nothing.

A real ``sessionbase backfill`` process runs over a generated Codex home while Codex "keeps
writing" (appends, partial lines, new files, an archive move, new names); it is killed with
SIGKILL at random moments at least ``MIN_KILLS`` times, re-run each time, and finally run to
completion. The database must then equal, row for row, a clean backfill of the final files into
a fresh data dir. The random seed is fixed, so a failure reproduces.

Every backfill runs with ``--no-embed``: no compared row depends on embeddings, and embedding
this home's units (the transformer refining every one of them) took about 95% of the work.
What is left is some thirty runs of the CLI, each starting a Python process (and, with
read-ahead, two workers): CPU-bound work whose time grows with the machine's load, so each
case may take longer than the usual limit; a hung run still fails after ``RUN_TIMEOUT``.
"""

from __future__ import annotations

import os
import random
import signal
import sqlite3
import subprocess
import sys
import time
from datetime import timedelta
from pathlib import Path

import orjson
import pytest
import zstandard

from tests.builders.codex import DEFAULT_START, Rollout, new_id
from tests.support.db_snapshot import diff, snapshot

pytestmark = [pytest.mark.integration, pytest.mark.slow, pytest.mark.timeout(900)]

SEED = 20260501
MIN_KILLS = 20
MAX_ROUNDS = 80
# A round's run commits its new lines in one to a few transactions (ingest groups commits of
# up to 0.25 s), so the kill comes after the first, second or third of them.
COMMITS_BEFORE_KILL = 3
RUN_TIMEOUT = 120  # seconds for one backfill run
TABLES = (
    "threads",
    "messages",
    "projects",
    "extras",
    "sources",
    "quarantine",
    "session_index",
    "skills",
    "skill_problems",
)
CWDS = ("/work/alpha", "/work/beta/service", "/srv/gamma", "/home/dev/δ-project")
ENTRY = "from sessionbase.cli import main; main()"
# Worker processes read new files ahead even in a small pass (normally only from 32 MB on).
READ_AHEAD_ENTRY = (
    "from sessionbase.ingest import readahead; readahead.MIN_PASS_BYTES = 0; " + ENTRY
)
# And every rollout over 16 KB (normally 16 MB) streams from a process of its own.
STREAMED_ENTRY = (
    "from sessionbase.ingest import readahead; readahead.MIN_PASS_BYTES = 0; "
    "readahead.MAX_FILE_BYTES = 16 * 1024; " + ENTRY
)


# ---------------------------------------------------------------- a Codex home that keeps growing


class CodexHome:
    """Generated rollouts that grow between runs, like a Codex home in use."""

    def __init__(self, root: Path, rng: random.Random) -> None:
        self.root = root
        self.rng = rng
        self.rollouts: dict[Path, Rollout] = {}
        self.written: dict[Path, int] = {}  # bytes of the rollout's lines already on disk
        (root / "sessions").mkdir(parents=True)
        self.count = 0

    def _text(self, size: int) -> str:
        words = ("alpha", "βeta", "gamma", "δelta", "日本語", "emoji🚀", "naïve", "x")
        head = " ".join(self.rng.choice(words) for _ in range(12))
        return head + " " + self.rng.randbytes(max(0, size // 2)).hex()

    def _turns(self, r: Rollout, turns: int, output_bytes: int) -> None:
        for _ in range(turns):
            turn = r.turn()
            r.context(r.cwd)
            r.user(f"Please look at {self._text(60)}")
            r.reasoning(f"**Plan** {self._text(200)}")
            for _ in range(self.rng.randint(1, 4)):
                r.shell(
                    f"rg -n {self.rng.randbytes(4).hex()} .",
                    self._text(output_bytes),
                    exit_code=self.rng.choice((0, 0, 0, 1, 2)),
                )
            if self.rng.random() < 0.3:
                r.apply_patch(f"src/{self.rng.randbytes(3).hex()}.py", "+pass")
            if self.rng.random() < 0.2:
                r.event({"type": "some_future_event", "detail": self._text(40)})
            r.assistant(f"Done: {self._text(120)}")
            r.tokens(self.rng.randint(1000, 90_000))
            r.end_turn(turn)

    def new_rollout(self, turns: int, output_bytes: int) -> Path:
        self.count += 1
        start = DEFAULT_START + timedelta(minutes=7 * self.count)
        r = Rollout(new_id(start), start=start, cwd=self.rng.choice(CWDS))
        self._turns(r, turns, output_bytes)
        path = r.path_in(self.root)
        self.rollouts[path] = r
        self.flush(path)
        return path

    def flush(self, path: Path, partial: bool = False) -> None:
        """Write the rollout's unwritten lines; with ``partial`` stop mid-way into the last."""
        r = self.rollouts[path]
        data = r.to_bytes()
        end = len(data) - self.rng.randint(1, 40) if partial else len(data)
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("ab") as fh:
            fh.write(data[self.written.get(path, 0) : end])
        self.written[path] = end

    def grow(self, path: Path, turns: int, output_bytes: int, partial: bool) -> None:
        self._turns(self.rollouts[path], turns, output_bytes)
        self.flush(path, partial=partial)

    def archive(self, path: Path) -> Path:
        target = self.root / "archived_sessions" / path.name
        target.parent.mkdir(exist_ok=True)
        os.rename(path, target)
        self.rollouts[target] = self.rollouts.pop(path)
        self.written[target] = self.written.pop(path)
        return target

    def name(self, path: Path, title: str) -> None:
        entry = {"id": self.rollouts[path].thread_id, "thread_name": title, "updated_at": "x"}
        with (self.root / "session_index.jsonl").open("ab") as fh:
            fh.write(orjson.dumps(entry) + b"\n")


def build_home(root: Path, rng: random.Random) -> CodexHome:
    home = CodexHome(root, rng)
    for _ in range(120):
        home.new_rollout(turns=rng.randint(1, 6), output_bytes=rng.randint(200, 3000))
    for _ in range(4):
        home.new_rollout(turns=40, output_bytes=40_000)  # a few big ones, several MB each
    # Odd members: a compressed rollout, bad lines, a duplicate copy, names, a skill.
    packed = home.new_rollout(turns=5, output_bytes=2000)
    zst = packed.with_name(packed.name + ".zst")
    zst.write_bytes(zstandard.ZstdCompressor().compress(packed.read_bytes()))
    packed.unlink()
    del home.rollouts[packed]
    noisy = home.new_rollout(turns=2, output_bytes=500)
    with noisy.open("ab") as fh:
        fh.write(b"not json\n[1,2]\n\xff\xfe\n")
    del home.rollouts[noisy]  # never appended to again: its bytes are no builder's
    original = next(iter(home.rollouts))
    copy = original.with_name(original.name.replace("rollout-", "rollout-zz-copy-"))
    copy.write_bytes(original.read_bytes())
    for path in list(home.rollouts)[:10]:
        home.name(path, f"Named {path.name[-12:]}")
    skill = root / "skills" / "demo"
    skill.mkdir(parents=True)
    (skill / "SKILL.md").write_text("---\nname: demo\ndescription: A demo skill.\n---\nBody.\n")
    return home


def mutate(home: CodexHome, rng: random.Random, round_no: int) -> None:
    """What Codex might have written while sessionbase was down."""
    paths = list(home.rollouts)
    for path in rng.sample(paths, 6):
        home.grow(path, turns=rng.randint(2, 8), output_bytes=rng.randint(5_000, 40_000),
                  partial=rng.random() < 0.3)  # fmt: skip
    home.new_rollout(turns=rng.randint(5, 20), output_bytes=rng.randint(1_000, 30_000))
    if round_no == 5:
        home.archive(rng.choice([p for p in paths if "sessions" in p.parts]))
    if round_no % 4 == 1:
        home.name(rng.choice(paths), f"Renamed in round {round_no}")


def finish(home: CodexHome) -> None:
    """Complete any partly written last line (both databases must see whole files)."""
    for path in home.rollouts:
        home.flush(path)


# ---------------------------------------------------------------- running the real CLI


def environment(user_home: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SESSIONBASE_")}
    env.pop("CODEX_HOME", None)
    env["SESSIONBASE_HOME"] = str(user_home)
    env["SESSIONBASE_MACHINE"] = "crash-test"
    env["SESSIONBASE_BATCH_BYTES"] = str(64 * 1024)  # many transactions, many places to die
    return env


def backfill(
    data_dir: Path, codex_home: Path, env: dict[str, str], entry: str = ENTRY
) -> subprocess.Popen[bytes]:
    args = [sys.executable, "-c", entry, "--data-dir", str(data_dir)]
    args += ["--codex-home", str(codex_home), "backfill", "--no-embed", "--json"]
    return subprocess.Popen(args, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def run_to_completion(
    data_dir: Path, codex_home: Path, env: dict[str, str], entry: str = ENTRY
) -> float:
    began = time.monotonic()
    proc = backfill(data_dir, codex_home, env, entry)
    out, err = proc.communicate(timeout=RUN_TIMEOUT)
    assert proc.returncode == 0, err.decode()
    report = orjson.loads(out)
    assert report["files"] > 0
    return time.monotonic() - began


def commits(database: Path) -> int:
    """How many commits the database has logged (0 before it exists)."""
    if not database.exists():
        return 0
    db = sqlite3.connect(f"file:{database}?mode=ro", uri=True)
    try:
        return int(db.execute("SELECT count(*) FROM commit_log").fetchone()[0])
    except sqlite3.OperationalError:  # killed before the schema was committed
        return 0
    finally:
        db.close()


def integrity(database: Path) -> str:
    db = sqlite3.connect(database)
    try:
        return str(db.execute("PRAGMA integrity_check").fetchone()[0])
    finally:
        db.close()


# ---------------------------------------------------------------- the test


def kill_after_commits(proc: subprocess.Popen[bytes], database: Path, before: int, k: int) -> None:
    """SIGKILL ``proc`` once it has committed ``k`` transactions (it runs on meanwhile, so the
    kill lands at an arbitrary point after that), unless it finishes first."""
    while proc.poll() is None:
        if commits(database) - before >= k:
            proc.send_signal(signal.SIGKILL)
            return
        time.sleep(0.002)


def kill_after_delay(proc: subprocess.Popen[bytes], delay: float) -> None:
    try:
        proc.wait(timeout=delay)
    except subprocess.TimeoutExpired:
        proc.send_signal(signal.SIGKILL)


@pytest.mark.parametrize(
    "entry",
    [ENTRY, READ_AHEAD_ENTRY, STREAMED_ENTRY],
    ids=["one-process", "read-ahead", "streamed"],
)
def test_kill_9_at_random_moments_loses_and_duplicates_nothing(tmp_path: Path, entry: str) -> None:
    """With read-ahead, killed runs also leave worker and streaming processes behind
    mid-file; the clean backfill it is compared with always reads in one process."""
    rng = random.Random(SEED)  # the data Codex writes
    killer = random.Random(SEED + 1)  # when to kill
    home = build_home(tmp_path / "codex-home", rng)
    env = environment(tmp_path / "user-home")
    if entry != ENTRY:
        env["SESSIONBASE_READ_WORKERS"] = "2"
    began = time.monotonic()
    subprocess.run(
        [sys.executable, "-c", ENTRY, "--help"], env=env, check=True, capture_output=True
    )
    startup = time.monotonic() - began

    data_dir = tmp_path / "data"
    database = data_dir / "sessionbase.db"
    kills = completed = mid_ingest = 0
    for round_no in range(MAX_ROUNDS):
        if kills >= MIN_KILLS:
            break
        if round_no:
            mutate(home, rng, round_no)
        before = commits(database)
        proc = backfill(data_dir, home.root, env, entry)
        if killer.random() < 0.25:
            # Anywhere: start-up, opening and migrating the database, scanning, ingesting.
            kill_after_delay(proc, killer.uniform(0.0, startup + 0.5))
        else:
            # Between (and, by chance, inside) ingest transactions.
            kill_after_commits(proc, database, before, killer.randint(1, COMMITS_BEFORE_KILL))
        _, err = proc.communicate(timeout=RUN_TIMEOUT)
        if proc.returncode == -signal.SIGKILL:
            kills += 1
            mid_ingest += commits(database) > before
        else:
            assert proc.returncode == 0, f"round {round_no}: {err.decode()}"
            completed += 1
    assert kills >= MIN_KILLS, f"only {kills} kills landed in {MAX_ROUNDS} rounds"
    assert mid_ingest >= MIN_KILLS // 2, f"only {mid_ingest} of {kills} kills hit mid-ingest"

    finish(home)
    run_to_completion(data_dir, home.root, env, entry)
    assert integrity(database) == "ok"

    clean = tmp_path / "clean"
    env.pop("SESSIONBASE_READ_WORKERS", None)
    run_to_completion(clean, home.root, {**env, "SESSIONBASE_READ_WORKERS": "0"})
    crashed = snapshot(database, TABLES)
    expected = snapshot(clean / "sessionbase.db", TABLES)
    assert len(expected["messages"]) > 1000
    assert {dict(s)["status"] for s in expected["sources"]} == {"ok", "duplicate"}
    summary = f"after {kills} kills ({mid_ingest} mid-ingest) and {completed} complete runs"
    assert crashed == expected, f"{summary}:\n{diff(crashed, expected)}"
