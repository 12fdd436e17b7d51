"""Hostile and broken input: counted, quarantined, reported; never fatal, never a hang.

Each case checks what ``sessionbase status --json`` says (skipped lines by reason, errors) and
that the good lines around the bad ones all arrive. Every case runs on SQLite and on PostgreSQL.
"""

from __future__ import annotations

import os
import random
import tracemalloc
from collections.abc import Callable
from pathlib import Path

import orjson
import pytest
import zstandard

from sessionbase.codex.paths import NOT_FOLLOWED
from sessionbase.config import Settings
from sessionbase.ingest import reader
from sessionbase.ingest.mirror import Mirror, SyncReport
from sessionbase.store import open_store
from tests.builders.codex import Rollout
from tests.conftest import Cli
from tests.support.db_snapshot import diff, snapshot

TS = "2026-05-01T10:30:00.000Z"


@pytest.fixture
def settings(backend_settings: Settings) -> Settings:
    """Every test of this module runs on SQLite and on PostgreSQL."""
    return backend_settings


def sync(settings: Settings) -> SyncReport:
    with Mirror(settings) as mirror:
        return mirror.sync()


def with_settings(settings: Settings, **changes: object) -> Settings:
    return settings.with_overrides(**changes)


def good(n: int) -> bytes:
    """A user message line whose text is ``good n``."""
    return orjson.dumps(
        {
            "timestamp": TS,
            "type": "event_msg",
            "payload": {"type": "user_message", "message": f"good {n}", "images": []},
        }
    )


def user_texts(settings: Settings, thread_id: str) -> list[str]:
    store = open_store(settings.database_url, readonly=True)
    try:
        return [m["text"] for m in store.messages(thread_id) if m["role"] == "user"]
    finally:
        store.close()


def quarantine(settings: Settings) -> list[tuple[str, int, bytes]]:
    rows = [dict(row) for row in snapshot(settings.database_url, ["quarantine"])["quarantine"]]
    rows.sort(key=lambda r: (r["offset"], r["path"]))
    return [(r["reason"], r["offset"], bytes(r["raw"])) for r in rows]


def write(path: Path, lines: list[bytes]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"".join(line + b"\n" for line in lines))
    return path


def random_garbage(rng: random.Random, count: int) -> list[bytes]:
    """Lines of random bytes: no newline, and never only whitespace (that is a blank line)."""
    out = []
    for _ in range(count):
        raw = rng.randbytes(rng.randint(20, 400)).replace(b"\n", b"\x00")
        out.append(b"\xff" + raw)
    return out


# ---------------------------------------------------------------- bad lines


def test_bad_lines_are_counted_and_the_good_ones_around_them_arrive(
    codex_home: Path, settings: Settings, run_cli: Cli
) -> None:
    r = Rollout(write_meta=False)
    meta = Rollout(r.thread_id).lines[0]
    garbage = random_garbage(random.Random(20260501), 10)
    bad: list[tuple[str | None, bytes]] = [
        *[("not_json", g) for g in garbage],
        ("not_json", b'{"timestamp":"' + TS.encode() + b'","type":"event_msg","payload":{"ty'),
        (
            "not_json",
            b'{"type":"event_msg","payload":{"type":"user_message","message":"\xff\xfe"}}',
        ),
        ("not_json", b'{"type":"event_msg","payload":{"type":"user_message","message":"\\ud800"}}'),
        ("not_json", b"[" * 100_000 + b"]" * 100_000),
        ("not_json", b"{" * 100_000),
        ("not_object", b"[1, 2, 3]"),
        ("not_object", b"42"),
        ("not_object", b'"a string"'),
        ("not_object", b"null"),
        ("bad_envelope", b'{"timestamp":"' + TS.encode() + b'","type":5,"payload":{}}'),
        ("bad_envelope", b'{"timestamp":"' + TS.encode() + b'","payload":{"type":"x"}}'),
        (None, b""),
        (None, b"   \t  "),
        (None, b"\r"),
    ]
    lines = [b'["a JSON array before anything else"]', meta]
    expected_texts = []
    for n, (_, line) in enumerate(bad):
        lines += [good(n), line]
        expected_texts.append(f"good {n}")
    lines.append(good(len(bad)) + b"\r")  # a CRLF line ending on a good line
    expected_texts.append(f"good {len(bad)}")
    path = write(r.path_in(codex_home), lines)

    report = sync(settings)
    assert report.errors == []
    expected_skips = {"not_json": 15, "not_object": 5, "bad_envelope": 2}
    assert dict(report.skipped) == expected_skips
    assert user_texts(settings, r.thread_id) == expected_texts

    status = run_cli.json("status")
    assert status["skipped_lines"] == expected_skips
    assert status["errors"] == []
    assert status["files_by_status"] == {"ok": 1}
    assert status["bytes_ingested"] == status["bytes_total"] == path.stat().st_size

    held = quarantine(settings)
    assert [reason for reason, _, _ in held] == ["not_object"] + [
        reason for reason, _ in bad if reason is not None
    ]
    # Each quarantined line is found at its offset, at most its first 4 KiB.
    data = path.read_bytes()
    for _, offset, raw in held:
        assert data[offset : offset + len(raw)] == raw
        assert len(raw) <= reader.QUARANTINE_RAW
    assert sync(settings).statuses == {"unchanged": 1}


def test_envelope_with_a_non_object_payload_is_kept_raw_and_counted(
    codex_home: Path, settings: Settings, run_cli: Cli
) -> None:
    r = Rollout()
    r.user("before", item=False)
    for kind, payload in [
        ("event_msg", "a bare string"),
        ("response_item", [1, 2, 3]),
        ("event_msg", None),
        ("session_meta", 7),
    ]:
        r.line(kind, payload)
    r.user("after", item=False)
    r.write(codex_home)

    report = sync(settings)
    assert report.errors == []
    assert user_texts(settings, r.thread_id) == ["before", "after"]
    status = run_cli.json("status")
    assert status["skipped_lines"] == {}
    assert status["errors"] == []
    assert status["unknown_types"] == {"event_msg.None": 2, "response_item.None": 1}
    extras = [orjson.loads(dict(row)["raw"]) for row in snapshot(settings.database_url)["extras"]]
    assert sorted(orjson.dumps(e["payload"]) for e in extras) == sorted(
        [b'{"value":"a bare string"}', b'{"value":[1,2,3]}', b'{"value":null}']
    )


def test_unrecognized_first_object_does_not_condemn_the_file(
    codex_home: Path, settings: Settings, run_cli: Cli
) -> None:
    r = Rollout(write_meta=False)
    r.raw(b'{"hello": "not a rollout line"}')
    r.lines.append(Rollout(r.thread_id).lines[0])
    r.user("first question", item=False)
    r.assistant("first answer", item=False)
    r.write(codex_home)

    sync(settings)
    assert user_texts(settings, r.thread_id) == ["first question"]
    status = run_cli.json("status")
    assert status["skipped_lines"] == {"unknown_format": 1}
    assert status["threads"] == 1
    assert status["messages"] == 2


@pytest.mark.parametrize("content", [b"", b"\n\n   \n\t\n"], ids=["empty", "blank-lines"])
def test_empty_and_blank_files(
    tmp_path: Path,
    codex_home: Path,
    settings: Settings,
    run_cli: Cli,
    content: bytes,
    fresh_database: Callable[[], str],
) -> None:
    r = Rollout()
    r.user("arrives later", item=False)
    path = r.path_in(codex_home)
    path.parent.mkdir(parents=True)
    path.write_bytes(content)

    report = sync(settings)
    assert report.errors == []
    status = run_cli.json("status")
    assert status["skipped_lines"] == {}
    assert status["errors"] == []
    assert status["rows"] == 0
    assert status["bytes_ingested"] == len(content)

    # Codex then writes the real content after the blank lines: nothing is lost or doubled.
    with path.open("ab") as fh:
        fh.write(r.to_bytes())
    sync(settings)
    assert user_texts(settings, r.thread_id) == ["arrives later"]
    fresh = with_settings(settings, data_dir=tmp_path / "fresh", database=fresh_database())
    sync(fresh)
    assert snapshot(settings.database_url) == snapshot(fresh.database_url), diff(
        snapshot(settings.database_url), snapshot(fresh.database_url)
    )


# ---------------------------------------------------------------- deep nesting


def test_nesting_beyond_the_parser_limit_is_not_json(
    codex_home: Path, settings: Settings, run_cli: Cli
) -> None:
    r = Rollout()
    r.user("before", item=False)
    r.raw(b'{"timestamp":"' + TS.encode() + b'","type":"event_msg","payload":' + b"[" * 100_000)
    r.raw(b"[" * 100_000 + b"]" * 100_000)
    r.raw(b'{"a":' * 5000 + b"1" + b"}" * 5000)
    r.user("after", item=False)
    r.write(codex_home)

    report = sync(settings)
    assert report.errors == []
    assert user_texts(settings, r.thread_id) == ["before", "after"]
    assert run_cli.json("status")["skipped_lines"] == {"not_json": 3}


def _nested(depth: int) -> bytes:
    return b"[" * depth + b"]" * depth


@pytest.mark.parametrize("padding", [0, 64 * 1024], ids=["short line", "long line"])
def test_nesting_deeper_than_codex_writes_is_skipped(
    codex_home: Path, settings: Settings, run_cli: Cli, padding: int
) -> None:
    # Brackets inside a string nest nothing, however many there are.
    pad = b'"' + b"[{" * (padding // 2) + b'"'
    r = Rollout()
    r.user("before", item=False)
    for depth in (200, 100):
        r.raw(
            b'{"timestamp":"' + TS.encode() + b'","type":"weird","payload":{"pad":' + pad
            + b',"x":' + _nested(depth) + b"}}"
        )  # fmt: skip
    r.user("after", item=False)
    r.write(codex_home)

    sync(settings)
    assert user_texts(settings, r.thread_id) == ["before", "after"]
    assert run_cli.json("status")["skipped_lines"] == {"too_deep": 1}


# Valid JSON that orjson parses (depth <= 1024) but cannot serialize again (depth > 255).
DEEP_BUT_PARSEABLE: dict[str, Callable[[str], bytes]] = {
    "unknown line type": lambda tid: (
        b'{"timestamp":"' + TS.encode() + b'","type":"weird","payload":{"x":'
        + _nested(300) + b"}}"
    ),
    "session_meta source": lambda tid: (
        b'{"timestamp":"' + TS.encode() + b'","type":"session_meta","payload":{"id":"'
        + tid.encode() + b'","source":{"custom":"x","deep":' + _nested(300) + b"}}}"
    ),
    "error event info": lambda tid: (
        b'{"timestamp":"' + TS.encode() + b'","type":"event_msg","payload":{"type":"error",'
        b'"message":"boom","codex_error_info":' + _nested(300) + b"}}"
    ),
}  # fmt: skip


@pytest.mark.parametrize("case", list(DEEP_BUT_PARSEABLE))
def test_nesting_deeper_than_the_serializer_limit_is_not_fatal(
    codex_home: Path, settings: Settings, case: str
) -> None:
    r = Rollout(write_meta=case != "session_meta source")
    r.raw(DEEP_BUT_PARSEABLE[case](r.thread_id))
    r.user("after", item=False)
    r.write(codex_home)
    other = Rollout()
    other.user("another file", item=False)
    other.write(codex_home)

    report = sync(settings)
    assert user_texts(settings, other.thread_id) == ["another file"]
    assert user_texts(settings, r.thread_id) == ["after"]
    assert report.statuses["ingested"] == 2


# ---------------------------------------------------------------- huge lines

HUGE = 50 * 1024 * 1024


def _traced_peak(settings: Settings) -> tuple[SyncReport, int]:
    tracemalloc.start()
    try:
        report = sync(settings)
        return report, tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def _parse_peak(line: bytes) -> int:
    """What orjson alone needs to parse ``line`` (it allocates several times the input)."""
    tracemalloc.start()
    try:
        orjson.loads(line)
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def _huge_rollout(codex_home: Path, kind: str) -> tuple[Rollout, bytes]:
    r = Rollout()
    r.user("before", item=False)
    if kind == "json":
        r.user("Z" * HUGE, item=False)
    else:
        r.raw(b"{\x00\xff" + b"garbage!" * (HUGE // 8))
    r.user("after", item=False)
    huge = r.lines[-2]
    r.write(codex_home)
    return r, huge


@pytest.mark.parametrize("kind", ["json", "garbage"])
def test_huge_line_over_the_limit_is_skipped_in_bounded_memory(
    codex_home: Path, settings: Settings, run_cli: Cli, kind: str
) -> None:
    small = with_settings(settings, max_line_bytes=1024 * 1024)
    r, huge = _huge_rollout(codex_home, kind)

    report, peak = _traced_peak(small)
    assert peak < 16 * 1024 * 1024, f"peak {peak / 1e6:.0f} MB for a {len(huge) / 1e6:.0f} MB line"
    assert report.errors == []
    assert user_texts(small, r.thread_id) == ["before", "after"]
    assert run_cli.json("status")["skipped_lines"] == {"oversized": 1}
    ((reason, _, raw),) = quarantine(small)
    assert reason == "oversized"
    assert raw == huge[: reader.QUARANTINE_RAW]


def test_huge_valid_line_under_the_limit_is_ingested(
    codex_home: Path, settings: Settings, run_cli: Cli
) -> None:
    assert settings.max_line_bytes > HUGE
    r, huge = _huge_rollout(codex_home, "json")
    parse_peak = _parse_peak(huge)

    report, peak = _traced_peak(settings)
    # Beyond what the parser itself needs, at most a few copies of the line.
    assert peak < parse_peak + 4 * len(huge), (
        f"peak {peak / 1e6:.0f} MB; parsing alone {parse_peak / 1e6:.0f} MB"
    )
    assert report.errors == []
    texts = user_texts(settings, r.thread_id)
    assert [len(t) for t in texts] == [len("before"), HUGE, len("after")]
    assert texts[1] == "Z" * HUGE
    status = run_cli.json("status")
    assert status["skipped_lines"] == {}
    assert status["rows"] == 3


def test_huge_garbage_line_under_the_limit_is_not_json(
    codex_home: Path, settings: Settings, run_cli: Cli
) -> None:
    r, huge = _huge_rollout(codex_home, "garbage")
    report, peak = _traced_peak(settings)
    assert peak < 4 * len(huge), f"peak {peak / 1e6:.0f} MB for a {len(huge) / 1e6:.0f} MB line"
    assert user_texts(settings, r.thread_id) == ["before", "after"]
    assert run_cli.json("status")["skipped_lines"] == {"not_json": 1}
    ((reason, _, raw),) = quarantine(settings)
    assert (reason, raw) == ("not_json", huge[: reader.QUARANTINE_RAW])


def test_oversized_is_judged_by_length_not_by_where_reads_fall(
    tmp_path: Path, codex_home: Path, settings: Settings, fresh_database: Callable[[], str]
) -> None:
    limit = 1000
    small = with_settings(settings, max_line_bytes=limit)
    r = Rollout()
    filler = 0
    # Long lines (3000 bytes of text) at many positions, one straddling each read boundary.
    size = len(r.to_bytes())
    long_lines = 0
    while size < 2 * reader.READ_CHUNK + 20_000:
        before = len(r.lines)
        boundary = (size // reader.READ_CHUNK + 1) * reader.READ_CHUNK
        if 0 < boundary - size < 2500 and long_lines % 2 == 0:
            r.user("L" * 3000, item=False)
            long_lines += 1
        elif filler % 97 == 0:
            r.user("L" * 3000, item=False)
            long_lines += 1
        else:
            r.user(f"short {filler}", item=False)
        filler += 1
        size += sum(len(line) + 1 for line in r.lines[before:])
    path = r.write(codex_home)

    report = sync(small)
    assert report.skipped == {"oversized": long_lines}
    assert all(t != "L" * 3000 for t in user_texts(small, r.thread_id))

    # Delivered in pieces, the same lines are oversized and the rows are the same.
    data = path.read_bytes()
    pieces = with_settings(small, data_dir=tmp_path / "pieces", database=fresh_database())
    rng = random.Random(7)
    cuts = sorted(rng.sample(range(1, len(data)), 12))
    path.write_bytes(b"")
    for cut in [*cuts, len(data)]:
        with path.open("r+b") as fh:
            fh.seek(0, os.SEEK_END)
            fh.write(data[fh.tell() : cut])
        sync(pieces)
    mtime = [("sources", "mtime_ns")]  # the file was rewritten piece by piece
    chunked = snapshot(pieces.database_url, ignore=mtime)
    one_shot = snapshot(small.database_url, ignore=mtime)
    assert chunked == one_shot, diff(chunked, one_shot)


# ---------------------------------------------------------------- hostile files


def test_symlink_loops_in_sessions(codex_home: Path, settings: Settings, run_cli: Cli) -> None:
    r = Rollout()
    r.user("only once", item=False)
    path = r.write(codex_home)
    day = path.parent
    (day / "loop-to-sessions").symlink_to(codex_home / "sessions", target_is_directory=True)
    (day / "loop-to-self").symlink_to(day / "loop-to-self")
    (codex_home / "sessions" / "a").symlink_to(codex_home / "sessions" / "b")
    (codex_home / "sessions" / "b").symlink_to(codex_home / "sessions" / "a")

    report = sync(settings)
    assert report.files_seen == 1
    assert report.statuses == {"ingested": 1}
    assert report.errors == []
    status = run_cli.json("status")
    assert status["files"] == 1
    assert status["threads"] == 1
    assert user_texts(settings, r.thread_id) == ["only once"]


def test_symlinked_rollouts_are_listed_not_followed(
    tmp_path: Path, codex_home: Path, settings: Settings, run_cli: Cli
) -> None:
    """Below sessions/, as in Codex's own listing, a symlink is never followed: not one to
    itself, nor one to a rollout elsewhere. Each is listed in ``status`` with the reason."""
    good_rollout = Rollout()
    good_rollout.user("fine", item=False)
    good_rollout.write(codex_home)
    looped = Rollout().path_in(codex_home)
    looped.symlink_to(looped)
    elsewhere = Rollout()
    elsewhere.user("kept outside the home", item=False)
    outside = elsewhere.write(tmp_path / "outside")
    linked = elsewhere.path_in(codex_home).with_name("rollout-linked-" + elsewhere.file_name())
    linked.symlink_to(outside)

    report = sync(settings)
    assert report.statuses == {"ingested": 1}
    assert report.errors == []
    assert {p.path for p in report.unrecognized} == {str(looped), str(linked)}
    assert user_texts(settings, good_rollout.thread_id) == ["fine"]
    assert user_texts(settings, elsewhere.thread_id) == []
    status = run_cli.json("status")
    assert status["files_by_status"] == {"ok": 1}
    assert status["unrecognized"] == [
        {"path": str(path), "reason": NOT_FOLLOWED} for path in sorted([looped, linked])
    ]
    with Mirror(settings) as mirror:
        assert mirror.ingest_paths([looped, linked]) == []  # a watch event changes nothing
    assert sync(settings).statuses == {"unchanged": 1}


@pytest.mark.timeout(30)
def test_fifo_named_like_a_rollout_does_not_hang(
    codex_home: Path, settings: Settings, run_cli: Cli
) -> None:
    good_rollout = Rollout()
    good_rollout.user("fine", item=False)
    good_rollout.write(codex_home)
    fifo = Rollout().path_in(codex_home)
    os.mkfifo(fifo)

    report = sync(settings)
    assert report.statuses == {"ingested": 1, "error": 1}
    assert report.errors == [{"path": str(fifo), "error": "not a regular file"}]
    with Mirror(settings) as mirror:
        (watched,) = mirror.ingest_paths([fifo])
    assert (watched.status, watched.error) == ("error", "not a regular file")
    status = run_cli.json("status")
    assert status["errors"] == [
        {"path": str(fifo), "status": "error", "error": "not a regular file"}
    ]
    assert user_texts(settings, good_rollout.thread_id) == ["fine"]


def test_directory_named_like_a_rollout(codex_home: Path, settings: Settings, run_cli: Cli) -> None:
    inner = Rollout()
    inner.user("inside the odd directory", item=False)
    odd = Rollout().path_in(codex_home)
    odd.mkdir(parents=True)
    inner_path = odd / inner.file_name()
    inner_path.write_bytes(inner.to_bytes())

    # A scan descends into it like any directory.
    report = sync(settings)
    assert report.statuses == {"ingested": 1}
    assert user_texts(settings, inner.thread_id) == ["inside the odd directory"]
    # A watch event naming it is reported, not raised.
    with Mirror(settings) as mirror:
        (watched,) = mirror.ingest_paths([odd])
    assert (watched.status, watched.error) == ("error", "not a regular file")
    assert run_cli.json("status")["errors"] == [
        {"path": str(odd), "status": "error", "error": "not a regular file"}
    ]


def test_corrupt_zst_is_an_error_and_a_truncated_one_resumes(
    tmp_path: Path,
    codex_home: Path,
    settings: Settings,
    run_cli: Cli,
    fresh_database: Callable[[], str],
) -> None:
    corrupt = Rollout()
    corrupt_path = corrupt.path_in(codex_home).with_suffix(".jsonl.zst")
    corrupt_path.parent.mkdir(parents=True)
    corrupt_path.write_bytes(b"\x28\xb5\x2f\xfd" + random.Random(3).randbytes(4000))
    not_zstd = Rollout(start=corrupt.start.replace(hour=11))
    not_zstd_path = not_zstd.path_in(codex_home).with_suffix(".jsonl.zst")
    not_zstd_path.write_bytes(not_zstd.to_bytes())  # plain text under a .zst name

    partial = Rollout(start=corrupt.start.replace(hour=12))
    for n in range(3000):
        partial.user(f"question {n} {random.Random(n).randbytes(60).hex()}", item=False)
    packed = zstandard.ZstdCompressor(level=1, write_content_size=False).compress(
        partial.to_bytes()
    )
    partial_path = partial.path_in(codex_home).with_suffix(".jsonl.zst")
    partial_path.write_bytes(packed[: len(packed) * 2 // 3])

    report = sync(settings)
    assert report.statuses == {"error": 2, "ingested": 1}
    errors = {e["path"]: e["error"] for e in run_cli.json("status")["errors"]}
    assert set(errors) == {str(corrupt_path), str(not_zstd_path)}
    assert all(e.startswith("cannot decompress: ") for e in errors.values())
    got = len(user_texts(settings, partial.thread_id))
    assert 0 < got < 3000

    partial_path.write_bytes(packed)
    sync(settings)
    assert len(user_texts(settings, partial.thread_id)) == 3000
    fresh = with_settings(settings, data_dir=tmp_path / "fresh", database=fresh_database())
    sync(fresh)
    tables = ("messages", "threads", "extras")
    assert snapshot(settings.database_url, tables) == snapshot(fresh.database_url, tables)
