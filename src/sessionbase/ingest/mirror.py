"""The mirror: every Codex home's rollouts, session index and skills, brought up to date.

``Mirror`` is synchronous and owns the writer connection; it runs on one thread (the CLI's, or
serve's ingest thread). Only one process may ingest into a data dir at a time, enforced with
a lock file, so two writers never interleave commits.
"""

from __future__ import annotations

import asyncio
import fcntl
import os
import stat
import time
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import orjson

from sessionbase.codex import skills as codex_skills
from sessionbase.codex.paths import (
    ARCHIVED_DIR,
    SESSION_INDEX,
    SESSIONS_DIR,
    RolloutFile,
    find_rollouts,
    is_rollout_name,
)
from sessionbase.config import Settings
from sessionbase.errors import ConfigError, StoreError
from sessionbase.ingest.projects import ProjectResolver, project_id
from sessionbase.ingest.readahead import ReadAhead
from sessionbase.ingest.tailer import FileReport, Tailer
from sessionbase.store import open_store
from sessionbase.wording import counted


class Progress(Protocol):
    """Receives progress of long work (the CLI draws a bar from it)."""

    def start(self, files: int, total_bytes: int) -> None: ...

    def advance(self, nbytes: int) -> None: ...

    def file_done(self, report: FileReport) -> None: ...

    def finish(self) -> None: ...


@dataclass
class SyncReport:
    """What one pass over all files did; ``summary()`` is the human form."""

    files_seen: int = 0
    statuses: Counter[str] = field(default_factory=Counter)
    lines: int = 0
    bytes: int = 0
    rows: int = 0
    skipped: Counter[str] = field(default_factory=Counter)
    errors: list[dict[str, str]] = field(default_factory=list)
    threads_touched: set[str] = field(default_factory=set)
    seconds: float = 0.0
    totals: dict[str, Any] = field(default_factory=dict)

    def add(self, report: FileReport) -> None:
        self.statuses[report.status] += 1
        self.lines += report.lines
        self.bytes += report.bytes
        self.rows += report.rows
        self.skipped.update(report.skipped)
        if report.error:
            self.errors.append({"path": report.path, "error": report.error})
        if report.thread_id and report.status not in ("unchanged", "gone", "duplicate"):
            self.threads_touched.add(report.thread_id)

    def to_json(self) -> dict[str, Any]:
        return {
            "files": self.files_seen,
            "files_by_status": dict(self.statuses),
            "threads_updated": len(self.threads_touched),
            "lines_read": self.lines,
            "bytes_read": self.bytes,
            "rows_written": self.rows,
            "skipped_lines": dict(self.skipped),
            "errors": self.errors,
            "seconds": round(self.seconds, 3),
            "threads": self.totals.get("threads", 0),
            "messages": self.totals.get("messages", 0),
        }

    def summary(self) -> str:
        mb = self.bytes / 1e6
        rate = mb / self.seconds if self.seconds > 0 else 0.0
        lines = [
            f"{counted(self.files_seen, 'file')} ({self.statuses.get('unchanged', 0):,} "
            f"unchanged), {counted(len(self.threads_touched), 'thread')} updated, "
            f"{counted(self.rows, 'row')} written, {mb:,.1f} MB read in {self.seconds:.1f} s "
            f"({rate:.1f} MB/s)",
            f"mirror now holds {counted(self.totals.get('threads', 0), 'thread')} and "
            f"{counted(self.totals.get('messages', 0), 'message')}",
        ]
        if self.skipped:
            reasons = ", ".join(f"{k}: {v}" for k, v in sorted(self.skipped.items()))
            lines.append(f"skipped lines: {reasons}")
        for error in self.errors[:10]:
            lines.append(f"error: {error['path']}: {error['error']}")
        if len(self.errors) > 10:
            more = counted(len(self.errors) - 10, "more error")
            lines.append(f"… and {more} (see `sessionbase status`)")
        return "\n".join(lines)


class IngestLock:
    """An exclusive lock on the data dir's ingest; released on close or process death."""

    def __init__(self, data_dir: Path) -> None:
        self.path = data_dir / "ingest.lock"
        try:
            data_dir.mkdir(parents=True, exist_ok=True)
            self._fh = open(self.path, "a+")
        except OSError as exc:
            raise StoreError(
                f"cannot write to the data dir {data_dir} ({exc.strerror}): backfill and serve"
                " need to write; read commands work as it is. Make it writable, or choose"
                " another data dir with --data-dir"
            ) from exc
        try:
            fcntl.flock(self._fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            self._fh.seek(0)
            holder = self._fh.read().strip() or "another process"
            self._fh.close()
            raise StoreError(
                f"{holder} is already ingesting into {data_dir}; "
                "stop it first (only one `sessionbase serve` or `backfill` per data dir)"
            ) from None
        self._fh.seek(0)
        self._fh.truncate()
        self._fh.write(f"sessionbase pid {os.getpid()}")
        self._fh.flush()

    def close(self) -> None:
        if not self._fh.closed:
            fcntl.flock(self._fh, fcntl.LOCK_UN)
            self._fh.close()


class Mirror:
    """Keeps the database equal to the Codex homes. Use from one thread; close when done."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.lock = IngestLock(settings.data_dir)
        try:
            self.store = open_store(settings.database_url, cache_mb=32)
        except BaseException:
            self.lock.close()
            raise
        self.projects = ProjectResolver(settings.machine)
        self.tailer = Tailer(
            self.store,
            self.projects,
            machine=settings.machine,
            batch_bytes=settings.batch_bytes,
            max_line_bytes=settings.max_line_bytes,
        )

    def close(self) -> None:
        self.store.close()
        self.lock.close()

    def __enter__(self) -> Mirror:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ------------------------------------------------------------- discovery

    def discover(self) -> list[RolloutFile]:
        found: list[RolloutFile] = []
        for home in self.settings.codex_homes:
            found.extend(find_rollouts(home))
        return found

    def home_of(self, path: Path) -> Path | None:
        for home in self.settings.codex_homes:
            try:
                path.relative_to(home)
            except ValueError:
                continue
            return home
        return None

    # ----------------------------------------------------------------- syncing

    def sync(self, progress: Progress | None = None) -> SyncReport:
        """One full pass: new and changed rollouts, vanished files, names, skills."""
        began = time.monotonic()
        report = SyncReport()
        files = self.discover()
        report.files_seen = len(files)
        settled = self.store.settled_files()
        changed: list[tuple[RolloutFile, os.stat_result | None]] = []
        pending = 0
        for f in files:
            try:
                st = os.stat(f.location)
            except OSError:
                changed.append((f, None))  # the tailer reports it
                continue
            if (f.location, st.st_size, st.st_mtime_ns, st.st_ino) in settled:
                report.statuses["unchanged"] += 1
            else:
                changed.append((f, st))
                pending += st.st_size
        if progress:
            progress.start(len(changed), pending)
        tracked = self.store.tracked_paths()
        new_files = [
            (f.location, st.st_size)
            for f, st in changed
            if st is not None
            and stat.S_ISREG(st.st_mode)  # a FIFO would block a worker's open()
            and f.location not in tracked
            and not f.location.endswith(".json")
        ]
        read_ahead = ReadAhead(
            new_files,
            workers=self.settings.read_workers,
            batch_bytes=self.settings.batch_bytes,
            max_line_bytes=self.settings.max_line_bytes,
        )
        with self.store.grouped_commits(), read_ahead:
            for f, fresh in changed:
                result = self.tailer.ingest(
                    f.path,
                    f.codex_home,
                    progress.advance if progress else None,
                    stat_result=fresh,
                    read_ahead=read_ahead.take(f.location),
                )
                report.add(result)
                if progress:
                    progress.file_done(result)
            on_disk = {f.location for f in files}
            for path in tracked - on_disk:
                if not os.path.exists(path):
                    self.store.mark_source(path, "gone")
        self.sync_names()
        self.sync_skills()
        if progress:
            progress.finish()
        report.seconds = time.monotonic() - began
        report.totals = self.store.totals()
        return report

    def ingest_paths(self, paths: Iterable[Path]) -> list[FileReport]:
        """Bring the given changed paths up to date (from watch events)."""
        reports = []
        names = skills = False
        for path in sorted(self._expand_new_dirs(set(paths))):
            home = self.home_of(path)
            if path.name == SESSION_INDEX:
                names = True
            elif path.name == "SKILL.md":
                skills = True
            elif home is not None and _is_tracked_rollout(path, home):
                if path.name.endswith(".zst") and path.with_suffix("").exists():
                    continue
                reports.append(self.tailer.ingest(path, home))
        if names:
            self.sync_names()
        if skills:
            self.sync_skills()
        return reports

    def _expand_new_dirs(self, paths: set[Path]) -> set[Path]:
        """A new directory (a new day under sessions/) may hold files written before the
        watch on it began: list them too, so none waits for the safety-net rescan."""
        out = set()
        for path in paths:
            home = self.home_of(path)
            if home is None or path.name.startswith("rollout-") or not path.is_dir():
                out.add(path)
                continue
            for dirpath, _dirs, files in os.walk(path):
                out.update(Path(dirpath) / name for name in files if is_rollout_name(name))
        return out

    def sync_names(self) -> int | None:
        """Read new entries of each home's session_index.jsonl (append-only; newest wins)."""
        names: dict[str, tuple[str, str | None]] = {}
        read_to: dict[str, str] = {}
        for home in self.settings.codex_homes:
            path = home / SESSION_INDEX
            key = f"session_index:{path}"
            try:
                st = path.stat()
            except OSError:
                continue
            saved = orjson.loads(self.store.get_setting(key) or "{}")
            offset = int(saved.get("offset", 0))
            if saved.get("inode") != st.st_ino or st.st_size < offset:
                offset = 0
            try:
                with open(path, "rb") as fh:
                    fh.seek(offset)
                    data = fh.read()
            except OSError:
                continue
            end = data.rfind(b"\n") + 1
            for line in data[:end].splitlines():
                try:
                    entry = orjson.loads(line)
                except orjson.JSONDecodeError:
                    continue
                if isinstance(entry, dict) and isinstance(entry.get("id"), str):
                    name = entry.get("thread_name")
                    if isinstance(name, str) and name.strip():
                        updated = entry.get("updated_at")
                        names[entry["id"].lower()] = (
                            name.strip(),
                            updated if isinstance(updated, str) else None,
                        )
            read_to[key] = orjson.dumps({"offset": offset + end, "inode": st.st_ino}).decode()
        # Names first, offsets after: a crash in between re-reads entries (harmless) instead
        # of skipping entries that were never stored.
        version = self.store.set_session_names(names)
        for key, value in read_to.items():
            self.store.put_setting(key, value)
        return version

    def sync_skills(self) -> int | None:
        """Rediscover skills in every root Codex searches; store only if something changed."""
        project_dirs = {p["working_dir"]: p["id"] for p in self.store.projects()}
        roots: list[codex_skills.SkillRoot] = []
        for home in self.settings.codex_homes:
            roots.extend(
                codex_skills.skill_roots(
                    home, self.settings.home, [Path(d) for d in project_dirs if os.path.isdir(d)]
                )
            )
        unique = list({(r.scope, str(r.path)): r for r in roots}.values())
        found, problems = codex_skills.discover_skills(unique)
        ids = {d: project_id(self.settings.machine, d) for d in project_dirs}
        ids.update(project_dirs)
        return self.store.replace_skills(found, problems, ids)


def _is_tracked_rollout(path: Path, home: Path) -> bool:
    """What a full scan (``find_rollouts``) would pick up: a rollout name under sessions/ or
    archived_sessions/ -- not a ``rollout-….jsonl.tmp`` or a copy elsewhere in the home."""
    parts = path.relative_to(home).parts
    in_rollout_dirs = len(parts) > 1 and parts[0] in (SESSIONS_DIR, ARCHIVED_DIR)
    return in_rollout_dirs and is_rollout_name(path.name)


def check_homes(settings: Settings) -> None:
    """Refuse to start on a Codex home that does not exist: say what to do instead."""
    for home in settings.codex_homes:
        if not home.is_dir():
            raise ConfigError(
                f"Codex home {home} does not exist. Run Codex once, or point sessionbase at "
                "the right place with --codex-home PATH (or SESSIONBASE_CODEX_HOME)."
            )


async def backfill(settings: Settings, progress: Progress | None = None) -> SyncReport:
    """Import every rollout, name and skill under the Codex homes once; return what it did."""
    check_homes(settings)

    def run() -> SyncReport:
        with Mirror(settings) as mirror:
            return mirror.sync(progress)

    return await asyncio.to_thread(run)
