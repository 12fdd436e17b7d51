"""PostgreSQL beside SQLite, each figure beside a baseline measured in the same run.

Sections (``--only a,b``):

* ``backfill`` — ``sessionbase backfill --no-embed`` of one generated Codex home into SQLite
  and into PostgreSQL (MB/s of rollout bytes), and ``psql \\copy`` of the same lines into one
  table of one text column: the floor for moving these bytes into this PostgreSQL.
* ``fanout`` — N clients subscribed to one thread's ``messages:tail``; a line appended to its
  rollout; the time until the last client has it (p50/p99). Three replicas on one PostgreSQL
  database, N/3 clients on each (the append is ingested by one, the other two learn it from
  the commit log), beside one replica with all N clients.
* ``queries`` — p50/p99 of ``threads:recent``, ``messages:list`` (first page) and full-text
  ``search:messages`` over the JSON HTTP API of ``serve --no-ingest``, on a SQLite and a
  PostgreSQL copy of the same mirror.

Needs PostgreSQL on 127.0.0.1:5432 (the user ``postgres``, trust); every database it makes is
dropped at the end, but for ``--pg-database NAME``, kept with the SQLite mirror under ``--work``
so that a large home (``--threads 8200``: about 1M messages) is generated and mirrored once;
``--lean`` generates it with ``generate_codex_home.py --lean`` (about the same rows in fewer bytes).
``uv run python bench/bench_postgres.py --quick`` runs in a few minutes.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import secrets
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import psycopg

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from _common import Results, child_env, log, percentile, raise_nofile, sessionbase_cmd
from bench_live import (
    SYNC_PATH,
    Clients,
    _fan_rounds,
    build_home,
    free_port,
    prose,
)

ADMIN = "postgresql://postgres@127.0.0.1:5432/postgres"
ROOT = Path(__file__).resolve().parents[1]


@contextmanager
def database() -> Iterator[str]:
    """A new PostgreSQL database for this run, dropped afterwards."""
    name = f"sbbench_{os.getpid()}_{secrets.token_hex(3)}"
    with psycopg.connect(ADMIN, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        yield f"postgresql://postgres@127.0.0.1:5432/{name}"
    finally:
        with psycopg.connect(ADMIN, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@contextmanager
def mirror_database(args: argparse.Namespace, *, empty: bool) -> Iterator[str]:
    """The PostgreSQL database a section fills: ``--pg-database`` when given (created if
    missing, emptied first when ``empty``, kept afterwards so a large mirror is made once),
    else a new one dropped at the end."""
    if not args.pg_database:
        with database() as url:
            yield url
        return
    name = args.pg_database
    with psycopg.connect(ADMIN, autocommit=True) as conn:
        exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone()
        if exists and empty:
            conn.execute(f'DROP DATABASE "{name}" WITH (FORCE)')
        if not exists or empty:
            conn.execute(f'CREATE DATABASE "{name}"')
    yield f"postgresql://postgres@127.0.0.1:5432/{name}"


def message_count(url: str) -> int:
    with psycopg.connect(url) as conn:
        if conn.execute("SELECT to_regclass('messages')").fetchone() == (None,):
            return 0
        row = conn.execute("SELECT count(*) FROM messages").fetchone()
    return int(row[0]) if row else 0


def run(argv: list[str], work: Path) -> float:
    began = time.perf_counter()
    done = subprocess.run(argv, env=child_env(work), capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(argv)} failed:\n{done.stdout}\n{done.stderr}")
    return time.perf_counter() - began


def rollout_bytes(home: Path) -> int:
    return sum(p.stat().st_size for p in home.rglob("rollout-*.jsonl"))


# ------------------------------------------------------------------------------ backfill


def section_backfill(args: argparse.Namespace, res: Results) -> None:
    work = args.work / "backfill"
    home = work / "home"
    if not home.exists():
        log(f"backfill: generating a home of {args.threads} threads")
        subprocess.run(
            [sys.executable, str(ROOT / "bench" / "generate_codex_home.py"), "--out", str(home),
             "--threads", str(args.threads), "--seed", "1", *(["--lean"] if args.lean else [])],
            check=True, capture_output=True,
        )  # fmt: skip
    size = rollout_bytes(home)
    log(f"backfill: {size / 1e6:.1f} MB of rollouts")
    shutil.rmtree(work / "sqlite", ignore_errors=True)
    sqlite_s = run([*sessionbase_cmd(), "--data-dir", str(work / "sqlite"), "--codex-home",
                    str(home), "backfill", "--no-embed"], work)  # fmt: skip
    with mirror_database(args, empty=True) as url:
        pg_s = run([*sessionbase_cmd(), "--database", url, "--data-dir", str(work / "pg"),
                    "--codex-home", str(home), "backfill", "--no-embed"], work)  # fmt: skip
    lines = work / "lines.copy"
    with open(lines, "wb") as out:  # COPY text format: backslashes doubled
        for path in sorted(home.rglob("rollout-*.jsonl")):
            out.write(path.read_bytes().replace(b"\\", b"\\\\"))
    os.chmod(lines, 0o644)
    with database() as url:
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute("CREATE TABLE lines (line text)")
        copy_s = run(["psql", "-q", url, "-c", f"\\copy lines (line) FROM '{lines}'"], work)
    lines.unlink()
    mbs = {k: size / 1e6 / s for k, s in (("sqlite", sqlite_s), ("pg", pg_s), ("copy", copy_s))}
    res.add("backfill into PostgreSQL (MB/s)", f"{mbs['pg']:.1f}", "same home into SQLite",
            f"{mbs['sqlite']:.1f}", f"{mbs['pg'] / mbs['sqlite']:.2f}×", "(info)", "")  # fmt: skip
    res.add("  backfill into PostgreSQL (MB/s)", f"{mbs['pg']:.1f}",
            "psql \\copy of the same lines, one column", f"{mbs['copy']:.1f}",
            f"{mbs['pg'] / mbs['copy']:.2f}×", "(info)", "")  # fmt: skip
    res.notes.append(
        f"backfill: {size / 1e6:.1f} MB in {args.threads} rollouts; SQLite {sqlite_s:.1f} s, "
        f"PostgreSQL {pg_s:.1f} s, psql \\copy {copy_s:.1f} s (each command whole, "
        "interpreter start included)"
    )


# ------------------------------------------------------------------------------ fanout


class Replica:
    def __init__(self, home: Path, data: Path, database: str, work: Path, ingest: bool) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.ws_url = f"ws://127.0.0.1:{self.port}{SYNC_PATH}"
        argv = [*sessionbase_cmd(), "--database", database, "--data-dir", str(data),
                "--codex-home", str(home), "serve", "--port", str(self.port)]  # fmt: skip
        if not ingest:
            argv.append("--no-ingest")
        data.mkdir(parents=True, exist_ok=True)
        self.log = open(data.parent / f"replica-{self.port}.log", "ab")
        self.proc = subprocess.Popen(argv, stdout=self.log, stderr=subprocess.STDOUT,
                                     env=child_env(work), preexec_fn=raise_nofile)  # fmt: skip

    def wait_ready(self, timeout: float = 300.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                with urllib.request.urlopen(f"{self.url}/readyz", timeout=1) as r:
                    if r.status == 200 and json.load(r).get("ready"):
                        return
            except OSError:
                pass
            time.sleep(0.1)
        raise SystemExit(f"replica {self.url} not ready")

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(20)
        except subprocess.TimeoutExpired:
            self.proc.kill()
        self.log.close()


class Spread:
    """Clients spread over several replicas, armed and collected together."""

    def __init__(self, groups: list[Clients]) -> None:
        self.groups = groups

    def arm(self, marker: bytes) -> None:
        for g in self.groups:
            g.arm(marker)

    def collect(self) -> dict[str, int]:
        got = [g.collect() for g in self.groups]
        return {
            "count": sum(g["count"] for g in got),
            "expected": sum(g["expected"] for g in got),
            "first": min((g["first"] for g in got if g["first"]), default=0),
            "last": max(g["last"] for g in got),
            "size": max(g["size"] for g in got),
            "ts": max(g["ts"] for g in got),
        }

    def close(self) -> None:
        for g in self.groups:
            g.close()


def fan(args: argparse.Namespace, replicas: int, h: Any, url: str) -> list[float]:
    data = h.root / f"data-{replicas}"
    servers = [Replica(h.home, data / str(i), url, args.work, ingest=(i == 0))
               for i in range(replicas)]  # fmt: skip
    try:
        for s in servers:
            s.wait_ready()
        thread = h.hot()[0]
        sub = ["messages:tail", {"threadId": thread.rollout.thread_id, "n": 20}]
        groups = []
        for i, s in enumerate(servers):
            n = args.clients // replicas + (1 if i < args.clients % replicas else 0)
            clients = Clients(1)
            clients.connect(s.ws_url, [sub] * n)
            groups.append(clients)
        spread = Spread(groups)
        fd = os.open(thread.path, os.O_WRONLY | os.O_APPEND)

        def append(marker: str) -> int:
            line = h.line(thread, f"{marker} {prose(h.rng, 40, 300)}")
            t0 = time.time_ns()
            os.write(fd, line)
            return t0

        try:
            rounds = _fan_rounds(spread, args.rounds, append, random.Random(replicas),  # type: ignore[arg-type]
                                 f"r{replicas}")  # fmt: skip
        finally:
            os.close(fd)
            spread.close()
        log(f"fanout: {replicas} replica(s), {args.clients} clients, "
            f"{len(rounds['total'])} appends, partial rounds {rounds['partial']}")  # fmt: skip
        return list(rounds["total"])
    finally:
        for s in servers:
            s.stop()


def section_fanout(args: argparse.Namespace, res: Results) -> None:
    h = build_home(args.work / "fanout", args.fan_threads, 7)
    with database() as url:
        one = fan(args, 1, h, url)
    with database() as url:
        three = fan(args, 3, h, url)
    for p in (99, 50):
        a, b = percentile(three, p), percentile(one, p)
        res.add(f"fan-out p{p}, 3 replicas × {args.clients // 3:,} clients (append → last)",
                f"{a:.0f} ms", f"1 replica × {args.clients:,} clients", f"{b:.0f} ms",
                f"{a / b:.2f}×", "≤ 150 ms" if p == 99 else "(info)",
                ("ok" if a <= 150 else "MISS") if p == 99 else "")  # fmt: skip


# ------------------------------------------------------------------------------ queries


def timed_queries(url: str, calls: list[tuple[str, dict[str, Any]]], repeat: int) -> list[float]:
    out = []
    for _ in range(repeat):
        for path, body in calls:
            req = urllib.request.Request(f"{url}/v1/query/{path}", data=json.dumps(body).encode(),
                                         headers={"Content-Type": "application/json"})  # fmt: skip
            began = time.perf_counter()
            with urllib.request.urlopen(req, timeout=60) as r:
                r.read()
            out.append((time.perf_counter() - began) * 1000)
    return out


def section_queries(args: argparse.Namespace, res: Results) -> None:
    work = args.work / "backfill"
    home = work / "home"
    if not (work / "sqlite" / "sessionbase.db").exists():
        section_backfill(args, Results())
    with mirror_database(args, empty=False) as url:
        if not message_count(url):
            log("queries: filling PostgreSQL")
            run([*sessionbase_cmd(), "--database", url, "--data-dir", str(work / "pg"),
                 "--codex-home", str(home), "backfill", "--no-embed"], work)  # fmt: skip
        messages = message_count(url)
        with psycopg.connect(url) as conn:
            threads = [
                r[0] for r in conn.execute("SELECT id FROM threads ORDER BY random() LIMIT 50")
            ]
        words = ["error", "websocket", "migration", "config.py", "pytest", "timeout"]
        calls = {
            "threads:recent": [("threads:recent", {"limit": 50})],
            "messages:list": [
                (
                    "messages:list",
                    {"threadId": t, "paginationOpts": {"numItems": 50, "cursor": None}},
                )
                for t in threads
            ],  # fmt: skip
            "search (text)": [
                ("search:messages", {"q": w, "mode": "text", "limit": 20}) for w in words
            ],  # fmt: skip
        }
        figures: dict[str, dict[str, list[float]]] = {}
        for backend, database_url in (("sqlite", str(work / "sqlite" / "sessionbase.db")),
                                      ("pg", url)):  # fmt: skip
            data = work / f"serve-{backend}"
            replica = Replica(home, data, database_url, work, ingest=False)
            try:
                replica.wait_ready()
                for name, cs in calls.items():
                    timed_queries(replica.url, cs, 1)  # warm
                    figures.setdefault(name, {})[backend] = timed_queries(
                        replica.url, cs, max(1, args.query_rounds // len(cs))
                    )
            finally:
                replica.stop()
    for name, by in figures.items():
        for p in (50, 99):
            a, b = percentile(by["pg"], p), percentile(by["sqlite"], p)
            res.add(f"{name} p{p}, PostgreSQL", f"{a:.1f} ms", "SQLite, same mirror",
                    f"{b:.1f} ms", f"{a / b:.2f}×", "(info)", "")  # fmt: skip
    res.notes.append(f"queries: {messages:,} messages, over the JSON HTTP API of serve --no-ingest")


SECTIONS = {"backfill": section_backfill, "fanout": section_fanout, "queries": section_queries}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--work", type=Path,
                        default=Path(tempfile.gettempdir()) / "sessionbase-bench-pg")  # fmt: skip
    parser.add_argument("--only", default=",".join(SECTIONS))
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--threads", type=int, help="backfill/queries: generated threads")
    parser.add_argument("--clients", type=int, default=1000, help="fanout: clients in all")
    parser.add_argument("--rounds", type=int, default=100, help="fanout: appends")
    parser.add_argument("--fan-threads", type=int, default=100)
    parser.add_argument("--query-rounds", type=int, default=300)
    parser.add_argument("--lean", action="store_true", help="backfill/queries: generate the"
                        " home with --lean (about the same rows in fewer bytes)")  # fmt: skip
    parser.add_argument("--pg-database", help="backfill/queries: fill this database and keep it"
                        " (queries reuse it when it holds messages)")  # fmt: skip
    args = parser.parse_args()
    if args.threads is None:
        args.threads = 100 if args.quick else 2000
    if args.quick:
        args.rounds = min(args.rounds, 30)
    args.work.mkdir(parents=True, exist_ok=True)
    res = Results()
    for name in args.only.split(","):
        log(f"section {name}")
        SECTIONS[name](args, res)
    print(res.table())
    for note in res.notes:
        print(f"- {note}")


if __name__ == "__main__":
    main()
