"""Every real rollout in the shared corpus ingests, with expectations written by hand.

The expectations below were read off the raw files (codex-formats §2, corpus/SOURCES.md), not
produced by sessionbase: thread ids, titles, the order of user/assistant messages, and the
commands with their exit codes. The corpus is mirrored on SQLite and on PostgreSQL.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass, field
from typing import Any

import pytest

from tests.conftest import CORPUS, Cli

pytestmark = pytest.mark.skipif(not CORPUS.is_dir(), reason=f"corpus not found at {CORPUS}")


@dataclass(frozen=True)
class Expected:
    file: str
    thread_id: str
    source: str
    title_starts: str
    transcript: list[str]  # "u" / "a" per user / assistant message, in order
    first_user_starts: str = ""
    commands: dict[str, int | None] = field(default_factory=dict)  # call_id -> exit code
    first_command: str | None = None
    errors: int = 0
    min_tokens: int = 0


EXPECTED = [
    Expected(
        file="AcidicSoil__codex-session-view/rollout-2025-11-17T15-30-28-019a93b9-f380-7600-98ff-940e6b99603c.jsonl",
        thread_id="019a93b9-f380-7600-98ff-940e6b99603c",
        source="cli",
        title_starts="finish up the users work by rigging up the chatbot",
        transcript=["u"],
        commands={"call_GfHib9GW3d5m9EB1wMTper0j": 0, "call_ovY9Ey2ZCOQOFATpjpdwaE2j": 1},
        first_command="ls",
        min_tokens=1,
    ),
    Expected(
        file="codemie-ai__codemie-code/rollout-2026-01-02T18-39-45-019b7f94-51b4-7593-922e-ba12b5b73b52.jsonl",
        thread_id="019b7f94-51b4-7593-922e-ba12b5b73b52",
        source="exec",
        title_starts="what is current repository about? summarize purpus",
        transcript=["u"],
        commands={"call_1sXxutbQI29Z41aSr0GPiMSO": 0, "call_GJwkZaB7U9xw2agS4AgfU0iw": 0},
        first_command="ls",
        min_tokens=1,
    ),
    Expected(
        file="codemie-ai__codemie-code/rollout-2026-05-11T11-26-55-019e1625-789d-76c0-80ab-3724b5ddb799.jsonl",
        thread_id="019e1625-789d-76c0-80ab-3724b5ddb799",
        source="cli",
        title_starts="show tools",
        transcript=["u", "a", "u"] + ["a"] * 12,
        commands={
            "call_NqXBF7JK4NH5M85YXgojxxmC": 2,
            "call_wAmN401U7zKVZ9wF0d5rGwMP": 1,
            "call_Rl3vKwoQD6TG9Xyz55hzx2jV": 1,
            "call_jQYxA5wvjWJ4ZtptybmzrkNm": 0,
        },
        first_command="sed -n '1,180p' /Users/Sample_User/.codex/plugins/cache/openai-curated/",
        min_tokens=1,
    ),
    Expected(
        file="codemie-ai__codemie-code/rollout-2026-05-11T13-28-45-019e1695-0522-7c83-8b39-0dd379793f80.jsonl",
        thread_id="019e1695-0522-7c83-8b39-0dd379793f80",
        source="vscode",
        title_starts="analyze trascript and summarzie action items",
        transcript=["u", "a", "u", "a", "u", "a"],
        first_user_starts="\n# Files mentioned by the user:",
        commands={"call_3f7AXDMZ9PHz7zedrTO4twut": 1, "call_AvUkcEDS8tiUyr1JW8hw2z43": 0},
    ),
    Expected(
        file="jnarowski__agentcmd/rollout-2025-09-24T19-22-20-01997e76-d124-7592-9cac-2ec05abbca08.jsonl",
        thread_id="01997e76-d124-7592-9cac-2ec05abbca08",
        source="vscode",  # no `source` key yet (0.40.0): inferred from originator codex_vscode
        title_starts="Updating a team to assign a lead",
        # event order in the file: u X u a u a u X u a u a u X u X u a u a u a u a u a
        transcript=list("uuauauuauauuuauauauaua"),
        first_user_starts="# Context from my IDE setup:",
        commands={"call_1mb2zpo3ma4hy4OjTDz9oNpC": 0, "call_fAfn6id5ZV856hQe6FF8RNUy": 1},
        first_command='rg "TeamSheet"',
        errors=4,  # four interrupted turns
        min_tokens=1,
    ),
    Expected(
        file="jnarowski__agentcmd/rollout-2025-09-25T15-12-14-019982b8-3422-79e0-8b3b-05abaf4f3c3e.jsonl",
        thread_id="019982b8-3422-79e0-8b3b-05abaf4f3c3e",
        source="vscode",
        title_starts="Evaluate @packages/services",
        transcript=["u", "a"],
        commands={"call_mux7Gp4q9YON9fYffwerwHgr": 0},
        first_command="ls",
        min_tokens=1,
    ),
    Expected(
        file="kvsankar__agent-history/session-01.jsonl",
        thread_id="019e9625-802f-7e91-840a-cfe88d14117a",
        source="exec",
        title_starts="[REDACTED_PROMPT]",
        transcript=["u", "a"],
        min_tokens=22549,
    ),
]

STREAMS = {
    # exec --json captures: (thread id, [(role, kind)] in order, commands' exit codes)
    "stream-output-1.jsonl": ("019a2d7a-41c4-78b1-b7cc-a45d62a89cd5", ["reason", "message"], []),
    "stream-output-2.jsonl": ("019a2d7a-6455-7170-a661-c6d8b94c630a", None, [0]),
    "stream-output-3.jsonl": (
        "019a2d7a-8e1c-7111-b1a6-8cec551a55a0",
        ["reason", "patch", "message"],
        [],
    ),
    "stream-output-4.jsonl": (
        "019a2d7b-231d-7290-acc1-6bc6571440da",
        ["reason", "cmd", "reason", "message"],
        [0],
    ),
    "stream-output-5.jsonl": (
        "019a2d7b-7fb8-78e1-8cfa-5bdbe274a3aa",
        ["reason", "cmd", "reason", "message"],
        [0],
    ),
    "stream-output-multi-1.jsonl": ("019a2d7b-c0ed-75a0-8908-de832785d47f", [], []),
}


@pytest.fixture(
    scope="module", params=["sqlite", pytest.param("postgres", marks=pytest.mark.integration)]
)
def mirrored(tmp_path_factory: pytest.TempPathFactory, request: pytest.FixtureRequest) -> Cli:
    """The whole corpus copied into one Codex home and backfilled once, on each backend in
    turn (PostgreSQL in a database of its own)."""
    from sessionbase import config

    database = ""
    if request.param == "postgres":
        database = request.getfixturevalue("pg_databases").create()
    root = tmp_path_factory.mktemp("corpus")
    home = root / "codex-home"
    day = home / "sessions" / "2026" / "01" / "02"
    day.mkdir(parents=True)
    for path in CORPUS.glob("*/*.jsonl"):
        name = path.name if path.name.startswith("rollout-") else f"rollout-{path.name}"
        shutil.copy(path, day / name)
    settings = config.load(
        environ={},
        overrides={
            "data_dir": root / "data",
            "codex_homes": (home,),
            "home": root / "u",
            "database": database,
        },
    )
    cli = Cli(settings)
    report = cli.json("backfill")
    assert report["errors"] == []
    assert report["skipped_lines"] == {}
    return cli


def _show(cli: Cli, thread_id: str) -> dict[str, Any]:
    shown: dict[str, Any] = cli.json("show", thread_id)
    return shown


@pytest.mark.parametrize("exp", EXPECTED, ids=lambda e: e.thread_id[:8])
def test_rollout_mirrors_as_written(mirrored: Cli, exp: Expected) -> None:
    shown = _show(mirrored, exp.thread_id)
    thread, messages = shown["thread"], shown["messages"]
    assert thread["id"] == exp.thread_id
    assert thread["source"] == exp.source
    assert thread["title"].startswith(exp.title_starts)
    transcript = [m for m in messages if m["kind"] == "message"]
    assert ["u" if m["role"] == "user" else "a" for m in transcript] == exp.transcript
    assert thread["message_count"] == len(exp.transcript)
    if exp.first_user_starts:
        assert transcript[0]["text"].startswith(exp.first_user_starts)
    commands = {m["data"].get("call_id"): m for m in messages if m["kind"] == "cmd"}
    for call_id, code in exp.commands.items():
        assert commands[call_id]["data"].get("exit_code") == code, call_id
    if exp.first_command is not None:
        first = next(m for m in messages if m["kind"] == "cmd")
        assert first["text"].startswith(exp.first_command)
    assert sum(1 for m in messages if m["kind"] == "error") == exp.errors
    assert thread["tokens"]["total"] >= exp.min_tokens
    assert [m["idx"] for m in messages] == list(range(len(messages)))


@pytest.mark.parametrize("name", sorted(STREAMS))
def test_exec_stream_mirrors_as_written(mirrored: Cli, name: str) -> None:
    thread_id, kinds, exit_codes = STREAMS[name]
    shown = _show(mirrored, thread_id)
    got = [m["kind"] for m in shown["messages"]]
    if kinds is not None:
        assert got == kinds
    codes = [m["data"].get("exit_code") for m in shown["messages"] if m["kind"] == "cmd"]
    assert codes == exit_codes
    assert shown["thread"]["source"] == "exec"


def test_exec_streams_are_titled_and_dated_without_a_prompt(mirrored: Cli) -> None:
    """A capture holds no prompt and no timestamp: its first answer titles it (read off
    stream-output-1.jsonl, whose only answer is "4"), and its UUIDv7 id dates it (its first
    48 bits, 0x019a2d7a41c4, are the ms)."""
    thread = _show(mirrored, "019a2d7a-41c4-78b1-b7cc-a45d62a89cd5")["thread"]
    assert (thread["title"], thread["title_source"], thread["message_count"]) == ("4", "message", 1)
    assert thread["created_at"] == thread["updated_at"] == "2025-10-29T00:59:38.308Z"
    listing = mirrored("threads")
    assert (
        "(no message yet)"
        not in [line for line in listing.splitlines() if "019a2d7a-41c4" in line][0]
    )
    shown = mirrored("show", "019a2d7a-41c4")
    assert shown.splitlines()[0] == "4"
    assert "(untitled)" not in shown
    empty = _show(mirrored, "019a2d7b-c0ed-75a0-8908-de832785d47f")["thread"]
    assert (empty["title"], empty["message_count"]) == (None, 0)


def test_injected_context_is_not_a_user_message(mirrored: Cli) -> None:
    for exp in EXPECTED:
        for m in _show(mirrored, exp.thread_id)["messages"]:
            if m["role"] == "user":
                assert not m["text"].lstrip().startswith(("<environment_context>", "# AGENTS.md"))


def test_every_corpus_file_is_a_thread(mirrored: Cli) -> None:
    threads = mirrored.json("threads", "--limit", "100")
    assert len(threads) == len(EXPECTED) + len(STREAMS)
    status = mirrored.json("status")
    assert status["files_by_status"] == {"ok": len(EXPECTED) + len(STREAMS)}
    assert status["lag_bytes"] == 0


def test_backfill_again_changes_nothing(mirrored: Cli) -> None:
    before = {t["id"]: _show(mirrored, t["id"]) for t in mirrored.json("threads", "--limit", "100")}
    report = mirrored.json("backfill")
    assert report["rows_written"] == 0
    assert report["files_by_status"] == {"unchanged": len(EXPECTED) + len(STREAMS)}
    after = {t["id"]: _show(mirrored, t["id"]) for t in mirrored.json("threads", "--limit", "100")}
    assert after == before
