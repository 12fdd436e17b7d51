"""Ingest benchmarks: every figure beside a baseline measured in the same run.

    uv run python bench/bench_ingest.py                 # everything (several minutes)
    uv run python bench/bench_ingest.py --quick         # small data, a minute or two
    uv run python bench/bench_ingest.py --only lag      # one section (or a comma list)

Sections (see bench/README.md for what each figure means):

- ``throughput``: ``sessionbase backfill --no-embed`` over a generated home (the time it reports)
  vs. reading + ``orjson.loads`` of every line (the floor) and vs. ``sqlite-utils insert db
  lines - --nl`` of the same lines; and the single writer alone, writing the same rows already
  built (with and without their full-text index), which bounds what a faster parser could reach;
- ``rss``: peak RSS of a child process backfilling one single big rollout (1 GB by default)
  vs. a child that only reads and parses the same file;
- ``lag``: ``sessionbase serve`` following appends (append → commit, from ``commit_log.version``)
  vs. a bare ``watchfiles`` watcher seeing the same appends;
- ``startup``: ``sessionbase serve`` start-to-ready on an already mirrored store of ~1M rows
  vs. ``sessionbase --help``.

Timings are printed as ratios against their baselines; nothing here asserts a timing. Generated
data lives under ``--work`` (default /tmp/sessionbase-bench) and is reused across runs when its
parameters match.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import shutil
import signal
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import orjson

sys.path.insert(0, str(Path(__file__).resolve().parent))
import generate_codex_home as gen
from _common import (
    BIN,
    Results,
    child_env,
    git_version,
    log,
    machine_line as common_machine_line,
    percentile,
    sessionbase_cmd,
    verdict,
)

from sessionbase.store.sqlite import SQLiteStore
from sessionbase.store.tokens import parts as search_parts

READY = re.compile(r"ready in ([0-9.]+) s")


def mb(n: float) -> str:
    return f"{n / 1e6:,.1f} MB"


# ----------------------------------------------------------------------------- helpers


_SERVE_EXTRA: list[str] | None = None


def serve_cmd(data: Path, home: Path, env: dict[str, str]) -> list[str]:
    """``sessionbase … serve``, on a free port when serve listens (never the default 7788)."""
    global _SERVE_EXTRA
    if _SERVE_EXTRA is None:
        help_text = subprocess.run(
            [*sessionbase_cmd(), "serve", "--help"], env=env, capture_output=True, text=True
        ).stdout
        _SERVE_EXTRA = ["--port", "0"] if "--port" in help_text else []
    return [
        *sessionbase_cmd(), "--data-dir", str(data), "--codex-home", str(home), "serve",
        *_SERVE_EXTRA,
    ]  # fmt: skip


def rollouts(home: Path) -> list[Path]:
    return sorted(home.glob("sessions/**/rollout-*.jsonl"))


def ensure_home(path: Path, params: dict[str, Any]) -> dict[str, Any]:
    """Generate a Codex home at ``path`` unless one with the same parameters is there."""
    params = {**params, "generator": gen.GENERATOR_VERSION}
    marker = path / ".bench-params.json"
    if marker.exists():
        saved = orjson.loads(marker.read_bytes())
        if saved.get("params") == params:
            log(f"reusing {path} ({saved['summary']})")
            return saved
    if path.exists():
        shutil.rmtree(path)
    log(f"generating {path} {params}")
    stats = gen.generate(path, log=False, **{k: v for k, v in params.items() if k != "generator"})
    saved = {"params": params, "summary": stats.summary(), "stats": asdict(stats)}
    marker.write_bytes(orjson.dumps(saved))
    log(f"generated {stats.summary()}")
    return saved


def code_fingerprint() -> str:
    """A hash of the sessionbase sources (any of them may change what a store contains)."""
    import hashlib

    import sessionbase

    root = Path(sessionbase.__file__).parent
    digest = hashlib.blake2b(digest_size=8)
    for path in sorted([*root.rglob("*.py"), *root.rglob("*.sql")]):
        digest.update(str(path.relative_to(root)).encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()


def run_child(argv: list[str], env: dict[str, str] | None = None) -> tuple[int, str, float]:
    """Run a child to completion: (exit code, stdout, wall seconds)."""
    with tempfile.TemporaryFile() as out:
        began = time.perf_counter()
        code = subprocess.run(argv, stdout=out, env=env, check=False).returncode
        wall = time.perf_counter() - began
        out.seek(0)
        return code, out.read().decode(), wall


# Peak RSS is read by the child itself: VmHWM belongs to the process image after exec, while
# getrusage()/wait4() ru_maxrss also counts the parent's RSS at fork time on Linux.
_PEAK_RSS = """
def _peak_rss():
    for line in open("/proc/self/status"):
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
    import resource
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
"""


def floor_pass(files: list[Path]) -> tuple[int, int, float]:
    """The floor: read every file line by line and orjson.loads each line."""
    loads = orjson.loads
    lines = size = 0
    began = time.perf_counter()
    for path in files:
        with open(path, "rb") as fh:
            for line in fh:
                loads(line)
                lines += 1
                size += len(line)
    return lines, size, time.perf_counter() - began


def warm_cache(files: list[Path]) -> None:
    for path in files:
        with open(path, "rb") as fh:
            while fh.read(1 << 24):
                pass


# -------------------------------------------------------------------------- throughput


@dataclass
class ThroughputRound:
    """One round's figures, each timed minutes apart at most from the round's own floor: this
    machine's speed drifts by a third within minutes, so a figure is only compared with a
    baseline measured beside it."""

    floor: tuple[int, int, float]  # lines, bytes, seconds: the best of the round's passes
    mirror: float  # the backfill, as the command reports it
    process: float  # the whole command, interpreter start included
    sqlite_utils: float
    writer_rows: float
    writer_indexed: float


def median_round(
    rounds: list[ThroughputRound], ratio: Callable[[ThroughputRound], float]
) -> ThroughputRound:
    return sorted(rounds, key=ratio)[len(rounds) // 2]


def section_throughput(args: argparse.Namespace, res: Results) -> None:
    work: Path = args.work
    home = work / "throughput" / "home"
    ensure_home(home, {"threads": 1_000_000, "seed": args.seed, "total_mb": args.throughput_mb})
    files = rollouts(home)
    total = sum(p.stat().st_size for p in files)
    log(f"throughput: {len(files)} files, {mb(total)}; warming the page cache")
    warm_cache(files)

    data = work / "throughput" / "data"
    su_db = work / "throughput" / "sqlite-utils.db"
    writer_db = work / "throughput" / "writer-floor.db"
    rounds: list[ThroughputRound] = []
    built: BuiltRows | None = None
    for n in range(args.repeat):
        floors = [floor_pass(files), floor_pass(files)]
        shutil.rmtree(data, ignore_errors=True)
        report, process_secs = _backfill_command(work, data, home)
        su_secs = _sqlite_utils_insert(files, su_db, child_env(work))
        if built is None:
            built = BuiltRows(data / "sessionbase.db")
        indexed = built.write(writer_db, indexed=True)
        rows_only = built.write(writer_db, indexed=False)
        floors.append(floor_pass(files))
        floor = min(floors, key=lambda f: f[2])
        rounds.append(
            ThroughputRound(floor, report["seconds"], process_secs, su_secs, rows_only, indexed)
        )
        log(
            f"round {n + 1}/{args.repeat}: floor {f_rate_of(floor) / 1e6:.1f} MB/s, "
            f"mirror {report['bytes_read'] / report['seconds'] / 1e6:.1f} MB/s "
            f"(command {process_secs:.2f} s), sqlite-utils {total / su_secs / 1e6:.1f} MB/s, "
            f"writer alone {total / indexed / 1e6:.1f} MB/s ({total / rows_only / 1e6:.1f} "
            "without the full-text index)"
        )
    assert built is not None
    lines_read, rows = report["lines_read"], len(built.messages)
    su_rows = sqlite3.connect(su_db).execute("SELECT count(*) FROM lines").fetchone()[0]
    of = f"median of {args.repeat} rounds"

    r = median_round(rounds, lambda r: r.floor[2] / r.mirror)
    f_lines, f_bytes, f_secs = r.floor
    res.add(
        f"backfill throughput, {len(files)} files / {mb(total)} ({of})",
        f"{report['bytes_read'] / r.mirror / 1e6:.1f} MB/s",
        "read + orjson.loads every line",
        f"{f_bytes / f_secs / 1e6:.1f} MB/s",
        f"{f_secs / r.mirror:.2f}×",
        "≥ 0.5× floor",
        verdict(f_secs / r.mirror >= 0.5),
    )
    lines_ratio = (lines_read / r.mirror) / (f_lines / f_secs)
    res.add(
        "backfill lines/s",
        f"{lines_read / r.mirror:,.0f} lines/s",
        "read + orjson.loads every line",
        f"{f_lines / f_secs:,.0f} lines/s",
        f"{lines_ratio:.2f}×",
        "≥ 0.5× floor",
        verdict(lines_ratio >= 0.5),
    )

    def writer_row(label: str, written: Callable[[ThroughputRound], float]) -> None:
        w = median_round(rounds, lambda r: r.floor[2] / written(r))
        res.add(
            f"the writer alone: the same {rows:,} rows already built, {label}",
            f"{total / written(w) / 1e6:.1f} MB/s",
            "read + orjson.loads every line",
            f"{f_rate_of(w.floor) / 1e6:.1f} MB/s",
            f"{w.floor[2] / written(w):.2f}×",
            "(bound)",
            "",
        )

    writer_row("rows only", lambda r: r.writer_rows)
    writer_row("rows + full-text index", lambda r: r.writer_indexed)
    # Two commands, each timed as a whole process: interpreter start and imports included.
    s = median_round(rounds, lambda r: r.sqlite_utils / r.process)
    res.add(
        f"backfill vs. sqlite-utils, whole commands ({of})",
        f"{s.process:.1f} s",
        "sqlite-utils insert --nl (1 table)",
        f"{s.sqlite_utils:.1f} s ({total / s.sqlite_utils / 1e6:.1f} MB/s)",
        f"{s.sqlite_utils / s.process:.2f}× faster",
        "≥ 3× faster",
        verdict(s.sqlite_utils / s.process >= 3),
    )
    res.notes.append(
        f"throughput: `sessionbase backfill --no-embed`: {lines_read:,} lines → {rows:,} message "
        f"rows in {r.mirror:.1f} s, as the command reports it (the whole process, interpreter "
        f"start included: {r.process:.2f} s); sqlite-utils stored {su_rows:,} rows"
    )
    res.raw["throughput"] = {
        "files": len(files), "bytes": total, "lines": lines_read, "rows": rows,
        "rounds": [asdict(r) for r in rounds],
    }  # fmt: skip


class BuiltRows:
    """The message rows of a mirrored database, read back so that writing them again costs
    the single writer alone: no reading, parsing or normalizing, and the full-text ``parts``
    column computed ahead. Its time bounds what any faster parser could reach."""

    COLUMNS = "thread_id, idx, turn_id, ts, role, kind, text, data, item_id, source_offset"
    BATCH = 10_000  # rows per statement, as ingest feeds the full-text index

    def __init__(self, db_path: Path) -> None:
        db = sqlite3.connect(f"file:{db_path}?mode=ro", uri=True)
        self.messages = db.execute(f"SELECT {self.COLUMNS} FROM messages ORDER BY rowid").fetchall()
        db.close()
        # A new table hands out rowids 1, 2, 3… in insertion order.
        self.search = [(n, m[6], search_parts(m[6])) for n, m in enumerate(self.messages, 1)]

    def write(self, path: Path, *, indexed: bool) -> float:
        """Seconds to insert every row into a new database with sessionbase's schema, in one
        transaction, and checkpoint it; with ``indexed``, the full-text index too."""
        for suffix in ("", "-wal", "-shm"):
            Path(f"{path}{suffix}").unlink(missing_ok=True)
        SQLiteStore(path).close()  # the schema, as migrations create it
        db = sqlite3.connect(path, isolation_level=None)
        for pragma in ("journal_mode = WAL", "synchronous = NORMAL", "cache_size = -32768"):
            db.execute(f"PRAGMA {pragma}")
        insert = f"INSERT INTO messages ({self.COLUMNS}) VALUES ({', '.join('?' * 10)})"
        began = time.perf_counter()
        db.execute("BEGIN IMMEDIATE")
        for start in range(0, len(self.messages), self.BATCH):
            db.executemany(insert, self.messages[start : start + self.BATCH])
            if indexed:
                db.executemany(
                    "INSERT INTO message_search (rowid, text, parts) VALUES (?, ?, ?)",
                    self.search[start : start + self.BATCH],
                )
        db.execute("COMMIT")
        db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        seconds = time.perf_counter() - began
        db.close()
        return seconds


def f_rate_of(floor: tuple[int, int, float]) -> float:
    return floor[1] / floor[2]


def _backfill_command(work: Path, data: Path, home: Path) -> tuple[dict[str, Any], float]:
    """``sessionbase backfill --no-embed --json`` as users run it: its report (whose
    ``seconds`` is the backfill itself, after the interpreter and the command line started)
    and the wall time of the whole process. Its read-ahead workers start as they do for
    users, so what they import is measured too."""
    code, out, wall = run_child(
        [*sessionbase_cmd(), "--data-dir", str(data), "--codex-home", str(home),
         "backfill", "--no-embed", "--json"],
        child_env(work),
    )  # fmt: skip
    if code != 0:
        raise SystemExit(f"sessionbase backfill failed with exit code {code}")
    report: dict[str, Any] = orjson.loads(out)
    return report, wall


def _sqlite_utils_insert(files: list[Path], db: Path, env: dict[str, str]) -> float:
    """``sqlite-utils insert db lines - --nl`` fed the concatenated files; its wall time."""
    for suffix in ("", "-wal", "-shm"):
        Path(f"{db}{suffix}").unlink(missing_ok=True)
    began = time.perf_counter()
    proc = subprocess.Popen(
        [str(BIN / "sqlite-utils"), "insert", str(db), "lines", "-", "--nl"],
        stdin=subprocess.PIPE,
        env=env,
    )
    assert proc.stdin is not None
    for path in files:
        with open(path, "rb") as fh:
            shutil.copyfileobj(fh, proc.stdin, 1 << 20)
    proc.stdin.close()
    code = proc.wait()
    if code != 0:
        raise SystemExit(f"sqlite-utils failed with exit code {code}")
    return time.perf_counter() - began


# --------------------------------------------------------------------------------- rss

_RSS_CHILD = (
    _PEAK_RSS
    + """
import sys, time, json
from pathlib import Path
from sessionbase.config import Settings
from sessionbase.ingest.mirror import Mirror
work, data, home = map(Path, sys.argv[1:4])
s = Settings(data_dir=data, codex_homes=(home,), home=work / "user-home", machine="bench")
t = time.perf_counter()
with Mirror(s) as m:
    r = m.sync()
print(json.dumps({"lines": r.lines, "bytes": r.bytes, "rows": r.rows,
                  "seconds": time.perf_counter() - t, "errors": r.errors,
                  "peak_rss": _peak_rss()}))
"""
)

_FLOOR_CHILD = (
    _PEAK_RSS
    + """
import sys, time, json, orjson
import sessionbase.ingest.mirror  # the same imports as the backfill child
t = time.perf_counter(); n = b = 0
with open(sys.argv[1], "rb") as fh:
    for line in fh:
        orjson.loads(line); n += 1; b += len(line)
print(json.dumps({"lines": n, "bytes": b, "seconds": time.perf_counter() - t,
                  "peak_rss": _peak_rss()}))
"""
)


def section_rss(args: argparse.Namespace, res: Results) -> None:
    work: Path = args.work
    home = work / f"rss-{args.big_file_mb:g}mb" / "home"
    ensure_home(home, {"threads": 0, "seed": args.seed, "big_file_mb": args.big_file_mb})
    (big,) = rollouts(home)
    size = big.stat().st_size
    warm_cache([big])
    env = child_env(work)
    log(f"rss: floor child over {mb(size)}")
    code, out, _ = run_child([sys.executable, "-c", _FLOOR_CHILD, str(big)], env)
    if code != 0:
        raise SystemExit(f"floor child failed ({code})")
    floor = json.loads(out)
    f_rss = floor["peak_rss"]
    data = work / "rss-data"
    shutil.rmtree(data, ignore_errors=True)
    log("rss: backfill child")
    code, out, tree_rss = _run_sampling_rss(
        [sys.executable, "-c", _RSS_CHILD, str(work), str(data), str(home)], env
    )
    if code != 0:
        raise SystemExit(f"backfill child failed ({code})")
    report = json.loads(out)
    # The file streams from a process of its own: the figure is the whole tree's.
    m_rss = max(report["peak_rss"], tree_rss)
    res.add(
        f"peak RSS, backfill of one {mb(size)} file (all processes)",
        f"{m_rss / 1e6:.0f} MB",
        "child that reads + parses the same file",
        f"{f_rss / 1e6:.0f} MB",
        f"{m_rss / f_rss:.2f}×",
        "≤ 250 MB",
        verdict(m_rss <= 250e6),
    )
    res.notes.append(
        f"rss: the ingesting process's own peak (VmHWM) {report['peak_rss'] / 1e6:.0f} MB; "
        f"its whole process tree, sampled every 20 ms, {tree_rss / 1e6:.0f} MB at most"
    )
    m_rate = report["bytes"] / report["seconds"]
    f_rate = floor["bytes"] / floor["seconds"]
    res.add(
        "  same run: single-file throughput",
        f"{m_rate / 1e6:.1f} MB/s",
        "read + orjson.loads the file",
        f"{f_rate / 1e6:.1f} MB/s",
        f"{m_rate / f_rate:.2f}×",
        "(info)",
        "",
    )
    res.notes.append(
        f"rss: {report['lines']:,} lines → {report['rows']:,} rows in {report['seconds']:.1f} s, "
        f"errors: {report['errors'] or 'none'}"
    )
    res.raw["rss"] = {"file_bytes": size, "peak_rss": m_rss, "floor_rss": f_rss, **report}


def _run_sampling_rss(argv: list[str], env: dict[str, str]) -> tuple[int, str, int]:
    """Run a child to completion: (exit code, stdout, the largest sum of RSS seen over the
    child and its descendants, sampled every 20 ms)."""
    import psutil

    with tempfile.TemporaryFile() as out:
        proc = subprocess.Popen(argv, stdout=out, env=env)
        root, peak = psutil.Process(proc.pid), 0
        while proc.poll() is None:
            total = 0
            for member in [root, *root.children(recursive=True)]:
                try:
                    total += member.memory_info().rss
                except psutil.Error:  # exited between listing and reading
                    pass
            peak = max(peak, total)
            time.sleep(0.02)
        out.seek(0)
        return proc.returncode, out.read().decode(), peak


# --------------------------------------------------------------------------------- lag

_WATCH_CHILD = """
import sys, time, watchfiles
home, debounce, step = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
print("watching", flush=True)
for changes in watchfiles.watch(home, debounce=debounce, step=step, recursive=True,
                                watch_filter=None):
    now = time.time_ns()
    print(now, len(changes), flush=True)
"""


class ServeProcess:
    """``sessionbase serve`` as a child; stderr is drained on a thread, "ready" is awaited."""

    def __init__(self, argv: list[str], env: dict[str, str]) -> None:
        self.began = time.perf_counter()
        self.proc = subprocess.Popen(
            argv, stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, env=env
        )
        self.ready = threading.Event()
        self.ready_at: float | None = None
        self.ready_line = ""
        self.lines: list[str] = []
        self._thread = threading.Thread(target=self._drain, daemon=True)
        self._thread.start()

    def _drain(self) -> None:
        assert self.proc.stderr is not None
        for raw in self.proc.stderr:
            line = raw.decode(errors="replace").rstrip()
            if not self.ready.is_set() and READY.search(line):
                self.ready_at = time.perf_counter()
                self.ready_line = line
                self.ready.set()
            self.lines.append(line)

    def wait_ready(self, timeout: float) -> float:
        if not self.ready.wait(timeout):
            self.stop()
            tail = "\n".join(self.lines[-20:])
            raise SystemExit(f"serve not ready after {timeout} s:\n{tail}")
        assert self.ready_at is not None
        return self.ready_at - self.began

    def wait_idle(self, timeout: float, quiet: float = 2.0, cpu_percent: float = 15.0) -> float:
        """Wait until serve has used < ``cpu_percent`` % CPU for ``quiet`` s (background work
        after ready, such as embedding, has settled); the seconds waited."""
        import psutil

        began = time.perf_counter()
        proc = psutil.Process(self.proc.pid)
        proc.cpu_percent()
        calm_since = time.perf_counter()
        while time.perf_counter() - began < timeout:
            time.sleep(0.25)
            if proc.cpu_percent() >= cpu_percent:
                calm_since = time.perf_counter()
            elif time.perf_counter() - calm_since >= quiet:
                break
        return time.perf_counter() - began

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._thread.join(5)


def section_lag(args: argparse.Namespace, res: Results) -> None:
    from sessionbase.ingest import watcher

    work: Path = args.work
    root = work / "lag"
    shutil.rmtree(root, ignore_errors=True)
    home, data = root / "home", root / "data"
    stats = gen.generate(home, threads=100_000, seed=args.seed + 7, total_mb=args.lag_home_mb)
    log(f"lag: home {stats.summary()}")
    files = sorted(rollouts(home), key=lambda p: p.stat().st_size)
    target = files[len(files) // 2]
    thread_id = target.name[-len("00000000-0000-0000-0000-000000000000.jsonl") : -len(".jsonl")]
    source = gen.append_lines(args.seed, thread_id, gen.thread_start_ms(target))
    lines = [next(source) for _ in range(args.lag_lines)]
    env = child_env(work)

    debounce = getattr(watcher, "WATCH_DEBOUNCE_MS", 50)
    step = getattr(watcher, "WATCH_STEP_MS", 5)
    watch = subprocess.Popen(
        [sys.executable, "-c", _WATCH_CHILD, str(home), str(debounce), str(step)],
        stdout=subprocess.PIPE,
        env=env,
    )
    events: list[int] = []

    def drain_watch() -> None:
        assert watch.stdout is not None
        for raw in watch.stdout:
            parts = raw.split()
            if len(parts) == 2:
                events.append(int(parts[0]))

    threading.Thread(target=drain_watch, daemon=True).start()

    serve = ServeProcess(serve_cmd(data, home, env), env)
    try:
        serve.wait_ready(900)
        log(f"lag: serve ready ({serve.ready_line.split(' INFO ')[-1]})")
        settled = serve.wait_idle(600)
        log(f"lag: serve idle after {settled:.1f} s more")
        db = sqlite3.connect(f"file:{data / 'sessionbase.db'}?mode=ro", uri=True)
        messages_before = db.execute("SELECT count(*) FROM messages").fetchone()[0]
        where = str(target)
        rng = random.Random(args.seed)
        lags: list[float] = []
        visible: list[float] = []
        writes: list[int] = []
        timeouts = 0
        fd = os.open(target, os.O_WRONLY | os.O_APPEND)
        end = target.stat().st_size
        try:
            for line in lines:
                end += len(line)
                wrote = time.time_ns()
                os.write(fd, line)  # one write per line, as Codex does (write_all + flush)
                writes.append(wrote)
                deadline = time.monotonic() + 10
                while True:
                    row = db.execute(
                        'SELECT "offset" FROM sources WHERE path = ?', (where,)
                    ).fetchone()
                    if row and row[0] >= end:
                        visible.append((time.time_ns() - wrote) / 1e6)
                        break
                    if time.monotonic() > deadline:
                        timeouts += 1
                        break
                    time.sleep(0.0005)  # the figure comes from commit_log, not from this poll
                version = db.execute(
                    "SELECT version FROM commit_log WHERE touched LIKE ? "
                    "ORDER BY version DESC LIMIT 1",
                    (f'%"sources:{where}"%',),
                ).fetchone()[0]
                lags.append((version - wrote) / 1e6)
                time.sleep(rng.uniform(0.01, 0.08))
        finally:
            os.close(fd)
        time.sleep(0.5)
        messages_after = db.execute("SELECT count(*) FROM messages").fetchone()[0]
        db.close()
    finally:
        serve.stop()
        watch.terminate()
        watch.wait(5)
    # Pair each write with the first watcher event after it (writes are >10 ms apart).
    watch_lags: list[float] = []
    for i, wrote in enumerate(writes):
        nxt = writes[i + 1] if i + 1 < len(writes) else None
        seen = [t for t in events if t >= wrote and (nxt is None or t < nxt)]
        if seen:
            watch_lags.append((seen[0] - wrote) / 1e6)
    _report_lag(res, lags, visible, watch_lags, timeouts, messages_after - messages_before)
    res.notes.append(
        f"lag: appends began once serve was idle ({settled:.1f} s after ready: background work "
        "after the first pass had settled)"
    )


def _report_lag(
    res: Results,
    lags: list[float],
    visible: list[float],
    watch_lags: list[float],
    timeouts: int,
    new_rows: int,
) -> None:
    appended = len(lags)
    p50, p99 = percentile(lags, 50), percentile(lags, 99)
    w50 = percentile(watch_lags, 50) if watch_lags else float("nan")
    w99 = percentile(watch_lags, 99) if watch_lags else float("nan")
    res.add(
        f"live lag p50 (append → commit, {appended} lines)",
        f"{p50:.1f} ms",
        "bare watchfiles watcher, same appends",
        f"{w50:.1f} ms",
        f"{p50 / w50:.2f}×",
        "≤ 20 ms",
        verdict(p50 <= 20),
    )
    res.add(
        "live lag p99",
        f"{p99:.1f} ms",
        "bare watchfiles watcher, same appends",
        f"{w99:.1f} ms",
        f"{p99 / w99:.2f}×",
        "≤ 100 ms",
        verdict(p99 <= 100),
    )
    res.add(
        "  same appends, seen by a polling reader",
        f"p50 {percentile(visible, 50):.1f} / p99 {percentile(visible, 99):.1f} ms",
        "",
        "",
        "",
        "(info)",
        "",
    )
    res.notes.append(
        f"lag: max {max(lags):.1f} ms, mean {statistics.fmean(lags):.1f} ms; "
        f"{new_rows} new message rows; {timeouts} appends not committed within 10 s; "
        f"watcher saw {len(watch_lags)}/{appended} appends"
    )
    res.raw["lag"] = {"lags_ms": lags, "visible_ms": visible, "watch_lags_ms": watch_lags}


# ----------------------------------------------------------------------------- startup


def section_startup(args: argparse.Namespace, res: Results) -> None:
    work: Path = args.work
    root = work / f"startup-{args.startup_rows}"
    home, data = root / "home", root / "data"
    params = {"threads": 1_000_000, "seed": args.seed + 1, "target_rows": args.startup_rows}
    saved = ensure_home(home, params)
    env = child_env(work)
    marker = data / ".bench-backfilled.json"
    built_by = {"home": saved["summary"], "code": code_fingerprint()}
    previous = orjson.loads(marker.read_bytes()) if marker.exists() else {}
    if {k: previous.get(k) for k in built_by} != built_by:
        shutil.rmtree(data, ignore_errors=True)
        files = rollouts(home)
        warm_cache(files)
        log("startup: floor pass over the same files")
        f_lines, f_bytes, f_secs = floor_pass(files)
        log(f"startup: backfilling {saved['summary']} (once)")
        began = time.perf_counter()
        done = subprocess.run(
            [*sessionbase_cmd(), "--data-dir", str(data), "--codex-home", str(home),
             "backfill", "--json"],
            env=env, capture_output=True, check=True,
        )  # fmt: skip
        secs = time.perf_counter() - began
        report = orjson.loads(done.stdout)
        marker.write_bytes(
            orjson.dumps(
                {**built_by, "seconds": secs, "report": report, "floor_seconds": f_secs,
                 "floor_bytes": f_bytes, "built": time.strftime("%Y-%m-%d %H:%M")}
            )
        )  # fmt: skip
        built_now = True
    else:
        built_now = False
    info = orjson.loads(marker.read_bytes())
    db = sqlite3.connect(f"file:{data / 'sessionbase.db'}?mode=ro", uri=True)
    rows = db.execute("SELECT count(*) FROM messages").fetchone()[0]
    threads = db.execute("SELECT count(*) FROM threads").fetchone()[0]
    db.close()
    db_size = sum(p.stat().st_size for p in data.glob("sessionbase.db*"))

    def help_once() -> float:
        began = time.perf_counter()
        subprocess.run([*sessionbase_cmd(), "--help"], env=env, stdout=subprocess.DEVNULL,
                       check=True)  # fmt: skip
        return time.perf_counter() - began

    def serve_once() -> tuple[float, float]:
        serve = ServeProcess(serve_cmd(data, home, env), env)
        try:
            wall = serve.wait_ready(600)
        finally:
            serve.stop()
        match = READY.search(serve.ready_line)
        return wall, float(match.group(1)) if match else float("nan")

    log(f"startup: {rows:,} rows in {threads:,} threads; warm-up run")
    serve_once()
    help_once()
    helps: list[float] = []
    serves: list[tuple[float, float]] = []
    for _ in range(args.startup_runs):  # interleaved, so both see the same machine load
        helps.append(help_once())
        serves.append(serve_once())
    walls = [w for w, _ in serves]
    inside = [i for _, i in serves]
    s50, h50 = statistics.median(walls), statistics.median(helps)
    res.add(
        f"serve start → ready, {rows:,} rows / {threads:,} threads",
        f"{s50:.3f} s",
        "sessionbase --help (python + imports)",
        f"{h50:.3f} s",
        f"{s50 / h50:.2f}×",
        "≤ 1 s",
        verdict(s50 <= 1.0),
    )
    res.add(
        "  of which: catch-up sync (serve's own 'ready in')",
        f"{statistics.median(inside):.3f} s",
        "",
        "",
        "",
        "(info)",
        "",
    )
    backfill_rate = info["report"].get("bytes_read", 0) / info["seconds"]
    floor_rate = info["floor_bytes"] / info["floor_seconds"]
    res.add(
        f"backfill at scale, {info['report'].get('files', 0):,} files / "
        f"{mb(info['report'].get('bytes_read', 0))} (CLI)"
        + ("" if built_now else f" [built {info['built']}]"),
        f"{backfill_rate / 1e6:.1f} MB/s",
        "read + orjson.loads every line",
        f"{floor_rate / 1e6:.1f} MB/s",
        f"{backfill_rate / floor_rate:.2f}×",
        "≥ 0.5× floor",
        verdict(backfill_rate / floor_rate >= 0.5),
    )
    res.notes.append(
        f"startup: median of {args.startup_runs} runs after a warm-up; serve runs "
        f"{', '.join(f'{w:.3f}' for w in walls)} s; --help runs "
        f"{', '.join(f'{h:.3f}' for h in helps)} s; database {mb(db_size)}; one-time backfill "
        f"{info['seconds']:.0f} s"
    )
    res.raw["startup"] = {"serve_s": walls, "ready_in_s": inside, "help_s": helps, "rows": rows}


# ------------------------------------------------------------------------------- main

SECTIONS: dict[str, Callable[[argparse.Namespace, Results], None]] = {
    "throughput": section_throughput,
    "rss": section_rss,
    "lag": section_lag,
    "startup": section_startup,
}


def code_version() -> str:
    return f"{git_version()} (src {code_fingerprint()})"


def machine_line(version: str) -> str:
    return common_machine_line(
        f"SQLite {sqlite3.sqlite_version}, orjson {orjson.__version__}", version
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--work", type=Path, default=Path("/tmp/sessionbase-bench"))
    parser.add_argument("--quick", action="store_true", help="Small data: a minute or two.")
    parser.add_argument("--only", default="", help="Comma list of: " + ", ".join(SECTIONS))
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--throughput-mb", type=float, help="Home size (default 300, quick 40).")
    parser.add_argument("--big-file-mb", type=float, help="Single file (default 1024, quick 128).")
    parser.add_argument("--lag-lines", type=int, default=200, help="Lines appended live.")
    parser.add_argument(
        "--lag-home-mb", type=float, help="Home under serve (default 60, quick 15)."
    )
    parser.add_argument("--startup-rows", type=int, help="Rows (default 1000000, quick 100000).")
    parser.add_argument("--startup-runs", type=int, help="Timed runs (default 7, quick 3).")
    parser.add_argument("--repeat", type=int, help="Throughput rounds (default 3, quick 1).")
    parser.add_argument("--json", type=Path, help="Also write the raw figures here.")
    args = parser.parse_args()
    q = args.quick
    args.throughput_mb = args.throughput_mb or (40 if q else 300)
    args.big_file_mb = args.big_file_mb or (128 if q else 1024)
    args.lag_home_mb = args.lag_home_mb or (15 if q else 60)
    args.startup_rows = args.startup_rows or (100_000 if q else 1_000_000)
    args.startup_runs = args.startup_runs or (3 if q else 7)
    args.repeat = args.repeat or (1 if q else 3)
    wanted = [s.strip() for s in args.only.split(",") if s.strip()] or list(SECTIONS)
    for name in wanted:
        if name not in SECTIONS:
            parser.error(f"unknown section {name!r}; choose from {', '.join(SECTIONS)}")
    repo = Path(__file__).resolve().parent.parent
    if args.work.resolve().is_relative_to(repo):
        parser.error("--work must be outside the repository")
    args.work.mkdir(parents=True, exist_ok=True)

    res = Results()
    began = time.perf_counter()
    load_before = os.getloadavg()
    version_before = code_version()
    for name in wanted:
        log(f"=== {name}")
        SECTIONS[name](args, res)
    print()
    print(f"sessionbase ingest benchmark ({'quick' if q else 'full'}), {time.strftime('%Y-%m-%d')}")
    version_after = code_version()
    print(machine_line(version_before))
    if version_after != version_before:
        print(f"WARNING: sessionbase changed during the run; at the end: {version_after}")
    load_after = os.getloadavg()
    print(
        f"load average (1/5/15 min) at start {' '.join(f'{v:.2f}' for v in load_before)}, "
        f"at end {' '.join(f'{v:.2f}' for v in load_after)}"
    )
    print()
    print(res.table())
    print()
    for note in res.notes:
        print(f"- {note}")
    print(f"- total bench time {time.perf_counter() - began:.0f} s; data under {args.work}")
    if args.json:
        args.json.write_bytes(
            orjson.dumps(
                {"rows": [asdict(r) for r in res.rows], "raw": res.raw}, option=orjson.OPT_INDENT_2
            )  # fmt: skip
        )


if __name__ == "__main__":
    main()
