"""Files read ahead by worker processes land exactly as if the ingesting thread read them.

Real worker processes (spawned, as in a backfill) read the corpus and generated rollouts with
bad lines, compressed files, a duplicate copy and several chunks per file; the database must
equal, row for row, one filled by a single process, on SQLite and on PostgreSQL. Killed runs
are covered by the ``read-ahead`` case of ``tests/integration/test_crash_safety.py``.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
from collections.abc import Callable, Iterable, Iterator
from importlib.metadata import entry_points
from pathlib import Path

import pytest
import zstandard

from sessionbase.config import Settings
from sessionbase.ingest import readahead
from sessionbase.ingest.reader import Chunk
from tests.builders.codex import Rollout
from tests.conftest import CORPUS
from tests.support.db_snapshot import diff, snapshot
from tests.support.mirror import settings_for, sync


def settings_with(
    tmp_path: Path, name: str, home: Path, workers: int, database: str = ""
) -> Settings:
    # Small transactions: several chunks per file.
    return settings_for(
        tmp_path, name, home, read_workers=workers, batch_bytes=16 * 1024, database=database
    )


def build_home(root: Path) -> Path:
    day = root / "sessions" / "2026" / "03" / "04"
    day.mkdir(parents=True)
    for path in sorted(CORPUS.glob("*/*.jsonl")):
        name = path.name if path.name.startswith("rollout-") else f"rollout-{path.name}"
        shutil.copy(path, day / name)
    for n in range(6):
        r = Rollout().context(f"/work/project-{n % 2}")
        for turn in range(30):
            r.user(f"question {n}.{turn} about parse_config and src/app/cli.py")
            r.shell("pytest -q", output="ok\n" * (turn + 1), exit_code=turn % 2)
            r.assistant(f"answer {n}.{turn} " + "détails ünïcode " * 40)
        if n == 1:
            r.raw(b"{not json\n").raw(b"\xff\xfe garbage\n")
        r.user("the last words, half written")
        data = r.to_bytes() + b'{"timestamp": "2026-03-04T10:00:00Z", "type": "resp'
        path = r.path_in(root)
        if n == 2:
            path = path.with_name(path.name + ".zst")
            data = zstandard.ZstdCompressor().compress(data)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
        if n == 3:  # the same thread under another name: a duplicate, never a second count
            shutil.copyfile(
                path, path.with_name(f"rollout-2026-03-05T00-00-00-{r.thread_id}.jsonl")
            )
    return root


@pytest.fixture
def counted(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Read ahead in any pass, however small, and record each file a worker delivered."""
    monkeypatch.setattr(readahead, "MIN_PASS_BYTES", 0)
    delivered: list[str] = []
    take = readahead.ReadAhead.take

    def counting(self: readahead.ReadAhead, path: str) -> list[Chunk] | None:
        chunks = take(self, path)
        if chunks is not None:
            delivered.append(path)
        return chunks

    monkeypatch.setattr(readahead.ReadAhead, "take", counting)
    return delivered


@pytest.mark.skipif(not CORPUS.is_dir(), reason=f"corpus not found at {CORPUS}")
@pytest.mark.parametrize("streamed", [False, True], ids=["held whole", "big ones streamed"])
def test_read_ahead_gives_the_rows_of_one_process(
    tmp_path: Path,
    counted: list[str],
    monkeypatch: pytest.MonkeyPatch,
    streamed: bool,
    fresh_database: Callable[[], str],
) -> None:
    if streamed:  # the generated rollouts (tens of KB) stream; most corpus files do not
        monkeypatch.setattr(readahead, "MAX_FILE_BYTES", 16 * 1024)
    home = build_home(tmp_path / "codex-home")
    ahead_settings = settings_with(tmp_path, "ahead", home, 2, fresh_database())
    alone_settings = settings_with(tmp_path, "alone", home, 0, fresh_database())
    ahead, alone = sync(ahead_settings), sync(alone_settings)
    files = len(list(CORPUS.glob("*/*.jsonl"))) + 7
    assert len(counted) == files  # every file came from a worker in the first pass only
    assert ahead.statuses == alone.statuses == {"ingested": files - 1, "duplicate": 1}
    assert ahead.skipped == alone.skipped == {"not_json": 2}
    assert (ahead.lines, ahead.rows) == (alone.lines, alone.rows)
    expected = snapshot(alone_settings.database_url)
    actual = snapshot(ahead_settings.database_url)
    assert actual == expected, diff(actual, expected)


def test_a_file_no_worker_can_read_is_read_and_reported_by_the_tailer(
    tmp_path: Path, counted: list[str]
) -> None:
    home = tmp_path / "codex-home"
    readable = Rollout().context().user("fine").assistant("yes").write(home)
    broken = Rollout().context().user("lost").path_in(home).with_suffix(".jsonl.zst")
    broken.write_bytes(b"(\xb5/\xfd not really zstd")
    report = sync(settings_with(tmp_path, "data", home, workers=1))
    assert counted == [str(readable)]
    assert report.statuses == {"ingested": 1, "error": 1}
    assert report.errors == [{"path": str(broken), "error": report.errors[0]["error"]}]
    assert report.errors[0]["error"].startswith("cannot decompress")


def test_a_stream_lost_midway_is_read_on_by_the_tailer(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, fresh_database: Callable[[], str]
) -> None:
    home = tmp_path / "codex-home"
    r = Rollout().context("/work/app")
    for turn in range(200):
        r.user(f"question {turn} about the flaky test")
        r.shell("pytest -q", output="ok\n" * (turn + 1), exit_code=turn % 2)
        r.assistant(f"answer {turn} " + "détails " * 50)
    r.write(home)
    monkeypatch.setattr(readahead, "MAX_FILE_BYTES", 16 * 1024)
    lost: list[str] = []
    take = readahead.ReadAhead.take

    def killing_its_process(self: readahead.ReadAhead, path: str) -> Iterable[Chunk] | None:
        stream = take(self, path)
        return killed_after_two(stream) if isinstance(stream, readahead.ChunkStream) else stream

    def killed_after_two(stream: readahead.ChunkStream) -> Iterator[Chunk]:
        try:
            for n, chunk in enumerate(stream):
                if n == 1:
                    assert stream.pid is not None
                    os.kill(stream.pid, signal.SIGKILL)
                yield chunk
        except readahead.StreamLost as exc:
            lost.append(str(exc))
            raise

    monkeypatch.setattr(readahead.ReadAhead, "take", killing_its_process)
    streamed_settings = settings_with(tmp_path, "streamed", home, 1, fresh_database())
    alone_settings = settings_with(tmp_path, "alone", home, 0, fresh_database())
    streamed, alone = sync(streamed_settings), sync(alone_settings)
    assert lost  # the process died with chunks still to come
    assert streamed.errors == alone.errors == []
    assert (streamed.lines, streamed.rows) == (alone.lines, alone.rows)
    expected = snapshot(alone_settings.database_url)
    actual = snapshot(streamed_settings.database_url)
    assert actual == expected, diff(actual, expected)


def test_small_passes_are_read_in_process_and_big_files_streamed(tmp_path: Path) -> None:
    home = tmp_path / "codex-home"
    small = Rollout().context().user("hi").assistant("hello").write(home)
    with readahead.ReadAhead(
        [(str(small), 100)], workers=1, batch_bytes=1024, max_line_bytes=1024
    ) as ahead:
        assert ahead.take(str(small)) is None  # 100 bytes: not worth a process
    big = str(home / "big.jsonl")
    files = [(str(small), 100), (big, readahead.MIN_PASS_BYTES)]
    with readahead.ReadAhead(files, workers=1, batch_bytes=1024, max_line_bytes=1024) as ahead:
        chunks = ahead.take(str(small))
        assert isinstance(chunks, list)
        assert chunks[-1].final
        assert isinstance(ahead.take(big), readahead.ChunkStream)  # too big to hold whole
    with readahead.ReadAhead(files, workers=0, batch_bytes=1024, max_line_bytes=1024) as ahead:
        assert ahead.take(big) is None  # no workers: read in process


def test_the_installed_command_imports_its_command_line_only_when_it_runs() -> None:
    """A spawned worker runs the parent's main script again before it reads anything: the
    ``sessionbase`` script's module must not pull in click, rich and every command."""
    (script,) = entry_points(group="console_scripts", name="sessionbase")
    heavy = ("click", "rich", "sessionbase.cli")
    probe = f"import sys, {script.module}; print([m for m in {heavy!r} if m in sys.modules])"
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "[]"
