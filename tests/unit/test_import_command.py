"""`sessionbase import` refuses what it cannot mirror with one clear line each, and `status`
names the files under the session folders that are not mirrored, with the reason. The
captures are the corpus's real `codex exec --json` files. On SQLite and on PostgreSQL."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import orjson
import pytest

from sessionbase.cli import cli
from sessionbase.codex.paths import NOT_A_ROLLOUT_NAME
from sessionbase.config import Settings
from sessionbase.ingest.imports import imported_files
from sessionbase.ingest.mirror import Mirror
from tests.builders.codex import Rollout
from tests.conftest import CORPUS, Cli

CAPTURES = CORPUS / "jnarowski__agentcmd"


@pytest.fixture
def settings(backend_settings: Settings) -> Settings:
    """Every test of this module runs on SQLite and on PostgreSQL."""
    return backend_settings


@pytest.mark.timeout(60)
def test_import_says_what_is_wrong_with_each_file_and_imports_the_rest(
    tmp_path: Path, settings: Settings, run_cli: Cli
) -> None:
    good = tmp_path / "captures" / "run.jsonl"
    good.parent.mkdir()
    shutil.copyfile(CAPTURES / "stream-output-1.jsonl", good)
    missing = tmp_path / "nowhere.jsonl"
    a_dir = tmp_path / "captures"
    text = tmp_path / "LICENSE"
    shutil.copyfile(CAPTURES / "LICENSE", text)
    stray_json = tmp_path / "data.jsonl"
    stray_json.write_bytes(b'{"name": "not codex"}\n')
    empty = tmp_path / "empty.jsonl"
    empty.touch()
    fifo = tmp_path / "pipe.jsonl"
    os.mkfifo(fifo)

    args = [good, missing, a_dir, text, stray_json, empty, fifo]
    result = run_cli.runner.invoke(cli, [*run_cli.base_args(), "import", *map(str, args)])
    assert result.exit_code == 1
    not_recognized = (
        "not a recognized format (expected a Codex rollout or a `codex exec --json` capture:"
        " JSON lines such as session_meta or thread.started)"
    )
    assert result.stderr.splitlines() == [
        f"error: {missing}: no such file",
        f"error: {a_dir}: is a directory; give the capture files themselves",
        f"error: {text}: {not_recognized}",
        f"error: {stray_json}: {not_recognized}",
        f"error: {empty}: is empty; import it once it has its first line",
        f"error: {fifo}: not a regular file (a FIFO)",
    ]
    assert "Traceback" not in result.output
    assert f"imported {good}: thread 019a2d7a-41c4-78b1-b7cc-a45d62a89cd5, 2 rows" in result.stdout
    assert imported_files(settings.data_dir) == [str(good)]
    (thread,) = run_cli.json("threads")
    assert thread["source"] == "exec"
    # Imported again: nothing new, nothing doubled.
    run_cli("import", str(good))
    assert imported_files(settings.data_dir) == [str(good)]
    assert len(run_cli.json("threads")) == 1


def test_status_names_the_files_it_does_not_mirror(
    codex_home: Path, settings: Settings, run_cli: Cli
) -> None:
    """The issue's home: real rollouts plus `codex exec --json` captures under their own
    names, which a scan passes over. `status` lists those with the way to mirror them."""
    day = codex_home / "sessions" / "2025" / "10" / "29"
    day.mkdir(parents=True)
    captures = sorted(CAPTURES.glob("stream-output-*.jsonl"))
    for capture in captures:
        shutil.copyfile(capture, day / capture.name)
    Rollout().write(codex_home)

    report = run_cli.json("backfill", "--no-embed")
    assert report["files"] == 1
    unrecognized = [{"path": str(day / c.name), "reason": NOT_A_ROLLOUT_NAME} for c in captures]
    assert report["unrecognized"] == unrecognized
    assert run_cli.json("status")["unrecognized"] == unrecognized
    assert f"{day / captures[0].name}: {NOT_A_ROLLOUT_NAME}" in run_cli("status")

    run_cli("import", str(day / captures[0].name))
    status = run_cli.json("status")
    assert status["unrecognized"] == unrecognized[1:]
    assert status["imported"] == [str(day / captures[0].name)]
    assert status["files"] == 2


def test_import_while_a_backfill_holds_the_data_dir_records_the_file_for_later(
    tmp_path: Path, settings: Settings, run_cli: Cli
) -> None:
    capture = tmp_path / "run.jsonl"
    shutil.copyfile(CAPTURES / "stream-output-3.jsonl", capture)
    this_machine = {"SESSIONBASE_MACHINE": settings.machine}  # whose claim the Mirror holds

    def invoke(*args: str) -> str:
        result = run_cli.runner.invoke(cli, [*run_cli.base_args(), *args], env=this_machine)
        assert result.exit_code == 0, result.output
        return result.output

    with Mirror(settings):  # what a running backfill holds
        output = invoke("import", str(capture))
        status = orjson.loads(invoke("status", "--json"))
        assert status["ingest"] == {"state": "importing", "pid": os.getpid()}
    assert f"a backfill or import (pid {os.getpid()}) is running on it" in output
    assert "imports them now" not in output
    assert imported_files(settings.data_dir) == [str(capture)]
    assert run_cli.json("threads") == []
    run_cli("backfill", "--no-embed")  # the next pass takes it in
    assert [t["source"] for t in run_cli.json("threads")] == ["exec"]
