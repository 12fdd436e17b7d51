"""The Codex harness itself: the mock model server, the scenario data, and every scenario run
through the real Codex CLI 0.169.0 with checks on the raw rollout file it writes.

Why: later tests assert on sessionbase's mirror of these sessions; they can only be trusted if
the sessions really contain what the scenarios claim. The mock-server tests at the top need no
external program; the ``integration`` ones need node and ``npm install``.
"""

from __future__ import annotations

import json
import signal
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.support.codex_cli import (
    CODEX_VERSION,
    CodexHome,
    read_rollout,
    run_codex_exec,
    start_codex_exec,
)
from tests.support.codex_scenarios import SCENARIOS, Scenario, ScenarioResult
from tests.support.mock_responses import (
    ApplyPatch,
    ExecCommand,
    HttpError,
    Message,
    MockModelServer,
    Reasoning,
    Reply,
    ResponseFailed,
    Script,
)
from tests.support.rollout_lines import (
    completed_items,
    event_msgs,
    genuine_user_texts,
    line_kinds,
    response_items,
    tool_output,
)

integration = pytest.mark.integration

# --------------------------------------------------------------------------------------------
# Mock server (no Codex needed)
# --------------------------------------------------------------------------------------------


def _post(url: str, body: dict[str, Any]) -> tuple[int, str]:
    request = urllib.request.Request(
        url, data=json.dumps(body).encode(), headers={"Content-Type": "application/json"}
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()


def _sse_events(text: str) -> list[dict[str, Any]]:
    return [
        json.loads(line[len("data: ") :]) for line in text.splitlines() if line.startswith("data: ")
    ]


def test_mock_server_serves_script_in_order_and_records_requests() -> None:
    script: Script = [
        [
            Reply((Reasoning(("thinking",)), ExecCommand("echo hi", call_id="c1"))),
            [Message("done")],
        ],
        [HttpError(400, "bad")],
    ]
    with MockModelServer(script) as server:
        assert server.base_url.startswith("http://127.0.0.1:")
        url = server.base_url + "/responses"
        status, text = _post(url, {"input": [{"type": "message", "role": "user"}]})
        assert status == 200
        events = _sse_events(text)
        assert events[0]["type"] == "response.created"
        assert events[-1]["type"] == "response.completed"
        assert events[-1]["response"]["usage"]["total_tokens"] == 1050
        done = [e["item"] for e in events if e["type"] == "response.output_item.done"]
        assert [i["type"] for i in done] == ["reasoning", "function_call"]
        assert done[1]["name"] == "exec_command"
        assert json.loads(done[1]["arguments"]) == {"cmd": "echo hi"}
        assert done[1]["call_id"] == "c1"

        status, text = _post(
            url, {"input": [{"type": "function_call_output", "call_id": "c1", "output": "hi"}]}
        )
        deltas = [e["delta"] for e in _sse_events(text) if e["type"].endswith(".delta")]
        assert "".join(deltas) == "done"
        assert server.find_tool_output("c1") == "hi"

        status, text = _post(url, {})
        assert status == 400
        assert json.loads(text)["error"]["message"] == "bad"

        status, _ = _post(url, {})  # beyond the script
        assert status == 500
        assert [r.turn_index for r in server.requests] == [0, 0, 1, None]
        with pytest.raises(AssertionError, match="unexpected request #3"):
            server.assert_script_consumed()


def test_mock_server_response_failed_and_apply_patch_shapes() -> None:
    with MockModelServer(
        [[[ApplyPatch("*** Begin Patch\n*** End Patch\n")], ResponseFailed()]]
    ) as s:
        _, text = _post(s.base_url + "/responses", {})
        done = [e["item"] for e in _sse_events(text) if e["type"] == "response.output_item.done"]
        assert done[0]["type"] == "custom_tool_call"
        assert done[0]["name"] == "apply_patch"
        assert done[0]["input"].startswith("*** Begin Patch")
        _, text = _post(s.base_url + "/responses", {})
        assert _sse_events(text)[-1]["type"] == "response.failed"
        assert s.responses_remaining == 0


@pytest.mark.parametrize("scenario", SCENARIOS, ids=lambda s: s.name)
def test_scenario_facts_match_script(scenario: Scenario) -> None:
    """Expected facts must be backed by the script (catches typos in scenario data)."""
    items = [
        item
        for turn in scenario.script
        for response in turn
        for item in getattr(response, "items", ())
    ]
    texts = [i.text for i in items if isinstance(i, Message)]
    assert scenario.agent_messages == [t for t in texts if t in scenario.agent_messages], (
        "agent messages must appear in the script, in order"
    )
    assert len(scenario.agent_messages) == len(texts) or any(t.fails for t in scenario.turns)
    exec_calls = {i.call_id: i.cmd for i in items if isinstance(i, ExecCommand)}
    for command in scenario.commands:
        assert exec_calls.get(command.call_id) == command.cmd
    patch_calls = {i.call_id for i in items if isinstance(i, ApplyPatch)}
    assert {c.call_id for c in scenario.file_changes} <= patch_calls
    assert len({s.name for s in SCENARIOS}) == len(SCENARIOS)


# --------------------------------------------------------------------------------------------
# Real Codex CLI
# --------------------------------------------------------------------------------------------


@integration
@pytest.mark.parametrize("scenario", SCENARIOS, ids=lambda s: s.name)
def test_scenario_rollout(
    scenario: Scenario, scenario_runner: Callable[[Scenario], ScenarioResult]
) -> None:
    result = scenario_runner(scenario)
    lines = result.rollout_lines()
    _check_envelope(result, lines)
    _check_turns(result, lines)
    _check_messages(result, lines)
    _check_commands(result, lines)
    _check_file_changes(result, lines)
    for turn in result.scenario.turns:
        for call_id, fragment in turn.tool_outputs_contain.items():
            assert fragment in str(tool_output(lines, call_id))


def _check_envelope(result: ScenarioResult, lines: list[dict[str, Any]]) -> None:
    assert lines, "rollout is empty"
    first = lines[0]
    assert first["type"] == "session_meta"
    assert first["payload"]["id"] == result.thread_id
    assert first["payload"]["cli_version"] == CODEX_VERSION
    assert first["payload"]["source"] == "exec"
    assert first["payload"]["cwd"] == str(result.workdir.resolve())
    assert sum(1 for line in lines if line["type"] == "session_meta") == 1
    assert [line["ordinal"] for line in lines] == list(range(len(lines)))
    assert result.rollout_path.name.endswith(f"-{result.thread_id}.jsonl")
    assert result.rollout_path.is_relative_to(result.codex_home.sessions_dir)
    if result.scenario.git_init:
        git = first["payload"]["git"]
        assert git["branch"] == "main"
        assert git["repository_url"] == "https://example.invalid/sessionbase/fixture.git"
    else:
        assert "git" not in first["payload"]


def _check_turns(result: ScenarioResult, lines: list[dict[str, Any]]) -> None:
    turns = result.scenario.turns
    started = event_msgs(lines, "task_started")
    completed = event_msgs(lines, "task_complete")
    assert len(started) == len(completed) == len(turns)
    for turn, run, start, done in zip(turns, result.runs, started, completed, strict=True):
        assert start["turn_id"] == done["turn_id"]
        if turn.fails:
            assert run.returncode != 0
            assert any(e["type"] == "turn.failed" for e in run.events)
            assert done["last_agent_message"] is None
            assert turn.error_contains is not None
            assert turn.error_contains in done["error"]["message"]
        else:
            assert run.ok, run.stderr
            assert "error" not in done
            expected_last = turn.agent_messages[-1] if turn.agent_messages else None
            assert done["last_agent_message"] == expected_last
    # Each completed model response yields one token_usage_record; token_count lines carry the
    # cumulative total (and may repeat: a turn failing after a tool call re-emits the last one).
    replies = [r for turn in turns for r in turn.responses if isinstance(r, Reply)]
    assert line_kinds(lines)["token_usage_record"] == len(replies)
    counts = event_msgs(lines, "token_count")
    assert len(counts) >= len(replies)
    if replies:
        expected_total = sum(
            r.usage.input_tokens + r.usage.output_tokens for r in replies if r.usage
        )
        assert counts[-1]["info"]["total_token_usage"]["total_tokens"] == expected_total


def _check_messages(result: ScenarioResult, lines: list[dict[str, Any]]) -> None:
    scenario = result.scenario
    user_items = completed_items(lines, "UserMessage")
    assert [i["content"][0]["text"] for i in user_items] == scenario.prompts
    assert genuine_user_texts(lines) == scenario.prompts
    agent_items = completed_items(lines, "AgentMessage")
    assert ["".join(c["text"] for c in i["content"]) for i in agent_items] == (
        scenario.agent_messages
    )
    assistant = [
        "".join(part["text"] for part in item["content"])
        for item in response_items(lines, "message")
        if item["role"] == "assistant"
    ]
    assert assistant == scenario.agent_messages
    exec_texts = [text for run in result.runs for text in run.agent_messages]
    assert exec_texts == scenario.agent_messages
    expected_summaries = [s for turn in scenario.turns for s in turn.reasoning_summaries]
    summaries = [s for i in completed_items(lines, "Reasoning") for s in i["summary_text"]]
    assert summaries == expected_summaries


def _check_commands(result: ScenarioResult, lines: list[dict[str, Any]]) -> None:
    executions = {i["id"]: i for i in completed_items(lines, "CommandExecution")}
    calls = {c["call_id"]: c for c in response_items(lines, "function_call")}
    assert set(executions) == {c.call_id for c in result.scenario.commands}
    for expected in result.scenario.commands:
        item = executions[expected.call_id]
        assert item["command"][-1] == expected.cmd
        assert item["exit_code"] == expected.exit_code
        assert item["status"] == ("completed" if expected.exit_code == 0 else "failed")
        assert expected.output_contains in item["aggregated_output"]
        assert len(item["aggregated_output"]) >= expected.min_output_chars
        assert len(item["aggregated_output"]) <= 65_536
        call = calls[expected.call_id]
        assert call["name"] == "exec_command"
        assert json.loads(call["arguments"])["cmd"] == expected.cmd
        output = tool_output(lines, expected.call_id)
        assert f"Process exited with code {expected.exit_code}" in output


def _check_file_changes(result: ScenarioResult, lines: list[dict[str, Any]]) -> None:
    changes = {i["id"]: i for i in completed_items(lines, "FileChange")}
    assert set(changes) == {c.call_id for c in result.scenario.file_changes}
    for expected in result.scenario.file_changes:
        item = changes[expected.call_id]
        assert item["status"] == "completed"
        abs_path = str((result.workdir / expected.path).resolve())
        assert item["changes"][abs_path]["type"] == expected.kind
        on_disk = result.workdir / expected.path
        if expected.content_after is None:
            assert not on_disk.exists()
        else:
            assert on_disk.read_text(encoding="utf-8") == expected.content_after
        calls = {c["call_id"]: c for c in response_items(lines, "custom_tool_call")}
        assert calls[expected.call_id]["name"] == "apply_patch"
        assert "Success." in tool_output(lines, expected.call_id)


@integration
def test_codex_advertises_expected_tools(
    codex_binary: Path,
    mock_model_server: Callable[..., MockModelServer],
    codex_home_for: Callable[[MockModelServer], CodexHome],
    codex_workdir: Path,
) -> None:
    """The scripts assume Codex offers ``exec_command`` (``cmd``) and freeform ``apply_patch``;
    a Codex upgrade that changes this must fail here first."""
    server = mock_model_server([[[Message("ok")]]])
    run = run_codex_exec(codex_home_for(server), "hi", workdir=codex_workdir)
    assert run.ok, run.stderr
    body = server.model_requests[0].body
    tools = {t.get("name") or t["type"]: t for t in body["tools"]}
    assert tools["exec_command"]["type"] == "function"
    assert "cmd" in tools["exec_command"]["parameters"]["required"]
    assert tools["apply_patch"]["type"] == "custom"
    assert body["stream"] is True
    assert server.model_requests[0].user_texts()[-1] == "hi"
    server.assert_script_consumed()


@integration
def test_live_rollout_grows_while_codex_runs(
    codex_binary: Path,
    mock_model_server: Callable[..., MockModelServer],
    codex_home_for: Callable[[MockModelServer], CodexHome],
    codex_workdir: Path,
) -> None:
    """Gates hold Codex mid-turn (the basis for live-watch tests): first the rollout has the
    prompt and the command but no answer; once the answer item is streamed it is recorded
    before the response completes; ``task_complete`` comes last."""
    before_items, before_completed = threading.Event(), threading.Event()
    server = mock_model_server(
        [
            [
                [ExecCommand("echo live", call_id="call_live")],
                Reply((Message("finished"),), gate=before_items, completion_gate=before_completed),
            ]
        ]
    )
    home = codex_home_for(server)

    def wait_until(predicate: Callable[[list[dict[str, Any]]], bool]) -> list[dict[str, Any]]:
        deadline = time.monotonic() + 30
        while True:
            lines = read_rollout(rollout)
            if predicate(lines):
                return lines
            assert time.monotonic() < deadline, "rollout never reached the expected state"
            time.sleep(0.02)

    with start_codex_exec(home, "go live", workdir=codex_workdir) as process:
        rollout = process.wait_for_rollout(timeout=30)
        server.wait_for_requests(2, timeout=30)
        lines = wait_until(lambda ls: bool(tool_output(ls, "call_live")))
        assert "go live" in genuine_user_texts(lines)
        assert completed_items(lines, "CommandExecution")[0]["aggregated_output"] == "live\n"
        assert not completed_items(lines, "AgentMessage")
        before_items.set()
        lines = wait_until(lambda ls: bool(completed_items(ls, "AgentMessage")))
        assert not event_msgs(lines, "task_complete")
        assert process.popen.poll() is None
        before_completed.set()
        run = process.wait(timeout=30)
    assert run.ok, run.stderr
    final = read_rollout(rollout)
    assert line_kinds(final)["event_msg/task_complete"] == 1
    assert [i["content"][0]["text"] for i in completed_items(final, "AgentMessage")] == ["finished"]


@integration
def test_sigint_mid_command_aborts_turn(
    codex_binary: Path,
    mock_model_server: Callable[..., MockModelServer],
    codex_home_for: Callable[[MockModelServer], CodexHome],
    codex_workdir: Path,
) -> None:
    """SIGINT while a command runs: Codex records ``aborted by user``, a ``<turn_aborted>``
    user message, ``turn_aborted`` and no ``task_complete`` (what a live mirror must show)."""
    server = mock_model_server(
        [[[ExecCommand("sleep 30", call_id="call_sleep", yield_time_ms=60_000)], [Message("x")]]]
    )
    home = codex_home_for(server)
    with start_codex_exec(home, "Sleep for a while", workdir=codex_workdir) as process:
        process.wait_for_event("item.started", timeout=30)
        rollout = process.wait_for_rollout(timeout=30)
        process.kill(signal.SIGINT)
        run = process.wait(timeout=30)
    assert run.returncode != 0
    lines = read_rollout(rollout)
    assert tool_output(lines, "call_sleep").endswith("aborted by user")
    aborted = event_msgs(lines, "turn_aborted")
    assert [a["reason"] for a in aborted] == ["interrupted"]
    assert not event_msgs(lines, "task_complete")
    kinds = [
        k
        for item in response_items(lines, "message")
        for k in (item.get("internal_chat_message_metadata_passthrough") or {}).get(
            "content_item_kinds", []
        )
    ]
    assert "generic.turn_aborted" in kinds
    assert server.responses_remaining == 1  # the answer was never requested
