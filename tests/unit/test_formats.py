"""Format generations and mapping rules (DESIGN §3, codex-formats §2–§4, §10) through the CLI."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

import orjson

from tests.builders.codex import DEFAULT_START, Rollout, legacy_rollout, new_id, ts_document
from tests.conftest import Cli


def _messages(cli: Cli, thread_id: str) -> list[dict[str, Any]]:
    shown: dict[str, Any] = cli.json("show", thread_id)
    return list(shown["messages"])


def _transcript(cli: Cli, thread_id: str) -> list[tuple[str, str, str]]:
    return [(m["role"], m["kind"], m["text"]) for m in _messages(cli, thread_id)]


def test_legacy_jsonl_generation(codex_home: Path, run_cli: Cli) -> None:
    tid = "5973b6c0-94b8-487b-a530-2aeb6098ae0e"
    path = (
        codex_home / "sessions" / "2025" / "07" / "20" / f"rollout-2025-07-20T10-00-00-{tid}.jsonl"
    )
    path.parent.mkdir(parents=True)
    path.write_bytes(legacy_rollout(tid, "list the files", "There are two files."))
    run_cli("backfill")
    assert _transcript(run_cli, tid) == [
        ("user", "message", "list the files"),
        ("assistant", "reason", "Thinking"),
        ("assistant", "cmd", "ls"),
        ("assistant", "message", "There are two files."),
    ]
    cmd = _messages(run_cli, tid)[2]
    assert cmd["data"]["exit_code"] == 0
    assert cmd["data"]["duration_ms"] == 200
    thread = run_cli.json("show", tid)["thread"]
    assert thread["created_at"] == "2025-07-20T10:00:00.000Z"
    assert thread["title"] == "list the files"


def test_ts_era_json_document(codex_home: Path, run_cli: Cli) -> None:
    tid = "8b1f0a3e-6f0c-4d35-a3b0-2d0c6a3c9f11"
    path = codex_home / "sessions" / f"rollout-2025-04-10-{tid}.json"
    path.write_bytes(ts_document(tid, "hello from 2025", "hi"))
    run_cli("backfill")
    assert _transcript(run_cli, tid) == [
        ("user", "message", "hello from 2025"),
        ("assistant", "message", "hi"),
    ]


def test_event_and_item_twins_become_one_row_in_either_order(
    codex_home: Path, run_cli: Cli
) -> None:
    r = Rollout()
    r.user("same words", item=False)  # event first
    r.item(
        {
            "type": "message",
            "role": "user",
            "content": [{"type": "input_text", "text": "same words"}],
        }
    )
    r.assistant("answer")  # event, then item
    r.user("same words")  # the same text again, in a later turn: a new row
    r.assistant("answer", event=False)  # only an item: still one row
    r.write(codex_home)
    run_cli("backfill")
    assert [(m[0], m[2]) for m in _transcript(run_cli, r.thread_id)] == [
        ("user", "same words"),
        ("assistant", "answer"),
        ("user", "same words"),
        ("assistant", "answer"),
    ]


def test_title_sources_in_order_of_precedence(codex_home: Path, run_cli: Cli) -> None:
    r = Rollout()
    r.user("## My request for Codex:\n  fix   the build  ")
    r.write(codex_home)
    run_cli("backfill")
    thread = run_cli.json("show", r.thread_id)["thread"]
    assert (thread["title"], thread["title_source"]) == ("fix the build", "message")

    r.rename("Build fix")
    r.write(codex_home)
    run_cli("backfill")
    thread = run_cli.json("show", r.thread_id)["thread"]
    assert (thread["title"], thread["title_source"]) == ("Build fix", "event")

    index = codex_home / "session_index.jsonl"
    entries = [
        {"id": r.thread_id, "thread_name": "older name", "updated_at": "2026-05-01T10:00:00Z"},
        {"id": r.thread_id, "thread_name": "Newest name", "updated_at": "2026-05-02T10:00:00Z"},
    ]
    index.write_bytes(b"".join(orjson.dumps(e) + b"\n" for e in entries))
    run_cli("backfill")
    thread = run_cli.json("show", r.thread_id)["thread"]
    assert (thread["title"], thread["title_source"]) == ("Newest name", "index")


def test_tokens_are_the_last_cumulative_total_never_a_sum(codex_home: Path, run_cli: Cli) -> None:
    r = Rollout()
    r.user("count")
    r.tokens(1000)
    r.tokens(1000)  # repeated line
    r.event({"type": "token_count", "info": None, "rate_limits": {}})
    r.tokens(2500)
    r.write(codex_home)
    run_cli("backfill")
    assert run_cli.json("show", r.thread_id)["thread"]["tokens"]["total"] == 2500


def test_subagent_keeps_lineage_and_can_be_filtered(codex_home: Path, run_cli: Cli) -> None:
    parent = Rollout()
    parent.user("spawn a helper")
    parent.write(codex_home)
    child = Rollout(
        start=DEFAULT_START + timedelta(minutes=1),
        source={
            "subagent": {
                "thread_spawn": {
                    "parent_thread_id": parent.thread_id,
                    "depth": 1,
                    "agent_nickname": "Atlas",
                    "agent_role": "explorer",
                }
            }
        },
        meta={"session_id": parent.thread_id, "thread_source": "subagent"},
    )
    child.user("explore the repo")
    child.assistant("done")
    child.write(codex_home)
    run_cli("backfill")
    thread = run_cli.json("show", child.thread_id)["thread"]
    assert thread["source"] == "subagent"
    assert thread["parent_thread_id"] == parent.thread_id
    assert thread["agent_role"] == "explorer"
    assert thread["agent_nickname"] == "Atlas"
    assert {t["id"] for t in run_cli.json("threads", "--source", "subagent")} == {child.thread_id}


def test_fork_by_reference_keeps_lineage_only(codex_home: Path, run_cli: Cli) -> None:
    parent = Rollout()
    parent.user("original question")
    parent.assistant("original answer")
    parent.write(codex_home)
    fork = Rollout(
        start=DEFAULT_START + timedelta(hours=1),
        meta={
            "forked_from_id": parent.thread_id,
            "forked_from_ordinal_exclusive": 3,
            "history_base": {
                "thread_id": parent.thread_id,
                "end_ordinal_exclusive": 3,
                "end_byte_offset": 900,
            },
        },
    )
    fork.user("a new direction")
    fork.write(codex_home)
    run_cli("backfill")
    assert run_cli.json("show", fork.thread_id)["thread"]["forked_from_id"] == parent.thread_id
    assert [m[2] for m in _transcript(run_cli, fork.thread_id)] == ["a new direction"]


def test_fork_that_copies_parent_history_does_not_duplicate_it(
    codex_home: Path, run_cli: Cli
) -> None:
    parent = Rollout()
    turn = parent.turn()
    parent.user("original question")
    parent.assistant("original answer")
    parent.tokens(5000)
    parent.end_turn(turn)
    parent.write(codex_home)

    fork_start = DEFAULT_START + timedelta(hours=1)
    fork = Rollout(start=fork_start, meta={"forked_from_id": parent.thread_id})
    # The fork's first lines replay the parent's file, all written at fork time.
    replay_ts = fork.tick(0.001)
    for line in parent.lines:
        obj = orjson.loads(line)
        obj["timestamp"] = replay_ts
        fork.raw(orjson.dumps(obj))
    fork.tick(30)  # the user types for a while
    own = fork.turn(new_id(fork.clock))
    fork.user("now do it differently")
    fork.assistant("done differently")
    fork.tokens(5600)
    fork.end_turn(own)
    fork.write(codex_home)
    run_cli("backfill")
    assert [m[2] for m in _transcript(run_cli, fork.thread_id)] == [
        "now do it differently",
        "done differently",
    ]
    thread = run_cli.json("show", fork.thread_id)["thread"]
    assert thread["message_count"] == 2
    assert thread["title"] == "now do it differently"
    assert thread["tokens"]["total"] == 600  # its own usage, not the parent's again
    assert thread["forked_from_id"] == parent.thread_id


def test_codex_0169_typed_items(codex_home: Path, run_cli: Cli) -> None:
    """Newer builds: item_completed typed items instead of user/agent message events (§10)."""
    r = Rollout(cli_version="0.169.0", source="exec", originator="codex_exec")
    turn = r.turn()
    r.user("Run echo hello", event=False)
    r.event(
        {
            "type": "item_completed",
            "turn_id": turn,
            "item": {
                "type": "UserMessage",
                "id": "u1",
                "content": [{"type": "text", "text": "Run echo hello", "text_elements": []}],
            },
        }
    )
    r.item(
        {
            "type": "function_call",
            "name": "exec_command",
            "call_id": "call_echo",
            "arguments": '{"cmd": "echo hello"}',
        }
    )
    r.event(
        {
            "type": "item_completed",
            "turn_id": turn,
            "item": {
                "type": "CommandExecution",
                "id": "call_echo",
                "command": ["/bin/bash", "-lc", "echo hello"],
                "cwd": "file:///work/project",
                "status": "completed",
                "aggregated_output": "hello\n",
                "exit_code": 0,
                "duration": {"secs": 0, "nanos": 6415000},
            },
        }
    )
    r.item(
        {
            "type": "function_call_output",
            "call_id": "call_echo",
            "output": "Chunk ID: 5c15f0\nWall time: 0.0000 seconds\nProcess exited with code 0\n"
            "Original token count: 2\nOutput:\nhello\n",
        }
    )
    r.event(
        {
            "type": "item_completed",
            "turn_id": turn,
            "item": {
                "type": "AgentMessage",
                "id": "m1",
                "content": [{"type": "Text", "text": "It printed hello."}],
            },
        }
    )
    r.assistant("It printed hello.", event=False)
    r.end_turn(turn, last="It printed hello.")
    r.write(codex_home)
    run_cli("backfill")
    messages = _messages(run_cli, r.thread_id)
    assert [(m["role"], m["kind"], m["text"]) for m in messages] == [
        ("user", "message", "Run echo hello"),
        ("assistant", "cmd", "echo hello"),
        ("assistant", "message", "It printed hello."),
    ]
    assert messages[1]["data"]["exit_code"] == 0
    assert messages[1]["data"]["output"] == "hello\n"
    assert messages[1]["turn_id"] == turn


def test_mcp_tool_calls_are_named_as_codex_names_them(codex_home: Path, run_cli: Cli) -> None:
    """An MCP tool call is ``mcp__<server>__<tool>`` whichever way the rollout spells it: one
    name (older builds), or a namespace apart, with its trailing ``__`` (``mcp__<server>__``)
    or without it, as Codex 0.169.0 writes it (seen with the real binary calling sessionbase's
    own MCP server)."""
    r = Rollout(cli_version="0.169.0")
    r.user("What did we decide?")
    calls = (
        {"name": "mcp__docs__search"},
        {"name": "search", "namespace": "mcp__docs__"},
        {"name": "search", "namespace": "mcp__docs"},
    )
    for n, call in enumerate(calls):
        r.item({"type": "function_call", "call_id": f"c{n}", "arguments": '{"q":"x"}', **call})
        r.item(
            {
                "type": "function_call_output",
                "call_id": f"c{n}",
                "output": [{"type": "input_text", "text": f"hit {n}"}],
            }
        )
    r.write(codex_home)
    run_cli("backfill", "--no-embed")
    tools = [m for m in _messages(run_cli, r.thread_id) if m["kind"] == "tool"]
    assert [m["data"]["tool"] for m in tools] == ["mcp__docs__search"] * 3
    assert [m["text"] for m in tools] == ['mcp__docs__search {"q":"x"}'] * 3
    assert [m["data"]["output"] for m in tools] == ["hit 0", "hit 1", "hit 2"]


def test_failed_turn_and_interruption_are_system_errors(codex_home: Path, run_cli: Cli) -> None:
    r = Rollout()
    turn = r.turn()
    r.user("do it")
    r.end_turn(turn, error="unexpected status 400 Bad Request")
    r.event({"type": "turn_aborted", "reason": "interrupted"})
    r.write(codex_home)
    run_cli("backfill")
    errors = [
        (m["role"], m["text"]) for m in _messages(run_cli, r.thread_id) if m["kind"] == "error"
    ]
    assert errors == [
        ("system", "unexpected status 400 Bad Request"),
        ("system", "Turn interrupted"),
    ]


def test_unknown_types_are_kept_and_counted(codex_home: Path, run_cli: Cli) -> None:
    r = Rollout()
    r.user("hi")
    r.line("brand_new_line_type", {"x": 1})
    r.event({"type": "brand_new_event", "y": 2})
    r.item({"type": "brand_new_item"})
    r.assistant("hello")
    r.write(codex_home)
    run_cli("backfill")
    status = run_cli.json("status")
    assert status["unknown_types"] == {
        "brand_new_line_type": 1,
        "event_msg.brand_new_event": 1,
        "response_item.brand_new_item": 1,
    }
    assert [m[2] for m in _transcript(run_cli, r.thread_id)] == ["hi", "hello"]


def test_projects_by_repository_root(tmp_path: Path, codex_home: Path, run_cli: Cli) -> None:
    repo = tmp_path / "repo"
    (repo / ".git").mkdir(parents=True)
    (repo / "pkg" / "sub").mkdir(parents=True)
    outside = tmp_path / "scratch"
    outside.mkdir()
    for i, cwd in enumerate([repo, repo / "pkg" / "sub", outside]):
        r = Rollout(
            start=DEFAULT_START + timedelta(minutes=i),
            cwd=str(cwd),
            meta={"git": {"branch": "main", "repository_url": "git@x:y/repo.git"}},
        )
        r.user(f"task {i}")
        r.write(codex_home)
    run_cli("backfill")
    projects = {p["working_dir"]: p for p in run_cli.json("projects")}
    assert set(projects) == {str(repo), str(outside)}
    assert projects[str(repo)]["thread_count"] == 2
    assert projects[str(repo)]["repo_url"] == "git@x:y/repo.git"
    assert projects[str(repo)]["name"] == "repo"
