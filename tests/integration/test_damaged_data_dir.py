"""Real processes on a data dir that cannot be written, or whose database is damaged.

Read commands work in a read-only data dir (the README promises it); the commands that must
write say so in one line. A damaged table reached by a running server is a 503 with the
documented error body, on the JSON routes and Convex HTTP alike, and no traceback is logged.
"""

from __future__ import annotations

import os
import subprocess
import sys
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import orjson
import pytest

from tests.builders.codex import Rollout
from tests.support.damage import (
    make_read_only,
    make_writable,
    overwrite_pages,
    table_pages,
    without_write_access,
)
from tests.support.server import ServerProcess, free_port

pytestmark = pytest.mark.integration

SESSIONBASE = [sys.executable, "-c", "from sessionbase.cli import main; main()"]


def run(*args: str, read_only: bool = False) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("SESSIONBASE_")}
    command = [*SESSIONBASE, *args]
    return subprocess.run(
        without_write_access(command) if read_only else command,
        capture_output=True,
        text=True,
        timeout=120,
        env=clean,
    )


def assert_one_line_error(result: subprocess.CompletedProcess[str], *words: str) -> None:
    output = result.stdout + result.stderr
    assert result.returncode != 0, output
    assert "Traceback" not in output, output
    errors = [line for line in output.splitlines() if line.startswith("Error:")]
    assert len(errors) == 1, output
    for word in words:
        assert word in errors[0], output


def post(url: str, body: dict[str, Any]) -> tuple[int, Any]:
    request = urllib.request.Request(
        url, data=orjson.dumps(body), headers={"Content-Type": "application/json"}
    )
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, orjson.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, orjson.loads(exc.read())


@pytest.fixture
def rollout(codex_home: Path) -> Rollout:
    r = Rollout()
    r.user("Why does the deploy time out?")
    r.assistant("A lock is never released, so the second deploy waits forever.")
    r.write(codex_home)
    return r


def test_read_commands_work_in_a_read_only_data_dir_and_writers_say_why_not(
    codex_home: Path, rollout: Rollout, tmp_path: Path
) -> None:
    data = tmp_path / "data"
    where = ("--data-dir", str(data), "--codex-home", str(codex_home))
    assert run(*where, "backfill").returncode == 0  # with embeddings
    before = sorted(p.name for p in data.iterdir())
    make_read_only(data)
    try:
        threads = run(*where, "threads", "--json", read_only=True)
        assert threads.returncode == 0, threads.stderr
        assert [t["id"] for t in orjson.loads(threads.stdout)] == [rollout.thread_id]
        reads = {
            ("show", rollout.thread_id[:8]): "A lock is never released",
            ("status",): "threads      1",
            ("search", "deploy"): "deploy",
            ("search", "a mutex nobody frees", "--mode", "semantic"): rollout.thread_id[:8],
            ("projects",): "project",
            ("skills",): "",
            ("doctor",): "is read-only to you: read commands work",
        }
        for args, expected in reads.items():
            result = run(*where, *args, read_only=True)
            output = result.stdout + result.stderr
            assert result.returncode == 0, f"{args}: {output}"
            assert "Traceback" not in output, f"{args}: {output}"
            assert expected in result.stdout, f"{args}: {output}"
        for args in (("backfill",), ("serve", "--port", str(free_port()))):
            refused = run(*where, *args, read_only=True)
            assert_one_line_error(refused, "backfill and serve need to write", "--data-dir")
    finally:
        make_writable(data)
    assert sorted(p.name for p in data.iterdir()) == before


def test_a_damaged_table_is_a_503_with_the_error_body_and_no_traceback(
    codex_home: Path, rollout: Rollout, tmp_path: Path
) -> None:
    data = tmp_path / "data"
    with ServerProcess(data, codex_home) as server:
        server.wait_semantic()  # the background embedder has caught up and is idle
        overwrite_pages(data / "sessionbase.db", table_pages(data / "sessionbase.db", "threads"))
        status, body = post(f"{server.url}/v1/query/threads:get", {"id": rollout.thread_id})
        assert status == 503, body
        assert body["error"]["code"] == "unavailable"
        assert "is damaged" in body["error"]["message"]
        assert "sessionbase doctor --repair" in body["error"]["message"]
        status, convex = post(
            f"{server.url}/api/query",
            {"path": "threads:get", "args": {"id": rollout.thread_id}, "format": "json"},
        )
        assert status == 503, convex
        assert convex["status"] == "error"
        assert "is damaged" in convex["errorMessage"]
        log = server.log()
    assert "Traceback" not in log, log
