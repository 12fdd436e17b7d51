"""``sessionbase doctor``: what is wrong with a data dir, and rebuilding what can be rebuilt.

``examine`` checks the data dir, the database (the backend's check of every page, the schema,
every table), the rollouts it tracks against the files on disk, the user-decisions file, and
the vectors and ANN index of semantic search. Each check gives a ``Finding``: ok, a warning
(it works, but something is left to run) or a problem (it is broken), with what to run.

``repair`` mends the problems: a damaged database is set aside (renamed, never deleted) and
the mirror rebuilt from the rollouts, with the user decisions restored from their file (read
from the damaged database first if the file is gone); a user-decisions file that is missing,
unreadable or behind the database is written again from it; damaged vectors are set aside and
embedded again, and an unreadable ANN index rebuilt. The rollouts are never touched.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any, Literal

import orjson

from sessionbase.codex.paths import scan_home
from sessionbase.config import Settings
from sessionbase.errors import DatabaseDamaged, SessionbaseError, StoreError
from sessionbase.ingest.lock import IngestLock
from sessionbase.ingest.mirror import Progress, backfill, check_homes
from sessionbase.store import (
    Store,
    decisions,
    is_postgres,
    open_store,
    open_vectors,
    salvage_user_changes,
    set_aside,
    set_aside_vectors,
    sqlite_path,
    user_decisions_file,
    vector_location,
)
from sessionbase.store.base import UserChange

if TYPE_CHECKING:
    from sessionbase.search.semantic import SemanticIndex
from sessionbase.wording import counted

State = Literal["ok", "warning", "problem"]
Repair = Literal["rebuild", "save decisions", "set aside vectors", "embed"]
REPAIR = "sessionbase doctor --repair"


@dataclass
class Finding:
    """One check's result: ``fix`` is what to run, ``repair`` what ``--repair`` would do."""

    check: str
    state: State
    detail: str
    fix: str | None = None
    repair: Repair | None = None


@dataclass
class Report:
    findings: list[Finding] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """No problem (warnings allowed)."""
        return all(f.state != "problem" for f in self.findings)

    @property
    def repairs(self) -> set[Repair]:
        return {f.repair for f in self.findings if f.repair is not None}

    def to_json(self) -> dict[str, Any]:
        return {"ok": self.ok, "findings": [asdict(f) for f in self.findings]}


async def examine(settings: Settings) -> Report:
    """Check everything (slow on a large database: its every page is read)."""
    return await asyncio.to_thread(_examine, settings)


def _examine(settings: Settings) -> Report:
    report = Report([_data_dir(settings)])
    store, finding = _database(settings)
    report.findings.append(finding)
    try:
        report.findings.append(_sources(settings, store))
        report.findings.append(_decisions(settings, store))
        report.findings.extend(_semantic(settings, store))
    finally:
        if store is not None:
            store.close()
    return report


def _data_dir(settings: Settings) -> Finding:
    where = settings.data_dir
    if not where.is_dir():
        return Finding("data dir", "warning", f"{where} does not exist yet", "sessionbase backfill")
    if not os.access(where, os.W_OK):
        return Finding(
            "data dir",
            "warning",
            f"{where} is read-only to you: read commands work, but backfill, serve and"
            " doctor --repair need to write",
        )
    return Finding("data dir", "ok", str(where))


def _database(settings: Settings) -> tuple[Store | None, Finding]:
    """The database opened read-only if it opens, and how it is."""
    url = settings.database_url
    if not is_postgres(url) and not sqlite_path(url).exists():
        return None, Finding(
            "database", "warning", f"none yet at {url}", "sessionbase backfill (or serve)"
        )
    try:
        store = open_store(url, readonly=True)
    except DatabaseDamaged as exc:
        return None, Finding("database", "problem", str(exc), REPAIR, "rebuild")
    except StoreError as exc:  # e.g. a newer schema: the message says what to do
        return None, Finding("database", "problem", str(exc))
    try:
        problems = store.integrity_problems()
        totals = store.totals()
    except DatabaseDamaged as exc:
        return store, Finding("database", "problem", str(exc), REPAIR, "rebuild")
    if problems:
        more = f" (and {counted(len(problems) - 1, 'more problem')})" if len(problems) > 1 else ""
        return store, Finding(
            "database",
            "problem",
            f"{url} is damaged: {problems[0]}{more}",
            REPAIR,
            "rebuild",
        )
    return store, Finding(
        "database",
        "ok",
        f"{url}: schema current, every page checked, {counted(totals['threads'], 'thread')},"
        f" {counted(totals['messages'], 'message')}",
    )


def _sources(settings: Settings, store: Store | None) -> Finding:
    """The rollouts on disk against what the database has read of them."""
    missing_homes = [str(h) for h in settings.codex_homes if not h.is_dir()]
    if missing_homes:
        return Finding(
            "rollouts",
            "problem",
            f"Codex home {', '.join(missing_homes)} does not exist",
            "run Codex once, or give the right --codex-home",
        )
    on_disk = {f.location for home in settings.codex_homes for f in scan_home(home).rollouts}
    homes = ", ".join(str(h) for h in settings.codex_homes)
    if store is None:
        return Finding("rollouts", "ok", f"{counted(len(on_disk), 'rollout')} in {homes}")
    try:
        sources = store.sources()
    except StoreError as exc:
        return Finding("rollouts", "problem", f"cannot be compared: {exc}", REPAIR, "rebuild")
    tracked = {s.path: s for s in sources}
    new = [path for path in on_disk if path not in tracked]
    gone = [s.path for s in sources if s.status == "ok" and not os.path.exists(s.path)]
    behind = [
        s.path
        for s in sources
        if s.status == "ok" and s.path in on_disk and _size(s.path) not in (None, s.size)
    ]
    if not (new or gone or behind):
        return Finding(
            "rollouts", "ok", f"{counted(len(on_disk), 'rollout')} in {homes}, all imported"
        )
    parts = [
        f"{counted(len(new), 'rollout')} not imported yet" if new else "",
        f"{counted(len(behind), 'rollout')} changed since" if behind else "",
        f"{counted(len(gone), 'tracked file')} gone from disk" if gone else "",
    ]
    return Finding(
        "rollouts",
        "warning",
        f"{', '.join(p for p in parts if p)} (in {homes})",
        "sessionbase backfill (serve catches up by itself)",
    )


def _size(path: str) -> int | None:
    try:
        return os.stat(path).st_size
    except OSError:
        return None


def _decisions(settings: Settings, store: Store | None) -> Finding:
    path = user_decisions_file(settings.database_url)
    if path is None:
        return Finding("user decisions", "ok", "kept by the database server")
    try:
        saved = decisions.read(path)
    except StoreError as exc:
        return Finding("user decisions", "problem", str(exc), REPAIR, "save decisions")
    in_database = _database_decisions(store)
    if saved is None:
        if not in_database:
            return Finding("user decisions", "ok", "none made yet")
        return Finding(
            "user decisions",
            "warning",
            f"{path} is missing: {counted(len(in_database), 'decision')} of the database have"
            " no copy to restore from",
            REPAIR,
            "save decisions",
        )
    if in_database is None:
        return Finding(
            "user decisions",
            "ok",
            f"{counted(len(saved.changes), 'decision')} saved in {path}: a rebuild restores them",
        )
    if _keys(saved.changes) != _keys(in_database):
        return Finding(
            "user decisions",
            "warning",
            f"{path} differs from the database ({len(saved.changes)} saved,"
            f" {len(in_database)} in the database)",
            REPAIR,
            "save decisions",
        )
    return Finding(
        "user decisions", "ok", f"{counted(len(saved.changes), 'decision')} saved in {path}"
    )


def _database_decisions(store: Store | None) -> list[UserChange] | None:
    if store is None:
        return None
    try:
        return store.user_changes()
    except StoreError:
        return None


def _keys(changes: list[UserChange]) -> set[tuple[str, str, bytes]]:
    return {(c.entity, c.id, orjson.dumps(c.values, option=orjson.OPT_SORT_KEYS)) for c in changes}


def _semantic(settings: Settings, store: Store | None) -> list[Finding]:
    from sessionbase import search  # the embedding libraries load slowly

    try:
        index = search.semantic_index(settings)
        problems = index.vectors.integrity_problems()
    except SessionbaseError as exc:
        return [Finding("vectors", "problem", str(exc), REPAIR, "set aside vectors")]
    if problems:
        return [
            Finding("vectors", "problem", f"damaged: {problems[0]}", REPAIR, "set aside vectors")
        ]
    count = index.vectors.count()
    findings = [Finding("vectors", "ok", f"{counted(count, 'vector')} ({index.embedder.name})")]
    if store is not None:
        try:
            waiting = len(index.threads_to_index(store))
        except StoreError:
            waiting = 0
        if waiting:
            findings[0] = Finding(
                "vectors",
                "warning",
                f"{counted(count, 'vector')}; {counted(waiting, 'thread')} not embedded yet",
                "sessionbase backfill (serve embeds by itself)",
            )
    problem = index.saved_index_problem()
    if problem is None:
        findings.append(Finding("semantic index", "ok", "matches the vectors"))
    else:
        findings.append(Finding("semantic index", "warning", problem, REPAIR, "embed"))
    if index.refined is not None:
        findings.append(_refined(index.refined))
    return findings


def _refined(refined: SemanticIndex) -> Finding:
    """The refining model's vectors: damaged ones are set aside and refined again."""
    try:
        problems = refined.vectors.integrity_problems()
        count = refined.vectors.count()
    except SessionbaseError as exc:
        problems, count = [str(exc)], 0
    if problems:
        detail = f"damaged: {problems[0]}"
        return Finding("refined vectors", "problem", detail, REPAIR, "set aside vectors")
    return Finding("refined vectors", "ok", f"{counted(count, 'vector')} ({refined.embedder.name})")


def _damaged(location: str, model: str) -> bool:
    try:
        vectors = open_vectors(location, model)
    except SessionbaseError:
        return True
    try:
        return bool(vectors.integrity_problems())
    except SessionbaseError:
        return True
    finally:
        vectors.close()


async def repair(
    settings: Settings,
    report: Report,
    progress: Progress | None = None,
    embed_progress: Callable[[int, int], None] | None = None,
) -> list[str]:
    """Mend what ``report`` found (see the module docstring); what was done, one line each.
    Raises StoreError when the data dir cannot be written or another process ingests."""
    wanted = report.repairs
    done: list[str] = []
    if not wanted:
        return done
    if not os.access(settings.data_dir, os.W_OK):
        raise StoreError(
            f"the data dir {settings.data_dir} is read-only to you: doctor --repair needs to"
            " write there"
        )
    url = settings.database_url
    if "rebuild" in wanted:
        check_homes(settings)  # before anything moves: the rebuild reads them
        with contextlib.closing(IngestLock(settings.data_dir)):  # never beside serve
            done += await asyncio.to_thread(_keep_decisions, url)
            moved = set_aside(url)
            if moved:
                done.append(f"set the damaged database aside as {moved[0]} (kept, not deleted)")
        totals = (await backfill(settings, progress)).totals
        threads = counted(totals.get("threads", 0), "thread")
        messages = counted(totals.get("messages", 0), "message")
        done.append(f"rebuilt the mirror from the rollouts: {threads}, {messages}")
    elif "save decisions" in wanted:
        done += await asyncio.to_thread(_save_decisions, url)
    if "set aside vectors" in wanted:
        from sessionbase import search
        from sessionbase.search.semantic import forget

        location = vector_location(url)
        model = search.embedder_for(settings).name
        refiner = search.refiner_for(settings)
        forget(location)  # this process's open handle on them
        static_damaged = _damaged(location, model)
        for name in (model, None if refiner is None else refiner.name):
            if name is not None and (name != model or static_damaged) and _damaged(location, name):
                moved = set_aside_vectors(location, name)
                if moved:
                    done.append(f"set the damaged vectors aside as {moved[0]}")
        if static_damaged and "rebuild" not in wanted:  # a rebuilt database starts anew
            with open_store(url) as store:  # every thread's units are to be embedded again
                store.put_setting(search.semantic_index(settings).version_key, "0")
    if wanted & {"rebuild", "set aside vectors", "embed"}:
        from sessionbase import search

        embedded = (await search.index(settings, embed_progress)).embedded
        done.append(f"embedded {counted(embedded, 'unit')}; the semantic index is saved")
    return done


def _keep_decisions(url: str) -> list[str]:
    """Before a damaged database goes: make sure its user decisions have a good copy, from
    the file if it reads, else from whatever the damaged database still yields."""
    path = user_decisions_file(url)
    if path is None:
        return []
    try:
        if decisions.read(path) is not None:
            return []
    except StoreError:
        pass
    salvaged = salvage_user_changes(url)
    if not salvaged:
        return []
    if path.exists():
        decisions.set_aside(path, "unreadable")
    decisions.write(path, 0, salvaged)
    return [f"read {counted(len(salvaged), 'user decision')} from the damaged database into {path}"]


def _save_decisions(url: str) -> list[str]:
    with open_store(url) as store:  # a writing open brings the file up to date
        path = store.user_decisions_file
        count = len(store.user_changes())
    return [f"wrote {counted(count, 'user decision')} to {path}"] if path else []


def describe(report: Report) -> list[str]:
    """The report as lines for a person: one per check, with what to run under it."""
    marks = {"ok": "ok", "warning": "WARNING", "problem": "PROBLEM"}
    lines = []
    for f in report.findings:
        lines.append(f"{f.check:<15} {marks[f.state]:<8} {f.detail}")
        if f.fix and f.state != "ok":
            lines.append(f"{'':<15} {'':<8} run: {f.fix}")
    return lines
