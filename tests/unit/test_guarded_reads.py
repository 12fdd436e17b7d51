"""Every file sessionbase reads goes through one guarded open: special files are refused
without blocking, whole-file reads are bounded. Real FIFOs, sockets, /dev/zero and big files."""

from __future__ import annotations

import os
import re
import socket
from collections.abc import Iterator
from pathlib import Path

import orjson
import pytest

from sessionbase import config
from sessionbase.codex.skills import (
    FRONTMATTER_BEYOND_LIMIT,
    MAX_SKILL_FILE_BYTES,
    Skill,
    SkillProblem,
    SkillRoot,
    parse_skill_file,
    skill_roots,
)
from sessionbase.config import Settings
from sessionbase.errors import ConfigError
from sessionbase.files import FileTooLarge, NotRegularFile, open_regular, read_head, read_limited
from sessionbase.ingest.mirror import MAX_INDEX_BYTES, Mirror
from tests.builders.codex import Rollout
from tests.conftest import Cli

pytestmark = pytest.mark.timeout(60)  # a blocking open would hang: fail instead


@pytest.fixture
def fifo(tmp_path: Path) -> Path:
    path = tmp_path / "pipe"
    os.mkfifo(path)
    return path


@pytest.fixture
def unix_socket(tmp_path: Path) -> Iterator[Path]:
    path = tmp_path / "sock"
    with socket.socket(socket.AF_UNIX) as sock:
        sock.bind(str(path))
        yield path


def test_special_files_are_refused_with_what_they_are(
    tmp_path: Path, fifo: Path, unix_socket: Path
) -> None:
    link_to_zero = tmp_path / "zero"
    link_to_zero.symlink_to("/dev/zero")
    link_to_fifo = tmp_path / "link-to-pipe"
    link_to_fifo.symlink_to(fifo)
    cases = {
        fifo: "not a regular file (a FIFO)",
        link_to_fifo: "not a regular file (a FIFO)",
        link_to_zero: "not a regular file (a character device)",
        unix_socket: "not a regular file (a socket)",
    }
    for path, reason in cases.items():
        with pytest.raises(NotRegularFile) as caught:
            open_regular(path)
        assert str(caught.value) == reason
        assert isinstance(caught.value, OSError)
    with pytest.raises(IsADirectoryError):
        open_regular(tmp_path)


def test_whole_file_reads_are_bounded(tmp_path: Path) -> None:
    big = tmp_path / "big"
    big.write_bytes(b"x" * 5000)
    assert read_head(big, 100) == (b"x" * 100, True)
    assert read_head(big, 5000) == (b"x" * 5000, False)
    with pytest.raises(FileTooLarge, match="larger than 4 KiB"):
        read_limited(big, 4096)
    assert read_limited(big, 5000) == b"x" * 5000


@pytest.mark.parametrize("kind", ["fifo", "dev-zero", "huge"])
def test_the_config_file_is_read_through_the_guard(tmp_path: Path, fifo: Path, kind: str) -> None:
    path = tmp_path / "sessionbase.toml"
    if kind == "fifo":
        path = fifo
        expected = "not a regular file (a FIFO)"
    elif kind == "dev-zero":
        path.symlink_to("/dev/zero")
        expected = "not a regular file (a character device)"
    else:
        path.write_bytes(b"# " + b"x" * config.MAX_CONFIG_BYTES + b"\n")
        expected = "larger than 1 MiB"
    with pytest.raises(ConfigError, match=re.escape(f"cannot read config file {path}: {expected}")):
        config.load(environ={}, config_file=path)


def test_a_config_file_that_is_not_utf8_is_a_config_error(tmp_path: Path) -> None:
    path = tmp_path / "sessionbase.toml"
    path.write_bytes(b"machine = '\xff'\n")
    with pytest.raises(ConfigError, match="is not UTF-8 text"):
        config.load(environ={}, config_file=path)


def test_a_huge_skill_file_is_read_only_as_far_as_its_frontmatter(tmp_path: Path) -> None:
    root = SkillRoot("user", tmp_path / "skills")
    big = tmp_path / "skills" / "big" / "SKILL.md"
    big.parent.mkdir(parents=True)
    body = b"words " * (MAX_SKILL_FILE_BYTES // 3)
    big.write_bytes(b"---\nname: big\ndescription: a long body\n---\n" + body)
    found = parse_skill_file(big, root)
    assert isinstance(found, Skill)
    assert (found.name, found.description) == ("big", "a long body")

    endless = tmp_path / "skills" / "endless" / "SKILL.md"
    endless.parent.mkdir(parents=True)
    endless.write_bytes(b"---\nname: endless\n" + b"description: x\n" * MAX_SKILL_FILE_BYTES)
    problem = parse_skill_file(endless, root)
    assert isinstance(problem, SkillProblem)
    assert problem.reason == FRONTMATTER_BEYOND_LIMIT


def test_a_fifo_as_a_plugin_manifest_does_not_block(tmp_path: Path, fifo: Path) -> None:
    version = tmp_path / "codex-home" / "plugins" / "cache" / "market" / "tool" / "1.0"
    (version / ".codex-plugin").mkdir(parents=True)
    (version / ".codex-plugin" / "plugin.json").symlink_to(fifo)
    roots = skill_roots(tmp_path / "codex-home", tmp_path, [])
    assert SkillRoot("user", version / "skills", plugin="tool") in roots  # the folder's name


@pytest.mark.parametrize("kind", ["fifo", "dev-zero", "huge"])
def test_a_session_index_that_cannot_be_read_is_reported_and_skipped(
    codex_home: Path, settings: Settings, run_cli: Cli, fifo: Path, kind: str
) -> None:
    r = Rollout()
    r.user("still mirrored")
    r.write(codex_home)
    index = codex_home / "session_index.jsonl"
    if kind == "fifo":
        os.mkfifo(index)
        reason = "not a regular file (a FIFO)"
    elif kind == "dev-zero":
        index.symlink_to("/dev/zero")
        reason = "not a regular file (a character device)"
    else:
        entry = orjson.dumps({"id": r.thread_id, "thread_name": "never read"}) + b"\n"
        with index.open("wb") as fh:
            fh.write(entry)
            fh.truncate(MAX_INDEX_BYTES + 1)  # sparse: big on paper only
        reason = "larger than 64 MiB"
    with Mirror(settings) as mirror:
        report = mirror.sync()
    problem = {"path": str(index), "reason": reason}
    assert [{"path": p.path, "reason": p.reason} for p in report.unreadable] == [problem]
    assert report.statuses == {"ingested": 1}
    status = run_cli.json("status")
    assert status["unreadable"] == [problem]
    assert status["threads"] == 1
    assert f"cannot read: {index}: {reason} (skipped)" in run_cli("backfill", "--no-embed")


def test_the_session_index_is_streamed_entry_by_entry(
    codex_home: Path, settings: Settings, run_cli: Cli
) -> None:
    r = Rollout()
    r.user("to be renamed")
    r.write(codex_home)
    index = codex_home / "session_index.jsonl"
    with index.open("wb") as fh:
        fh.write(b'{"id": "' + b"x" * 100_000 + b'"}\n')  # one oversized entry, skipped
        fh.write(b"not json\n")
        fh.write(orjson.dumps({"id": r.thread_id, "thread_name": "Renamed"}) + b"\n")
        fh.write(b'{"id": "unfinished')  # still being written
    with Mirror(settings) as mirror:
        assert mirror.sync().unreadable == []
    (thread,) = run_cli.json("threads")
    assert (thread["title"], thread["title_source"]) == ("Renamed", "index")
