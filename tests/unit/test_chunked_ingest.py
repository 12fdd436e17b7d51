"""Property: a rollout delivered in arbitrary pieces ingests to exactly the rows of one read.

Codex appends to a rollout while sessionbase reads it, so a pass can end anywhere: mid-line, in
the middle of a multi-byte UTF-8 sequence, right before a newline. Whatever the pieces, the
batch size, whether each pass is a watch event or a full sync, and whether the mirror was
restarted in between, the final database must equal a one-shot ingest of the whole file, row
for row (messages with their data, threads, projects, extras, sources, quarantine), on SQLite
and on PostgreSQL.
"""

from __future__ import annotations

import functools
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import orjson
import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from sessionbase import config
from sessionbase.config import Settings
from sessionbase.ingest.mirror import Mirror
from tests.builders.codex import Rollout
from tests.conftest import CORPUS
from tests.support.db_snapshot import diff, snapshot

CORPUS_FILES = sorted(CORPUS.glob("*/*.jsonl")) if CORPUS.is_dir() else []
DEFAULT_BATCH = 8 * 1024 * 1024
Databases = Callable[[], tuple[str, str]]


@pytest.fixture
def databases(backend: str, request: pytest.FixtureRequest) -> Databases:
    """Factory: the (pieces, whole) databases of the backend under test, empty at each call
    (each example of a property). SQLite's are the files of two fresh data dirs ("")."""
    if backend == "sqlite":
        return lambda: ("", "")
    pg = request.getfixturevalue("pg_databases")
    fresh = request.getfixturevalue("fresh_database")
    pair = (fresh(), fresh())

    def emptied() -> tuple[str, str]:
        for url in pair:
            pg.empty(url)
        return pair

    return emptied


def _unicode_rollout() -> bytes:
    """Text in many scripts and emoji, tool calls, a rename, an unknown event, a bad line."""
    r = Rollout(cwd="/home/dev/プロジェクト")
    texts = [
        "Fix the 🐛 in the parser — it breaks on naïve café input",
        "修复这个错误：编码问题 🚀🚀",
        "Привет! Почему тест падает? ½ ∑ ∞ ≠ ≤",
        "👨‍👩‍👧‍👦 family emoji, flags 🇯🇵🇫🇷, skin tones 👋🏽, ZWJ sequences",
        "مرحبا بالعالم — right-to-left text with עברית too",
        "𝔘𝔫𝔦𝔠𝔬𝔡𝔢 outside the BMP: 𠜎𠜱𠝹𠱓 and 🀄",
    ]
    for n, text in enumerate(texts):
        turn = r.turn()
        r.context("/home/dev/プロジェクト")
        r.user(text)
        r.reasoning(f"**考虑 {n}** — thinking about «{text[:10]}»")
        r.shell(f"rg -n '{text[:6]}' .", f"résultat {n} ✓\n" * 3, exit_code=n % 3)
        if n % 2:
            r.apply_patch(f"src/模块_{n}.py", f"+print('{text[:8]}')")
        r.event({"type": "brand_new_event_kind", "note": text})
        r.assistant(f"Done: {text[::-1]}")
        r.tokens(1000 + 111 * n)
        r.end_turn(turn)
        if n == 2:
            r.rename("Unicode 名前 ✨")
            r.raw("not json, but ütf-8 ✗".encode())
    return r.to_bytes()


def _large_line_rollout() -> bytes:
    """A line longer than one read chunk (1 MiB) between ordinary ones."""
    r = Rollout()
    r.user("small before")
    r.shell("cat big.txt", "é" * 700_000)  # 1.4 MB of two-byte characters in one line
    r.assistant("small after 🎉")
    return r.to_bytes()


def _long_lines_rollout() -> bytes:
    """Over 1 MiB of 3 kB lines, so lines straddle read-chunk boundaries wherever a pass starts."""
    r = Rollout()
    for n in range(420):
        r.user(f"{n} " + "长" * 1000, item=False)
    return r.to_bytes()


BUILT = {
    "unicode": _unicode_rollout(),
    "large-line": _large_line_rollout(),
    "long-lines": _long_lines_rollout(),
}


@dataclass(frozen=True)
class Plan:
    cuts: list[int]  # file sizes after each append (the last is the whole file)
    via_sync: list[bool]  # per pass: full sync, or a watch event for the one path
    reopen: bool  # a fresh Mirror per pass (restarts) instead of one long-lived one
    batch_bytes: int
    max_line_bytes: int


@functools.cache
def _interesting_offsets(data: bytes) -> list[int]:
    """Cut points inside multi-byte UTF-8 sequences and right around newlines."""
    inside = [i for i, b in enumerate(data) if 0x80 <= b < 0xC0]
    around = [j for i, b in enumerate(data) if b == 0x0A for j in (i, i + 1)]
    picked = inside[:: max(1, len(inside) // 500)] + around[:: max(1, len(around) // 500)]
    return sorted({i for i in picked if 0 < i < len(data)})


@st.composite
def plans(draw: st.DrawFn, data: bytes, batch_sizes: list[int]) -> Plan:
    size = len(data)
    special = _interesting_offsets(data)
    cut_point = st.integers(1, size - 1)
    if special:
        cut_point = st.one_of(cut_point, st.sampled_from(special))
    cuts = sorted(set(draw(st.lists(cut_point, max_size=10))) | {size})
    return Plan(
        cuts=cuts,
        via_sync=draw(st.lists(st.booleans(), min_size=len(cuts), max_size=len(cuts))),
        reopen=draw(st.booleans()),
        batch_bytes=draw(st.sampled_from(batch_sizes)),
        max_line_bytes=draw(st.sampled_from([64 * 1024 * 1024, 2000])),
    )


def _settings(root: Path, name: str, plan: Plan, database: str) -> Settings:
    return config.load(
        environ={},
        overrides={
            "data_dir": root / name,
            "codex_homes": (root / "codex-home",),
            "home": root / "user-home",
            "machine": "test-machine",
            "batch_bytes": plan.batch_bytes,
            "max_line_bytes": plan.max_line_bytes,
            "database": database,
        },
    )


def _deliver_in_pieces(data: bytes, name: str, plan: Plan, databases: Databases) -> None:
    in_pieces, at_once = databases()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        path = root / "codex-home" / "sessions" / "2026" / "05" / "01" / name
        path.parent.mkdir(parents=True)
        path.write_bytes(b"")
        pieces = _settings(root, "pieces", plan, in_pieces)
        mirror = Mirror(pieces)
        try:
            written = 0
            for cut, full_sync in zip(plan.cuts, plan.via_sync, strict=True):
                with path.open("ab") as fh:
                    fh.write(data[written:cut])
                written = cut
                if plan.reopen:
                    mirror.close()
                    mirror = Mirror(pieces)
                if full_sync:
                    report = mirror.sync()
                    assert report.errors == []
                else:
                    (file_report,) = mirror.ingest_paths([path])
                    assert file_report.error is None
        finally:
            mirror.close()
        assert path.read_bytes() == data

        whole = _settings(root, "whole", plan, at_once)
        with Mirror(whole) as one_shot:
            assert one_shot.sync().statuses == {"ingested": 1}
        chunked, expected = snapshot(pieces.database_url), snapshot(whole.database_url)
        assert chunked == expected, diff(chunked, expected)
        assert expected["threads"], "the file produced no thread at all"


def _rollout_name(source: Path) -> str:
    return source.name if source.name.startswith("rollout-") else f"rollout-{source.name}"


# The databases fixture is meant to serve every example: each call empties them.
FAST = settings(
    max_examples=25,
    deadline=None,
    database=None,
    print_blob=True,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)


@pytest.mark.skipif(not CORPUS_FILES, reason=f"corpus not found at {CORPUS}")
@FAST
@given(data=st.data())
def test_corpus_file_in_any_pieces_equals_one_read(
    data: st.DataObject, databases: Databases
) -> None:
    source = data.draw(st.sampled_from(CORPUS_FILES), label="file")
    content = source.read_bytes()
    plan = data.draw(plans(content, [DEFAULT_BATCH, 64 * 1024, 4096]), label="plan")
    _deliver_in_pieces(content, _rollout_name(source), plan, databases)


@FAST
@given(data=st.data())
def test_unicode_rollout_in_any_pieces_equals_one_read(
    data: st.DataObject, databases: Databases
) -> None:
    kind = data.draw(st.sampled_from(sorted(BUILT)), label="kind")
    content = BUILT[kind]
    plan = data.draw(plans(content, [DEFAULT_BATCH, 2048, 1]), label="plan")
    thread_id = orjson.loads(content.split(b"\n", 1)[0])["payload"]["id"]
    _deliver_in_pieces(content, f"rollout-2026-05-01T10-00-00-{thread_id}.jsonl", plan, databases)


def test_single_cuts_through_multibyte_characters(databases: Databases) -> None:
    """Cut once inside each multi-byte character of a short line, then complete the file."""
    r = Rollout()
    r.user("é🌍世", item=False)
    r.assistant("✓", item=False)
    content = r.to_bytes()
    line_start = content.index(b"\n") + 1
    cuts = [i for i in _interesting_offsets(content) if i > line_start]
    assert len(cuts) >= 8
    for cut in cuts:
        plan = Plan([cut, len(content)], [False, True], False, DEFAULT_BATCH, 64 * 1024 * 1024)
        _deliver_in_pieces(content, r.file_name(), plan, databases)
