"""Tailing one rollout file into the store: exactly once, resumable, bounded memory.

Per file the store keeps the byte offset after the last complete line, the inode, size and
mtime, a fingerprint of the first bytes and the normalizer state at that offset. A file whose
size and mtime did not change is not opened. A file that shrank or whose first bytes changed is
re-read from 0 and its thread rebuilt. A line still being written (no final newline yet) is
left for the next pass. Rows and the new offset are committed in one transaction.
"""

from __future__ import annotations

import hashlib
import io
import os
import stat
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import orjson
import zstandard

from sessionbase.codex import rollout
from sessionbase.codex.paths import is_archived, thread_id_from_name
from sessionbase.codex.rollout import Generation, Record
from sessionbase.errors import FormatError
from sessionbase.ingest.normalizer import Normalizer, ThreadState
from sessionbase.ingest.projects import ProjectResolver
from sessionbase.store.base import IngestBatch, SourceRow
from sessionbase.store.rows import QuarantineRow
from sessionbase.store.sqlite import SQLiteStore

FINGERPRINT_BYTES = 1024
READ_CHUNK = 1024 * 1024
QUARANTINE_RAW = 4096
ProgressFn = Callable[[int], None]


@dataclass
class FileReport:
    """What one pass over one file did."""

    path: str
    thread_id: str | None = None
    status: str = "unchanged"  # unchanged | ingested | rebuilt | moved | duplicate | gone | error
    lines: int = 0
    bytes: int = 0
    rows: int = 0
    skipped: dict[str, int] = field(default_factory=dict)
    error: str | None = None


def _fingerprint(path: Path, length: int) -> str:
    """Hash of the first ``length`` bytes of the (decompressed) content."""
    with _open(path, path.name.endswith(".zst")) as fh:
        return hashlib.blake2b(fh.read(length), digest_size=16).hexdigest()


class Tailer:
    """Brings files up to date in the store. One instance per writer thread."""

    def __init__(
        self,
        store: SQLiteStore,
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
        codex_home: Path,
        progress: ProgressFn | None = None,
        *,
        stat_result: os.stat_result | None = None,
    ) -> FileReport:
        """Read whatever is new in ``path``. Problems are reported, never raised, per file.

        A full pass hands over the stat it already took (``stat_result``).
        """
        report = FileReport(str(path))
        try:
            st = stat_result if stat_result is not None else path.stat()
        except FileNotFoundError:
            known = self.store.source(str(path))
            if known is not None and known.status != "gone":
                self.store.mark_source(str(path), "gone")
            report.status = "gone"
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
                report.status = "moved"
        elif (
            known.size == st.st_size
            and known.mtime_ns == st.st_mtime_ns
            and known.inode == st.st_ino
            and known.status in ("ok", "duplicate")
            and not self._orphaned_duplicate(known)
        ):
            report.thread_id = known.thread_id
            return report
        else:
            known = self.store.source(str(path))  # with its normalizer state, to read on
        try:
            return self._read(path, codex_home, st, known, report, progress)
        except FileNotFoundError:
            if known is not None:
                self.store.mark_source(str(path), "gone")
            report.status = "gone"
            return report
        except OSError as exc:
            return self._failed(report, path, codex_home, f"cannot read: {exc.strerror or exc}")
        except zstandard.ZstdError as exc:
            return self._failed(report, path, codex_home, f"cannot decompress: {exc}")

    def _orphaned_duplicate(self, known: SourceRow) -> bool:
        """A copy whose original is gone: it becomes the thread's file (read from 0)."""
        if known.status != "duplicate" or not known.thread_id:
            return False
        return self.owner_elsewhere(known.thread_id, known.path) is None

    # ---------------------------------------------------------------- moves

    def _find_moved(self, path: Path, codex_home: Path, st: os.stat_result) -> SourceRow | None:
        """A new path whose content we already track elsewhere (archive/unarchive, rename)."""
        for old in self._move_candidates(path, st):
            if os.path.exists(old.path) or old.fingerprint is None:
                continue
            try:
                if _fingerprint(path, old.fingerprint_len) != old.fingerprint:
                    continue
            except (OSError, zstandard.ZstdError):
                continue
            moved = SourceRow(**{**old.__dict__, "path": str(path), "codex_home": str(codex_home)})
            moved.status = "ok"
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
        codex_home: Path,
        st: os.stat_result,
        known: SourceRow | None,
        report: FileReport,
        progress: ProgressFn | None,
    ) -> FileReport:
        reset_thread: str | None = None
        source = known
        compressed = path.name.endswith(".zst")
        if source is not None and source.offset > 0 and not self._same_start(path, source, st):
            reset_thread = source.thread_id or ""
            source = None
            report.status = "rebuilt"
        if source is None:
            source = SourceRow(path=str(path), codex_home=str(codex_home))
            source.state = ThreadState(fallback_id=thread_id_from_name(path.name)).to_json()
            if reset_thread is None:
                reset_thread = (known.thread_id if known else None) or None
        source.path, source.codex_home = str(path), str(codex_home)
        source.dev, source.inode, source.size, source.mtime_ns = (
            st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns
        )  # fmt: skip
        source.status, source.error = "ok", None
        if source.fingerprint_len < FINGERPRINT_BYTES:
            source.fingerprint = _fingerprint(path, FINGERPRINT_BYTES)
            with _open(path, compressed) as fh:
                source.fingerprint_len = len(fh.read(FINGERPRINT_BYTES))
        if path.name.endswith(".json"):
            return self._read_document(path, source, reset_thread, report, progress)
        return _FileReader(self, path, source, reset_thread, report, progress).run(compressed)

    def _same_start(self, path: Path, source: SourceRow, st: os.stat_result) -> bool:
        if not path.name.endswith(".zst") and st.st_size < source.offset:
            return False
        if source.fingerprint is None:
            return True
        return _fingerprint(path, source.fingerprint_len) == source.fingerprint

    def _read_document(
        self,
        path: Path,
        source: SourceRow,
        reset_thread: str | None,
        report: FileReport,
        progress: ProgressFn | None,
    ) -> FileReport:
        """TS-era session documents are rewritten whole: read all of it, every time it changes."""
        raw = path.read_bytes()
        try:
            document = orjson.loads(raw)
        except orjson.JSONDecodeError:
            source.skipped = {"not_json": 1}
            source.status, source.error = "error", "session document is not valid JSON (yet)"
            self.store.insert_source(source)
            report.status, report.error = "error", source.error
            return report
        state = ThreadState(fallback_id=thread_id_from_name(path.name))
        normalizer = Normalizer(state)
        for item in rollout.ts_json_records(document, path):
            if isinstance(item, Record):
                normalizer.feed(item)
        source.generation = Generation.TS_JSON.value
        source.offset, source.lines = len(raw), 1
        batch = self._batch(normalizer, source, reset_thread or state.thread_id, [])
        self.store.commit(batch)
        report.status = "rebuilt" if report.status == "rebuilt" else "ingested"
        report.thread_id, report.bytes, report.rows = state.thread_id, len(raw), len(batch.messages)
        if progress:
            progress(len(raw))
        return report

    def _batch(
        self,
        normalizer: Normalizer,
        source: SourceRow,
        reset_thread: str | None,
        quarantine: list[QuarantineRow],
    ) -> IngestBatch:
        rows, patches, extras = normalizer.take()
        source.thread_id = normalizer.thread_id
        source.state = normalizer.state.to_json()
        batch = IngestBatch(
            source=source,
            messages=rows,
            patches=patches,
            extras=extras,
            quarantine=quarantine,
            reset_thread=reset_thread,
        )
        state = normalizer.state
        # An empty or blank file is not a thread yet: only what it says can make one.
        if normalizer.thread_id is not None and (state.thread_id or state.next_idx):
            fields = normalizer.thread_fields()
            project = self.projects.resolve(fields.get("cwd"), fields.get("git"), fields)
            fields.update(
                machine=self.machine,
                rollout_path=source.path,
                archived=int(is_archived(Path(source.path), Path(source.codex_home))),
                project_id=project.id if project else None,
            )
            batch.thread, batch.project = fields, project
        return batch

    def _failed(self, report: FileReport, path: Path, codex_home: Path, error: str) -> FileReport:
        known = self.store.source(str(path))
        if known is None:
            self.store.insert_source(
                SourceRow(path=str(path), codex_home=str(codex_home), status="error", error=error)
            )
        else:
            self.store.mark_source(str(path), "error", error)
        report.status, report.error = "error", error
        return report

    def owner_elsewhere(self, thread_id: str, path: str) -> str | None:
        """Another existing file already feeding this thread (a copy, not a move)."""
        for other in self.store.sources_for_thread(thread_id):
            if other.path != path and other.status == "ok" and os.path.exists(other.path):
                return other.path
        return None


class _FileReader:
    """One pass over a line-oriented rollout from the stored offset to the last full line."""

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
        self.normalizer = Normalizer(ThreadState.from_json(source.state or {}))
        self.generation = Generation(source.generation) if source.generation else None
        self.quarantine: list[QuarantineRow] = []
        self.pending_bytes = 0
        self.duplicate_of: str | None = None
        self.mtime_ns = source.mtime_ns

    def run(self, compressed: bool) -> FileReport:
        start = self.source.offset
        with _open(self.path, compressed) as fh:
            _skip_to(fh, start, compressed)
            offset = start
            for line_start, line, oversized in _lines(fh, start, self.t.max_line_bytes):
                self._line(line_start, line, oversized)
                offset = line_start + len(line) + 1 if not oversized else oversized
                self.source.offset = offset
                if self.duplicate_of:
                    break
                if self.pending_bytes >= self.t.batch_bytes:
                    self._flush()
        if self.duplicate_of:
            self.source.status = "duplicate"
            self.source.error = f"thread already mirrored from {self.duplicate_of}"
            self.source.state, self.source.offset = None, 0
            self.source.thread_id = self.normalizer.state.thread_id
            self.source.mtime_ns = self.mtime_ns
            self.t.store.insert_source(self.source)
            self.report.status, self.report.error = "duplicate", self.source.error
            return self.report
        self._flush(final=True)
        if self.report.status == "unchanged":
            self.report.status = "ingested"
        self.report.thread_id = self.normalizer.thread_id
        return self.report

    def _line(self, start: int, line: bytes, oversized: int) -> None:
        src, report = self.source, self.report
        size = (oversized - start) if oversized else len(line) + 1
        self.pending_bytes += size
        report.bytes += size
        if self.progress:
            self.progress(size)
        src.lines += 1
        report.lines += 1
        if oversized:
            self._skip(start, src.lines, "oversized", line)
            return
        stripped = line.strip()
        if not stripped:
            return
        try:
            obj = rollout.loads(stripped)
        except rollout.TooDeep:
            self._skip(start, src.lines, "too_deep", line)
            return
        except ValueError:
            self._skip(start, src.lines, "not_json", line)
            return
        # Detect from the first object that says what it is: a stray array or unrecognized
        # object before the session metadata must not condemn the rest of the file.
        if self.generation in (None, Generation.UNKNOWN) and isinstance(obj, dict):
            self.generation = rollout.detect_generation(self.path, obj)
            src.generation = self.generation.value
        had_thread = self.normalizer.state.thread_id is not None
        generation = self.generation or Generation.UNKNOWN
        result = rollout.to_record(obj, generation, start, self.path, src.lines)
        if isinstance(result, FormatError):
            self._skip(start, src.lines, _reason_key(result.reason), line)
            return
        if result is None:
            return
        self.normalizer.feed(result)
        if not had_thread and self.normalizer.state.thread_id:
            self.duplicate_of = self.t.owner_elsewhere(self.normalizer.state.thread_id, src.path)

    def _skip(self, offset: int, lineno: int, reason: str, raw: bytes) -> None:
        skipped = self.source.skipped
        skipped[reason] = skipped.get(reason, 0) + 1
        self.report.skipped[reason] = self.report.skipped.get(reason, 0) + 1
        self.quarantine.append(
            QuarantineRow(str(self.path), offset, lineno, reason, bytes(raw[:QUARANTINE_RAW]))
        )

    def _flush(self, final: bool = False) -> None:
        if not final and not self.pending_bytes:
            return
        # Mid-pass, record no mtime: should the process die before the pass ends, the file
        # must not look unchanged (same size and mtime) next time, or its rest is never read.
        self.source.mtime_ns = self.mtime_ns if final else 0
        batch = self.t._batch(self.normalizer, self.source, self.reset_thread, self.quarantine)
        self.t.store.commit(batch)
        self.report.rows += len(batch.messages)
        self.reset_thread = None
        self.quarantine = []
        self.pending_bytes = 0


def _reason_key(reason: str) -> str:
    if "not an object" in reason:
        return "not_object"
    if "format not recognized" in reason:
        return "unknown_format"
    return "bad_envelope"


def _open(path: Path, compressed: bool) -> IO[bytes]:
    raw = open(path, "rb")
    if not compressed:
        return raw
    reader: Any = zstandard.ZstdDecompressor().stream_reader(raw, closefd=True)
    return io.BufferedReader(reader, READ_CHUNK)


def _skip_to(fh: IO[bytes], offset: int, compressed: bool) -> None:
    if not compressed:
        fh.seek(offset)
        return
    remaining = offset
    while remaining > 0:
        chunk = fh.read(min(remaining, READ_CHUNK))
        if not chunk:
            break
        remaining -= len(chunk)


def _lines(fh: IO[bytes], start: int, max_line: int) -> Iterator[tuple[int, bytes, int]]:
    """Complete lines from ``start``: (offset, line without newline, end offset if oversized).

    An oversized line yields once with its first bytes and the offset after its newline; it
    is never held whole in memory. The unterminated tail is not yielded.
    """
    offset = start
    while True:
        line = fh.readline(max_line + 1)
        if line.endswith(b"\n"):
            yield offset, line[:-1], 0
            offset += len(line)
            continue
        if len(line) <= max_line:
            return  # end of the data so far: the tail waits for its newline
        # Longer than allowed (judged by length alone, wherever reads fall): skip to its end.
        head, end = line[:QUARANTINE_RAW], offset + len(line)
        while True:
            rest = fh.readline(READ_CHUNK)
            end += len(rest)
            if rest.endswith(b"\n"):
                break
            if not rest:
                return
        yield offset, head, end
        offset = end
