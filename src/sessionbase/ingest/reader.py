"""Reading a line-oriented rollout into rows, with no database: the part of ingest that can run
in another process.

``read_chunks`` goes from a byte offset and the normalizer state saved there to the last
complete line, and yields one ``Chunk`` per ``batch_bytes`` of input plus a final one (possibly
empty). A chunk holds everything its transaction commits: rows, patches, raw extras,
quarantined lines, the new offset and the state there. The tailer consumes chunks the same way
whether they were read lazily in its own thread or ahead of time by a worker process.
"""

from __future__ import annotations

import io
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import zstandard

from sessionbase.codex import rollout
from sessionbase.codex.paths import thread_id_from_name
from sessionbase.codex.rollout import Generation
from sessionbase.errors import FormatError
from sessionbase.files import open_regular
from sessionbase.ingest.normalizer import Normalizer, ThreadState
from sessionbase.store.rows import ExtraRow, MessageValues, QuarantineRow, ThreadFields

READ_CHUNK = 1024 * 1024
QUARANTINE_RAW = 4096


@dataclass
class Chunk:
    """One transaction's worth of a file, and where the file stands after it."""

    offset: int  # byte offset after the last complete line read
    lines: int  # lines of the file read so far, this chunk included
    generation: str | None
    state: dict[str, Any]  # the normalizer state at ``offset``
    thread_id: str | None  # the thread the rows belong to (the file name's id until known)
    found_thread: str | None  # the file's own thread id, in the chunk where it first appears
    thread: ThreadFields | None  # the thread row as the file defines it so far
    rows: list[MessageValues] = field(default_factory=list)
    patches: list[tuple[int, dict[str, Any]]] = field(default_factory=list)
    extras: list[ExtraRow] = field(default_factory=list)
    quarantine: list[QuarantineRow] = field(default_factory=list)
    skipped: dict[str, int] = field(default_factory=dict)
    final: bool = False


def take_chunk(
    normalizer: Normalizer,
    *,
    offset: int,
    lines: int,
    generation: str | None,
    found_thread: str | None = None,
    quarantine: list[QuarantineRow] | None = None,
    skipped: dict[str, int] | None = None,
    final: bool = False,
) -> Chunk:
    """What the normalizer has gathered since the last chunk, as a chunk ending at ``offset``."""
    rows, patches, extras = normalizer.take()
    state = normalizer.state
    # An empty or blank file is not a thread yet: only what it says can make one.
    defined = normalizer.thread_id is not None and bool(state.thread_id or state.next_idx)
    return Chunk(
        offset=offset,
        lines=lines,
        generation=generation,
        state=state.to_json(),
        thread_id=normalizer.thread_id,
        found_thread=found_thread,
        thread=normalizer.thread_fields() if defined else None,
        rows=[row.values() for row in rows],
        patches=patches,
        extras=extras,
        quarantine=quarantine or [],
        skipped=skipped or {},
        final=final,
    )


def read_chunks(
    path: Path,
    *,
    offset: int,
    lines: int,
    state: dict[str, Any],
    generation: str | None,
    batch_bytes: int,
    max_line_bytes: int,
) -> Iterator[Chunk]:
    """Chunks from ``offset`` (where ``lines`` lines and ``state`` were reached) to the last
    complete line. Raises OSError / ZstdError when the file cannot be read."""
    normalizer = Normalizer(ThreadState.from_json(state))
    reader = _LineReader(path, normalizer, lines, generation)
    chunk_start = offset
    with open_rollout(path) as fh:
        skip_to(fh, offset, path.name.endswith(".zst"))
        for start, line, oversized in complete_lines(fh, offset, max_line_bytes):
            reader.line(start, line, oversized)
            offset = oversized or start + len(line)
            if offset - chunk_start >= batch_bytes:
                yield reader.chunk(offset)
                chunk_start = offset
    yield reader.chunk(offset, final=True)


def initial_state(path: Path) -> dict[str, Any]:
    """The normalizer state a file new to the store starts from."""
    return ThreadState(fallback_id=thread_id_from_name(path.name)).to_json()


def new_file_chunks(path: Path, batch_bytes: int, max_line_bytes: int) -> Iterator[Chunk]:
    """The chunks of a file new to the store, from its first byte."""
    return read_chunks(
        path,
        offset=0,
        lines=0,
        state=initial_state(path),
        generation=None,
        batch_bytes=batch_bytes,
        max_line_bytes=max_line_bytes,
    )


def read_new_file(path: Path, batch_bytes: int, max_line_bytes: int) -> list[Chunk]:
    """A whole file new to the store, at once (in a worker; the caller bounds its size)."""
    return list(new_file_chunks(path, batch_bytes, max_line_bytes))


class _LineReader:
    """Parses lines into the normalizer and counts what it skips, between two chunks."""

    def __init__(
        self, path: Path, normalizer: Normalizer, lines: int, generation: str | None
    ) -> None:
        self.path = path
        self.normalizer = normalizer
        self.lines = lines
        self.generation = Generation(generation) if generation else None
        self.found_thread: str | None = None
        self.quarantine: list[QuarantineRow] = []
        self.skipped: dict[str, int] = {}

    def chunk(self, offset: int, final: bool = False) -> Chunk:
        out = take_chunk(
            self.normalizer,
            offset=offset,
            lines=self.lines,
            generation=self.generation.value if self.generation else None,
            found_thread=self.found_thread,
            quarantine=self.quarantine,
            skipped=self.skipped,
            final=final,
        )
        self.found_thread, self.quarantine, self.skipped = None, [], {}
        return out

    def line(self, start: int, line: bytes, oversized: int) -> None:
        """One line, with its newline (or the head of an oversized one)."""
        self.lines += 1
        if oversized:
            self._skip(start, "oversized", line)
            return
        if line.isspace():
            return
        try:
            obj = rollout.loads(line)  # the newline is JSON whitespace: no copy without it
        except rollout.TooDeep:
            self._skip(start, "too_deep", line)
            return
        except ValueError:
            self._skip(start, "not_json", line)
            return
        # Detect from the first object that says what it is: a stray array or unrecognized
        # object before the session metadata must not condemn the rest of the file.
        if self.generation in (None, Generation.UNKNOWN) and isinstance(obj, dict):
            self.generation = rollout.detect_generation(self.path, obj)
        had_thread = self.normalizer.state.thread_id is not None
        generation = self.generation or Generation.UNKNOWN
        result = rollout.to_record(obj, generation, start, self.path, self.lines)
        if isinstance(result, FormatError):
            self._skip(start, _reason_key(result.reason), line)
            return
        if result is None:
            return
        self.normalizer.feed(result)
        if not had_thread and self.normalizer.state.thread_id:
            self.found_thread = self.normalizer.state.thread_id

    def _skip(self, offset: int, reason: str, raw: bytes) -> None:
        self.skipped[reason] = self.skipped.get(reason, 0) + 1
        kept = raw[:QUARANTINE_RAW].removesuffix(b"\n")
        self.quarantine.append(QuarantineRow(str(self.path), offset, self.lines, reason, kept))


def _reason_key(reason: str) -> str:
    if "not an object" in reason:
        return "not_object"
    if "format not recognized" in reason:
        return "unknown_format"
    return "bad_envelope"


def open_rollout(path: Path) -> IO[bytes]:
    """The file's bytes, decompressed when it is a ``.zst``. Raises ``OSError`` (including
    ``NotRegularFile``) when the path is not a regular file that can be read."""
    raw = open_regular(path, buffering=READ_CHUNK)
    if not path.name.endswith(".zst"):
        return raw
    reader: Any = zstandard.ZstdDecompressor().stream_reader(raw, closefd=True)
    return io.BufferedReader(reader, READ_CHUNK)


def skip_to(fh: IO[bytes], offset: int, compressed: bool) -> None:
    if not compressed:
        fh.seek(offset)
        return
    remaining = offset
    while remaining > 0:
        chunk = fh.read(min(remaining, READ_CHUNK))
        if not chunk:
            break
        remaining -= len(chunk)


def complete_lines(fh: IO[bytes], start: int, max_line: int) -> Iterator[tuple[int, bytes, int]]:
    """Complete lines from ``start``: (offset, line with its newline, end offset if oversized).

    An oversized line yields once with its first bytes and the offset after its newline; it
    is never held whole in memory. The unterminated tail is not yielded.
    """
    offset = start
    while True:
        line = fh.readline(max_line + 1)
        if line.endswith(b"\n"):
            yield offset, line, 0
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
