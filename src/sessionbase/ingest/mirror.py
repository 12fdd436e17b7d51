"""The mirror: every Codex home's rollouts, session index and skills, and the imported
files, brought up to date.

``Mirror`` is synchronous and owns the writer connection; it runs on one thread (the CLI's, or
serve's ingest thread). Only one process may ingest into a data dir at a time, enforced with
a lock file (``IngestLock``), so two writers never interleave commits. A path that cannot be
read is skipped and listed (``unreadable()``), never fatal to the rest.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import sqlite3
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
    HomeScan,
    PathProblem,
    RolloutFile,
    is_rollout_name,
    scan_home,
    scan_tree,
)
from sessionbase.config import Settings
from sessionbase.errors import ConfigError, IngestBusy, SourceError, StoreError
from sessionbase.files import FileTooLarge, open_regular
from sessionbase.ingest import homes, imports
from sessionbase.ingest.lock import IngestLock
from sessionbase.ingest.projects import ProjectResolver
from sessionbase.ingest.readahead import ReadAhead
from sessionbase.ingest.reader import complete_lines
from sessionbase.ingest.tailer import FileReport, FileStatus, Tailer
from sessionbase.store import Store, is_postgres, open_store, shown
from sessionbase.store.base import SourceStatus
from sessionbase.store.projects import project_id
from sessionbase.wording import counted

MAX_INDEX_BYTES = 64 * 1024 * 1024  # about half a million renames: more is not an index
MAX_INDEX_LINE_BYTES = 64 * 1024  # one entry: an id, a name and a time


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
    statuses: Counter[FileStatus] = field(default_factory=Counter)
    lines: int = 0
    bytes: int = 0
    rows: int = 0
    skipped: Counter[str] = field(default_factory=Counter)
    errors: list[dict[str, str]] = field(default_factory=list)
    threads_touched: set[str] = field(default_factory=set)
    seconds: float = 0.0
    totals: dict[str, Any] = field(default_factory=dict)
    unreadable: list[PathProblem] = field(default_factory=list)
    unrecognized: list[PathProblem] = field(default_factory=list)

    def add(self, report: FileReport) -> None:
        self.statuses[report.status] += 1
        self.lines += report.lines
        self.bytes += report.bytes
        self.rows += report.rows
        self.skipped.update(report.skipped)
        if report.error:
            self.errors.append({"path": report.path, "error": report.error})
        quiet = (FileStatus.UNCHANGED, FileStatus.GONE, FileStatus.DUPLICATE)
        if report.thread_id and report.status not in quiet:
            self.threads_touched.add(report.thread_id)

    def to_json(self) -> dict[str, Any]:
        return {
            "files": self.files_seen,
            "files_by_status": {str(status): n for status, n in self.statuses.items()},
            "threads_updated": len(self.threads_touched),
            "lines_read": self.lines,
            "bytes_read": self.bytes,
            "rows_written": self.rows,
            "skipped_lines": dict(self.skipped),
            "errors": self.errors,
            "seconds": round(self.seconds, 3),
            "threads": self.totals.get("threads", 0),
            "messages": self.totals.get("messages", 0),
            "unreadable": [{"path": p.path, "reason": p.reason} for p in self.unreadable],
            "unrecognized": [{"path": p.path, "reason": p.reason} for p in self.unrecognized],
        }

    def summary(self) -> str:
        mb = self.bytes / 1e6
        rate = mb / self.seconds if self.seconds > 0 else 0.0
        lines = [
            f"{counted(self.files_seen, 'file')} ({self.statuses[FileStatus.UNCHANGED]:,} "
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
        for problem in self.unreadable[:10]:
            lines.append(f"cannot read: {problem.path}: {problem.reason} (skipped)")
        if len(self.unreadable) > 10:
            more = counted(len(self.unreadable) - 10, "more path")
            lines.append(f"… and {more} that cannot be read (see `sessionbase status`)")
        if self.unrecognized:
            lines.append(
                f"not recognized: {counted(len(self.unrecognized), 'file')} under the session"
                " folders (`sessionbase status` says which and why)"
            )
        return "\n".join(lines)


class Mirror:
    """Keeps the database equal to the Codex homes and the imported files. Use from one
    thread; close when done."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        # One process ingests a SQLite file (its data dir's lock); into a shared database,
        # one per (machine, Codex home) (the store's claim).
        self.lock = None if is_postgres(settings.database_url) else IngestLock(settings.data_dir)
        try:
            self.store = self._open_claimed()
        except BaseException:
            if self.lock is not None:
                self.lock.close()
            raise
        self.projects = ProjectResolver(settings.machine)
        self.tailer = self._tailer()
        # What the last full walk found, and what has come up since (a new day's folder, a
        # session index turned into a FIFO...): for the watch and for reporting.
        self._scan = HomeScan()
        self._skill_dirs: set[str] = set()
        self._new_dirs: set[str] = set()
        self._index_problems: dict[str, str] = {}
        self._registry_problem: PathProblem | None = None
        self.imported: frozenset[str] = frozenset()

    def _open_claimed(self) -> Store:
        """The writer store, holding the ingest claim on these homes (a shared database);
        IngestBusy while another process holds it."""
        settings = self.settings
        store = open_store(settings.database_url, cache_mb=32, machine=settings.machine)
        if not store.claim_ingest([str(home) for home in settings.codex_homes]):
            store.close()
            homes = ", ".join(str(home) for home in settings.codex_homes)
            raise IngestBusy(
                f"another process is already ingesting {homes} of machine "
                f"{settings.machine} into {shown(settings.database_url)}"
            )
        return store

    def _tailer(self) -> Tailer:
        return Tailer(
            self.store,
            self.projects,
            machine=self.settings.machine,
            batch_bytes=self.settings.batch_bytes,
            max_line_bytes=self.settings.max_line_bytes,
        )

    def reconnect(self) -> None:
        """Open the store afresh (keeping the lock): after a failure, start from a clean
        connection. Raises StoreError when the database cannot be opened yet."""
        on_commit = self.store.on_commit
        with contextlib.suppress(StoreError, sqlite3.Error):
            self.store.close()  # whatever state the failure left it in
        self.store = self._open_claimed()
        self.store.on_commit = on_commit
        self.store.checkpoint_in_background()
        self.tailer = self._tailer()

    def close(self) -> None:
        self.store.close()
        if self.lock is not None:
            self.lock.close()

    def __enter__(self) -> Mirror:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ------------------------------------------------------------- discovery

    def scan(self) -> list[RolloutFile]:
        """Walk every home and read the imported files' registry: the files to mirror."""
        found = HomeScan()
        skill_dirs: set[str] = set()
        for home in self.settings.codex_homes:
            found.extend(scan_home(home))
            skill_dirs.update(_real_dirs(home / "skills"))
        self._scan, self._skill_dirs, self._new_dirs = found, skill_dirs, set()
        self._load_registry()
        imported = [RolloutFile(path, None, False) for path in sorted(self.imported)]
        return found.rollouts + [f for f in imported if f.location not in self._home_files()]

    def _home_files(self) -> set[str]:
        return {f.location for f in self._scan.rollouts}

    def _load_registry(self) -> None:
        try:
            self.imported = frozenset(imports.imported_files(self.settings.data_dir))
            self._registry_problem = None
        except SourceError as exc:
            path = str(imports.registry_dir(self.settings.data_dir) / imports.REGISTRY)
            self._registry_problem = PathProblem(path, str(exc))

    def unreadable(self) -> list[PathProblem]:
        """Paths the last pass could not read (directories, the session index...)."""
        problems = list(self._scan.unreadable)
        problems += [PathProblem(p, r) for p, r in sorted(self._index_problems.items())]
        if self._registry_problem is not None:
            problems.append(self._registry_problem)
        return sorted(problems, key=lambda p: p.path)

    def unrecognized(self) -> list[PathProblem]:
        """Files under the session folders that are not rollouts, and why (imported files
        excepted: they are mirrored)."""
        found = [p for p in self._scan.unrecognized if p.path not in self.imported]
        return sorted(found, key=lambda p: p.path)

    def walk_for_watch(self) -> set[str]:
        """Walk the homes now and return the directories to watch (before a first pass)."""
        self.scan()
        return self.watch_dirs()

    def watch_dirs(self) -> set[str]:
        """Every directory whose changes matter: each home itself (its session index, new
        session folders), every real directory under its session and skills folders, the
        imported files' folders and the registry's."""
        dirs = set(self._scan.directories) | self._skill_dirs | self._new_dirs
        dirs.update(str(home) for home in self.settings.codex_homes)
        dirs.update(os.path.dirname(path) for path in self.imported)
        dirs.add(str(imports.registry_dir(self.settings.data_dir)))
        return {d for d in dirs if os.path.isdir(d)}

    def walk_new_dirs(self, paths: Iterable[Path]) -> tuple[list[Path], list[str]]:
        """The rollouts and directories under new directories reported by the watch (a new
        day under sessions/, a new skill); the directories join ``watch_dirs()``."""
        rollouts: list[Path] = []
        dirs: list[str] = []
        for path in paths:
            if self._in_skills(path):
                dirs += _real_dirs(path)
                continue
            where = self._session_root_of(path)
            if where is None:
                continue
            home, archived = where
            found = scan_tree(str(path), home, archived=archived)
            rollouts += [f.path for f in found.rollouts]
            dirs += found.directories
            self._scan.unreadable += found.unreadable
            self._scan.unrecognized += found.unrecognized
        self._new_dirs.update(dirs)
        return rollouts, dirs

    def home_of(self, path: Path) -> Path | None:
        for home in self.settings.codex_homes:
            try:
                path.relative_to(home)
            except ValueError:
                continue
            return home
        return None

    def _in_skills(self, path: Path) -> bool:
        home = self.home_of(path)
        return home is not None and path.relative_to(home).parts[:1] == ("skills",)

    def _session_root_of(self, path: Path) -> tuple[Path, bool] | None:
        """(home, archived) when ``path`` is a home's sessions/ or archived_sessions/ or lies
        below one."""
        home = self.home_of(path)
        if home is None:
            return None
        parts = path.relative_to(home).parts
        if not parts or parts[0] not in (SESSIONS_DIR, ARCHIVED_DIR):
            return None
        return home, parts[0] == ARCHIVED_DIR

    # ----------------------------------------------------------------- syncing

    def sync(self, progress: Progress | None = None) -> SyncReport:
        """One full pass: new and changed rollouts and imported files, vanished files, names,
        skills."""
        began = time.monotonic()
        report = SyncReport()
        homes.record(self.store, self.settings.machine, self.settings.codex_homes)
        files = self.scan()
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
                report.statuses[FileStatus.UNCHANGED] += 1
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
            and stat.S_ISREG(st.st_mode)  # anything else is the tailer's to report
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
                    self.store.mark_source(path, SourceStatus.GONE)
        self.sync_names()
        self.sync_skills()
        if progress:
            progress.finish()
        report.seconds = time.monotonic() - began
        report.totals = self.store.totals()
        report.unreadable = self.unreadable()
        report.unrecognized = self.unrecognized()
        return report

    def ingest_paths(self, paths: Iterable[Path]) -> list[FileReport]:
        """Bring the given changed paths up to date (from watch events)."""
        reports = []
        names = skills = False
        paths = set(paths)
        registry = imports.registry_dir(self.settings.data_dir) / imports.REGISTRY
        if registry in paths:
            before = self.imported
            self._load_registry()
            paths.update(Path(p) for p in self.imported - before)
        for path in sorted(paths):
            location = str(path)
            if path.name == SESSION_INDEX:
                names = True
            elif path.name == "SKILL.md" or self._in_skills(path):
                skills = True  # a SKILL.md, or a folder that may hold new ones
            elif location in self.imported:
                reports.append(self.tailer.ingest(path, None))
            elif (where := self._session_root_of(path)) is not None and is_rollout_name(path.name):
                if _is_symlink(path):
                    continue  # never followed; the next full pass lists it
                if path.name.endswith(".zst") and path.with_suffix("").exists():
                    continue
                reports.append(self.tailer.ingest(path, where[0]))
        if names:
            self.sync_names()
        if skills:
            self.sync_skills()
        return reports

    def ingest_files(self, paths: Iterable[str]) -> list[FileReport]:
        """Bring the given imported files up to date now (``sessionbase import``)."""
        with self.store.grouped_commits():
            return [self.tailer.ingest(Path(path), None) for path in paths]

    def sync_names(self) -> int | None:
        """Read new entries of each home's session_index.jsonl (append-only; newest wins).

        The index is read through the one guarded open, line by line with each line bounded,
        and only up to ``MAX_INDEX_BYTES``: a FIFO, a device or a gigantic file in its place
        is reported (``unreadable()``) and skipped, never waited on or read whole.
        """
        names: dict[str, tuple[str, str | None]] = {}
        read_to: dict[str, str] = {}
        for home in self.settings.codex_homes:
            path = home / SESSION_INDEX
            key = f"session_index:{path}"
            try:
                offset, end, inode = self._read_index(path, key, names)
            except FileNotFoundError:
                self._index_problems.pop(str(path), None)
                continue
            except OSError as exc:
                self._index_problems[str(path)] = exc.strerror or str(exc)
                continue
            self._index_problems.pop(str(path), None)
            if end != offset:
                read_to[key] = orjson.dumps({"offset": end, "inode": inode}).decode()
        # Names first, offsets after: a crash in between re-reads entries (harmless) instead
        # of skipping entries that were never stored.
        version = self.store.set_session_names(names)
        for key, value in read_to.items():
            self.store.put_setting(key, value)
        return version

    def _read_index(
        self, path: Path, key: str, names: dict[str, tuple[str, str | None]]
    ) -> tuple[int, int, int]:
        """Gather the entries past the saved offset; returns (offset, new offset, inode)."""
        with open_regular(path) as fh:
            st = os.fstat(fh.fileno())
            if st.st_size > MAX_INDEX_BYTES:
                raise FileTooLarge(path, MAX_INDEX_BYTES)
            saved = orjson.loads(self.store.get_setting(key) or "{}")
            offset = int(saved.get("offset", 0))
            if saved.get("inode") != st.st_ino or st.st_size < offset:
                offset = 0
            fh.seek(offset)
            end = offset
            for start, line, oversized in complete_lines(fh, offset, MAX_INDEX_LINE_BYTES):
                end = oversized or start + len(line)
                if end > MAX_INDEX_BYTES:
                    raise FileTooLarge(path, MAX_INDEX_BYTES)  # it grew while we read
                if not oversized:
                    _index_entry(line, names)
        return offset, end, st.st_ino

    def sync_skills(self) -> int | None:
        """Rediscover skills in every root Codex searches; store only if something changed."""
        machine = self.settings.machine
        project_dirs = {
            (p["working_dirs"] or {}).get(machine, p["working_dir"]): p["id"]
            for p in self.store.projects()
        }
        roots: list[codex_skills.SkillRoot] = []
        for home in self.settings.codex_homes:
            roots.extend(
                codex_skills.skill_roots(
                    home, self.settings.home, [Path(d) for d in project_dirs if os.path.isdir(d)]
                )
            )
        unique = list({(r.scope, str(r.path)): r for r in roots}.values())
        found, problems = codex_skills.discover_skills(unique)
        ids = {d: project_id(machine, d) for d in project_dirs}
        ids.update(project_dirs)
        return self.store.replace_skills(found, problems, ids)


def _index_entry(line: bytes, names: dict[str, tuple[str, str | None]]) -> None:
    try:
        entry = orjson.loads(line)
    except orjson.JSONDecodeError:
        return
    if isinstance(entry, dict) and isinstance(entry.get("id"), str):
        name = entry.get("thread_name")
        if isinstance(name, str) and name.strip():
            updated = entry.get("updated_at")
            names[entry["id"].lower()] = (
                name.strip(),
                updated if isinstance(updated, str) else None,
            )


def _real_dirs(top: Path) -> list[str]:
    """``top`` and the real directories below it, as deep and as many as Codex's skill scan
    goes; no symlink is followed (what a watch of a skills folder covers)."""
    if not _is_real_dir(top):
        return []
    found = [str(top)]
    level = [str(top)]
    for _ in range(codex_skills.MAX_SCAN_DEPTH):
        below: list[str] = []
        for directory in level:
            try:
                with os.scandir(directory) as listing:
                    below += [e.path for e in listing if e.is_dir(follow_symlinks=False)]
            except OSError:
                continue  # the skills scan reports what it cannot read
        below = below[: codex_skills.MAX_DIRS_PER_ROOT - len(found)]
        found += below
        level = below
        if not level:
            break
    return found


def _is_real_dir(path: Path) -> bool:
    try:
        return stat.S_ISDIR(os.lstat(path).st_mode)
    except OSError:
        return False


def _is_symlink(path: Path) -> bool:
    try:
        return stat.S_ISLNK(os.lstat(path).st_mode)
    except OSError:
        return False


@dataclass
class Survey:
    """What is on disk to mirror and what will be skipped, found without the database or
    the lock (for ``sessionbase status``)."""

    rollouts: list[str]
    imported: list[str]
    unreadable: list[PathProblem]
    unrecognized: list[PathProblem]


def survey(settings: Settings) -> Survey:
    found = HomeScan()
    for home in settings.codex_homes:
        found.extend(scan_home(home))
    unreadable = list(found.unreadable)
    for home in settings.codex_homes:
        problem = index_problem(home / SESSION_INDEX)
        if problem is not None:
            unreadable.append(PathProblem(str(home / SESSION_INDEX), problem))
    try:
        imported = imports.imported_files(settings.data_dir)
    except SourceError as exc:
        registry = imports.registry_dir(settings.data_dir) / imports.REGISTRY
        unreadable.append(PathProblem(str(registry), str(exc)))
        imported = []
    return Survey(
        rollouts=[f.location for f in found.rollouts],
        imported=imported,
        unreadable=sorted(unreadable, key=lambda p: p.path),
        unrecognized=sorted(
            (p for p in found.unrecognized if p.path not in set(imported)), key=lambda p: p.path
        ),
    )


def index_problem(path: Path) -> str | None:
    """Why a session index cannot be read (as ``sync_names`` would find), or None."""
    try:
        with open_regular(path) as fh:
            if os.fstat(fh.fileno()).st_size > MAX_INDEX_BYTES:
                return str(FileTooLarge(path, MAX_INDEX_BYTES))
    except FileNotFoundError:
        return None
    except OSError as exc:
        return exc.strerror or str(exc)
    return None


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
