"""Tailing one rollout file into the store: exactly once, resumable, bounded memory.

Per file the store keeps the byte offset after the last complete line, the inode, size and
mtime, a fingerprint of the first bytes and the normalizer state at that offset. A file whose
size and mtime did not change is not opened. A file that shrank or whose first bytes changed is
re-read from 0 and its thread rebuilt. A line still being written (no final newline yet) is
left for the next pass. Rows and the new offset are committed in one transaction.
"""

from __future__ import annotations

import hashlib
import os
import stat
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path

import orjson
import zstandard

from sessionbase.codex import rollout
from sessionbase.codex.paths import is_archived, thread_id_from_name
from sessionbase.codex.rollout import Generation, Record
from sessionbase.files import read_limited
from sessionbase.ingest.normalizer import Normalizer, ThreadState
from sessionbase.ingest.projects import ProjectResolver
from sessionbase.ingest.readahead import StreamLost
from sessionbase.ingest.reader import Chunk, initial_state, open_rollout, read_chunks, take_chunk
from sessionbase.store import Store
from sessionbase.store.base import IngestBatch, SourceRow, SourceStatus

FINGERPRINT_BYTES = 1024
ProgressFn = Callable[[int], None]


class FileStatus(StrEnum):
    """What one pass did with one file."""

    UNCHANGED = "unchanged"
    INGESTED = "ingested"
    REBUILT = "rebuilt"  # read again from its start: it shrank or its first bytes changed
    MOVED = "moved"  # the same thread under a new path (e.g. archived)
    DUPLICATE = "duplicate"
    GONE = "gone"
    ERROR = "error"


@dataclass
class FileReport:
    """What one pass over one file did."""

    path: str
    thread_id: str | None = None
    status: FileStatus = FileStatus.UNCHANGED
    lines: int = 0
    bytes: int = 0
    rows: int = 0
    skipped: dict[str, int] = field(default_factory=dict)
    error: str | None = None


def _fingerprint(path: Path, length: int) -> tuple[str, int]:
    """Hash of the first ``length`` bytes of the (decompressed) content, and how many there
    were (fewer in a short file)."""
    with open_rollout(path) as fh:
        head = fh.read(length)
    return hashlib.blake2b(head, digest_size=16).hexdigest(), len(head)


def _home_text(codex_home: Path | None) -> str:
    """How a source's home is stored: empty for an imported file, which has none."""
    return "" if codex_home is None else str(codex_home)


def _home(stored: str) -> Path | None:
    return Path(stored) if stored else None


class Tailer:
    """Brings files up to date in the store. One instance per writer thread."""

    def __init__(
        self,
        store: Store,
        projects: ProjectResolver,
        *,
        machine: str,
        batch_bytes: int,
        max_line_bytes: int,
    ) -> None:
        self.store = store
        self.projects = projects
        self.machine = machine
        self.batch_bytes = batch_bytes
        self.max_line_bytes = max_line_bytes

    def ingest(
        self,
        path: Path,
        codex_home: Path | None,
        progress: ProgressFn | None = None,
        *,
        stat_result: os.stat_result | None = None,
        read_ahead: Iterable[Chunk] | None = None,
    ) -> FileReport:
        """Read whatever is new in ``path``. Problems are reported, never raised, per file.

        A full pass hands over the stat it already took (``stat_result``) and, for a file new
        to the store, the chunks a worker process already read from its start (``read_ahead``).
        """
        report = FileReport(str(path))
        try:
            st = stat_result if stat_result is not None else path.stat()
        except FileNotFoundError:
            known = self.store.source(str(path))
            if known is not None and known.status != SourceStatus.GONE:
                self.store.mark_source(str(path), SourceStatus.GONE)
            report.status = FileStatus.GONE
            return report
        except OSError as exc:
            return self._failed(report, path, codex_home, f"cannot stat: {exc.strerror}")
        if not stat.S_ISREG(st.st_mode):
            # Opening a FIFO blocks until a writer appears; a directory cannot be read.
            return self._failed(report, path, codex_home, "not a regular file")
        known = self.store.source_head(str(path))
        if known is None:
            known = self._find_moved(path, codex_home, st)
            if known is not None:
                report.status = FileStatus.MOVED
        elif (
            known.size == st.st_size
            and known.mtime_ns == st.st_mtime_ns
            and known.inode == st.st_ino
            and known.status in (SourceStatus.OK, SourceStatus.DUPLICATE)
            and not self._orphaned_duplicate(known)
        ):
            report.thread_id = known.thread_id
            return report
        else:
            known = self.store.source(str(path))  # with its normalizer state, to read on
        try:
            return self._read(path, codex_home, st, known, report, progress, read_ahead)
        except FileNotFoundError:
            if known is not None:
                self.store.mark_source(str(path), SourceStatus.GONE)
            report.status = FileStatus.GONE
            return report
        except OSError as exc:
            return self._failed(report, path, codex_home, f"cannot read: {exc.strerror or exc}")
        except zstandard.ZstdError as exc:
            return self._failed(report, path, codex_home, f"cannot decompress: {exc}")

    def _orphaned_duplicate(self, known: SourceRow) -> bool:
        """A copy whose original is gone: it becomes the thread's file (read from 0)."""
        if known.status != SourceStatus.DUPLICATE or not known.thread_id:
            return False
        return self.owner_elsewhere(known.thread_id, known.path) is None

    # ---------------------------------------------------------------- moves

    def _find_moved(
        self, path: Path, codex_home: Path | None, st: os.stat_result
    ) -> SourceRow | None:
        """A new path whose content we already track elsewhere (archive/unarchive, rename)."""
        for old in self._move_candidates(path, st):
            if os.path.exists(old.path) or old.fingerprint is None:
                continue
            try:
                if _fingerprint(path, old.fingerprint_len)[0] != old.fingerprint:
                    continue
            except (OSError, zstandard.ZstdError):
                continue
            moved = SourceRow(
                **{**old.__dict__, "path": str(path), "codex_home": _home_text(codex_home)}
            )
            moved.status = SourceStatus.OK
            self.store.move_source(old.path, moved, is_archived(path, codex_home))
            return moved
        return None

    def _move_candidates(self, path: Path, st: os.stat_result) -> list[SourceRow]:
        found = [s for s in self.store.sources_by_inode(st.st_dev, st.st_ino)]
        guess = thread_id_from_name(path.name)
        if guess:
            found += self.store.sources_for_thread(guess)
        return found

    # ---------------------------------------------------------------- reading

    def _read(
        self,
        path: Path,
        codex_home: Path | None,
        st: os.stat_result,
        known: SourceRow | None,
        report: FileReport,
        progress: ProgressFn | None,
        read_ahead: Iterable[Chunk] | None = None,
    ) -> FileReport:
        reset_thread: str | None = None
        source = known
        if source is not None and source.offset > 0 and not self._same_start(path, source, st):
            reset_thread = source.thread_id or ""
            source = None
            report.status = FileStatus.REBUILT
        fresh = source is None
        if source is None:
            source = SourceRow(path=str(path), codex_home=_home_text(codex_home))
            source.state = initial_state(path)
            if reset_thread is None:
                reset_thread = (known.thread_id if known else None) or None
        source.path, source.codex_home = str(path), _home_text(codex_home)
        source.dev, source.inode, source.size, source.mtime_ns = (
            st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns
        )  # fmt: skip
        source.status, source.error = SourceStatus.OK, None
        if source.fingerprint_len < FINGERPRINT_BYTES:
            source.fingerprint, source.fingerprint_len = _fingerprint(path, FINGERPRINT_BYTES)
        if path.name.endswith(".json"):
            return self._read_document(path, source, reset_thread, report, progress)
        reader = _FileReader(self, path, source, reset_thread, report, progress)
        # Chunks read ahead start from a new file's first byte: use them only for such a file.
        if fresh and read_ahead is not None:
            return reader.run(reader.resuming(read_ahead))
        return reader.run(reader.chunks())

    def _same_start(self, path: Path, source: SourceRow, st: os.stat_result) -> bool:
        if not path.name.endswith(".zst") and st.st_size < source.offset:
            return False
        if source.fingerprint is None:
            return True
        return _fingerprint(path, source.fingerprint_len)[0] == source.fingerprint

    def _read_document(
        self,
        path: Path,
        source: SourceRow,
        reset_thread: str | None,
        report: FileReport,
        progress: ProgressFn | None,
    ) -> FileReport:
        """TS-era session documents are rewritten whole: read all of it, every time it changes.
        A document is one value, so it is bounded like one line (``max_line_bytes``)."""
        raw = read_limited(path, self.max_line_bytes)
        try:
            document = orjson.loads(raw)
        except orjson.JSONDecodeError:
            source.skipped = {"not_json": 1}
            source.status, source.error = (
                SourceStatus.ERROR,
                "session document is not valid JSON (yet)",
            )
            self.store.insert_source(source)
            report.status, report.error = FileStatus.ERROR, source.error
            return report
        state = ThreadState(fallback_id=thread_id_from_name(path.name))
        normalizer = Normalizer(state)
        for item in rollout.ts_json_records(document, path):
            if isinstance(item, Record):
                normalizer.feed(item)
        source.generation = Generation.TS_JSON.value
        source.offset, source.lines = len(raw), 1
        chunk = take_chunk(normalizer, offset=len(raw), lines=1, generation=source.generation)
        batch = self._batch(chunk, source, reset_thread or state.thread_id)
        self.store.commit(batch)
        report.status = (
            FileStatus.REBUILT if report.status == FileStatus.REBUILT else FileStatus.INGESTED
        )
        report.thread_id, report.bytes, report.rows = state.thread_id, len(raw), len(batch.messages)
        if progress:
            progress(len(raw))
        return report

    def _batch(self, chunk: Chunk, source: SourceRow, reset_thread: str | None) -> IngestBatch:
        source.thread_id = chunk.thread_id
        source.state = chunk.state
        batch = IngestBatch(
            source=source,
            messages=chunk.rows,
            patches=chunk.patches,
            extras=chunk.extras,
            quarantine=chunk.quarantine,
            reset_thread=reset_thread,
        )
        if chunk.thread is not None:
            fields = chunk.thread.copy()
            project = self.projects.resolve(fields.get("cwd"), fields.get("git"), fields)
            fields["machine"] = self.machine
            fields["rollout_path"] = source.path
            fields["archived"] = int(is_archived(Path(source.path), _home(source.codex_home)))
            fields["project_id"] = project.id if project else None
            batch.thread, batch.project = fields, project
        return batch

    def _failed(
        self, report: FileReport, path: Path, codex_home: Path | None, error: str
    ) -> FileReport:
        known = self.store.source(str(path))
        if known is None:
            self.store.insert_source(
                SourceRow(
                    path=str(path),
                    codex_home=_home_text(codex_home),
                    status=SourceStatus.ERROR,
                    error=error,
                )
            )
        else:
            self.store.mark_source(str(path), SourceStatus.ERROR, error)
        report.status, report.error = FileStatus.ERROR, error
        return report

    def owner_elsewhere(self, thread_id: str, path: str) -> str | None:
        """Another existing file already feeding this thread (a copy, not a move)."""
        for other in self.store.sources_for_thread(thread_id):
            if (
                other.path != path
                and other.status == SourceStatus.OK
                and os.path.exists(other.path)
            ):
                return other.path
        return None


class _FileReader:
    """Commits one pass over a line-oriented rollout, chunk by chunk, with its offsets."""

    def __init__(
        self,
        tailer: Tailer,
        path: Path,
        source: SourceRow,
        reset_thread: str | None,
        report: FileReport,
        progress: ProgressFn | None,
    ) -> None:
        self.t = tailer
        self.path = path
        self.source = source
        self.reset_thread = reset_thread
        self.report = report
        self.progress = progress
        self.mtime_ns = source.mtime_ns

    def chunks(self) -> Iterator[Chunk]:
        """Read here, lazily: memory stays bounded by ``batch_bytes`` whatever the file size."""
        src = self.source
        return read_chunks(
            self.path,
            offset=src.offset,
            lines=src.lines,
            state=src.state or {},
            generation=src.generation,
            batch_bytes=self.t.batch_bytes,
            max_line_bytes=self.t.max_line_bytes,
        )

    def resuming(self, ahead: Iterable[Chunk]) -> Iterator[Chunk]:
        """Chunks read ahead; should their process be lost midway, the rest read here, from
        the last chunk committed (whose offset and state the source already holds)."""
        try:
            yield from ahead
        except StreamLost:
            yield from self.chunks()

    def run(self, chunks: Iterable[Chunk]) -> FileReport:
        src, report = self.source, self.report
        for chunk in chunks:
            nbytes = chunk.offset - src.offset
            report.bytes += nbytes
            report.lines += chunk.lines - src.lines
            for reason, n in chunk.skipped.items():
                src.skipped[reason] = src.skipped.get(reason, 0) + n
                report.skipped[reason] = report.skipped.get(reason, 0) + n
            if self.progress and nbytes:
                self.progress(nbytes)
            src.offset, src.lines, src.generation = chunk.offset, chunk.lines, chunk.generation
            if chunk.found_thread:
                owner = self.t.owner_elsewhere(chunk.found_thread, src.path)
                if owner is not None:
                    return self._duplicate(owner, chunk.found_thread)
            self._commit(chunk)
        if report.status == FileStatus.UNCHANGED:
            report.status = FileStatus.INGESTED
        return report

    def _duplicate(self, owner: str, thread_id: str) -> FileReport:
        src = self.source
        src.status = SourceStatus.DUPLICATE
        src.error = f"thread already mirrored from {owner}"
        src.state, src.offset, src.thread_id = None, 0, thread_id
        src.mtime_ns = self.mtime_ns
        self.t.store.insert_source(src)
        self.report.status, self.report.error = FileStatus.DUPLICATE, src.error
        return self.report

    def _commit(self, chunk: Chunk) -> None:
        # Mid-pass, record no mtime: should the process die before the pass ends, the file
        # must not look unchanged (same size and mtime) next time, or its rest is never read.
        self.source.mtime_ns = self.mtime_ns if chunk.final else 0
        batch = self.t._batch(chunk, self.source, self.reset_thread)
        self.t.store.commit(batch)
        self.report.rows += len(batch.messages)
        self.report.thread_id = chunk.thread_id
        self.reset_thread = None
