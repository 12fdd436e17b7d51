"""`sessionbase import`: `codex exec --json` captures saved anywhere (the real ones in the
corpus) are mirrored, and a running `serve` keeps them current as they grow; on SQLite and on
PostgreSQL."""

from __future__ import annotations

import json
import shutil
import time
from pathlib import Path

import orjson
import pytest

from sessionbase.errors import StoreError
from sessionbase.store import open_store
from tests.conftest import CORPUS
from tests.support.server import ServerProcess, run_command

pytestmark = [pytest.mark.integration, pytest.mark.slow]

CAPTURES = CORPUS / "jnarowski__agentcmd"


def texts(db: str, thread_id: str) -> list[str]:
    try:
        with open_store(db, readonly=True) as store:
            return [m["text"] for m in store.messages(thread_id)]
    except StoreError:
        return []


def wait_for_text(db: str, thread_id: str, text: str, server: ServerProcess) -> None:
    deadline = time.monotonic() + 30
    while text not in texts(db, thread_id):
        assert time.monotonic() < deadline, f"{text!r} never arrived\n{server.log()}"
        time.sleep(0.05)


def thread_of(capture: Path) -> str:
    first = orjson.loads(capture.read_bytes().splitlines()[0])
    return str(first["thread_id"])


def append_answer(capture: Path, item_id: str, text: str) -> None:
    lines = [
        {"type": "turn.started"},
        {"type": "item.completed", "item": {"id": item_id, "type": "agent_message", "text": text}},
        {"type": "turn.completed", "usage": {"input_tokens": 10, "output_tokens": 5}},
    ]
    with capture.open("ab") as fh:
        fh.write(b"".join(orjson.dumps(line) + b"\n" for line in lines))


def test_captures_saved_anywhere_are_imported_and_kept_current(
    tmp_path: Path, database_option: str
) -> None:
    home = tmp_path / "codex-home"
    (home / "sessions").mkdir(parents=True)
    data = tmp_path / "data"
    anywhere = tmp_path / "somewhere" / "else"
    anywhere.mkdir(parents=True)
    first = anywhere / "exec-run.jsonl"
    shutil.copyfile(CAPTURES / "stream-output-2.jsonl", first)
    first_thread = thread_of(first)
    db = database_option or str(data / "sessionbase.db")
    database = ("--database", database_option) if database_option else ()

    # No serve running: import mirrors the file itself.
    done = run_command(data, home, *database, "import", str(first))
    assert done.returncode == 0, done.stderr
    assert f"imported {first}: thread {first_thread}" in done.stdout
    assert "Files here: `stream-output-1.jsonl`, `stream-output-2.jsonl`, `test.js`." in texts(
        db, first_thread
    )

    server = ServerProcess(data, home, env={"SESSIONBASE_RESCAN_INTERVAL": "0"}, extra=database)
    with server:
        append_answer(first, "item_3", "appended while serve runs")
        wait_for_text(db, first_thread, "appended while serve runs", server)

        # serve running: import records the file and serve mirrors it at once.
        second = anywhere / "another-capture.jsonl"
        shutil.copyfile(CAPTURES / "stream-output-4.jsonl", second)
        second_thread = thread_of(second)
        done = run_command(data, home, *database, "import", str(second))
        assert done.returncode == 0, done.stderr
        assert "imports them now" in done.stdout
        deadline = time.monotonic() + 30
        while not texts(db, second_thread):
            assert time.monotonic() < deadline, server.log()
            time.sleep(0.05)
        append_answer(second, "item_9", "the second capture grew")
        wait_for_text(db, second_thread, "the second capture grew", server)
        assert server.query("status:get")["ingest"]["state"] == "following"

    status = json.loads(run_command(data, home, *database, "status", "--json").stdout)
    assert status["imported"] == [str(first), str(second)]
    assert status["files_by_status"] == {"ok": 2}
