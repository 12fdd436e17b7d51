"""Scripted Codex sessions, as data, with the facts each must leave in the rollout.

Why: every integration test (the raw-rollout checks here, and later the sessionbase mirror
checks) needs the same small set of realistic sessions. A :class:`Scenario` is the mock model's
script plus the user prompts and the expected facts (assistant texts, reasoning summaries,
commands with exit codes, file changes, turn errors), so tests can assert on facts instead of
re-deriving them from the script. :func:`run_scenario` plays a scenario through the real CLI:
turn 1 with ``codex exec``, every later turn with ``codex exec resume <thread id>``.
"""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tests.support.codex_cli import (
    CodexHome,
    CodexRun,
    make_codex_home,
    read_rollout,
    run_codex_exec,
)
from tests.support.mock_responses import (
    ApplyPatch,
    ExecCommand,
    HttpError,
    Message,
    MockModelServer,
    ModelResponse,
    Reasoning,
    RecordedRequest,
    Reply,
    ResponseFailed,
)

__all__ = [
    "SCENARIOS",
    "SCENARIOS_BY_NAME",
    "ExpectedCommand",
    "ExpectedFileChange",
    "Scenario",
    "ScenarioResult",
    "ScenarioTurn",
    "run_scenario",
]


@dataclass(frozen=True)
class ExpectedCommand:
    """A shell command the model runs via ``exec_command`` and what it must produce."""

    call_id: str
    cmd: str
    exit_code: int
    output_contains: str = ""
    """A substring of the command's output (``aggregated_output`` / tool output)."""
    min_output_chars: int = 0
    """For big outputs: the rollout's ``aggregated_output`` is capped at 65,536 characters."""


@dataclass(frozen=True)
class ExpectedFileChange:
    """A file the model changes via ``apply_patch``."""

    call_id: str
    path: str
    """Relative to the scenario's work directory."""
    kind: str
    """``add``, ``update`` or ``delete`` (the ``FileChange`` item's change kind)."""
    content_after: str | None
    """Expected file content after the turn (None for a deleted file)."""


@dataclass(frozen=True)
class ScenarioTurn:
    """One user turn: the prompt, the scripted model responses and the expected facts."""

    prompt: str
    responses: tuple[ModelResponse, ...]
    agent_messages: tuple[str, ...] = ()
    """Assistant texts, in order (each is an ``AgentMessage`` item)."""
    reasoning_summaries: tuple[str, ...] = ()
    commands: tuple[ExpectedCommand, ...] = ()
    file_changes: tuple[ExpectedFileChange, ...] = ()
    tool_outputs_contain: Mapping[str, str] = field(default_factory=dict)
    """call_id -> substring of the tool output Codex records (``*_call_output``)."""
    error_contains: str | None = None
    """Set if the turn fails: a substring of ``task_complete.error.message``."""

    @property
    def fails(self) -> bool:
        return self.error_contains is not None


@dataclass(frozen=True)
class Scenario:
    """A complete scripted session: turns plus optional work-directory setup."""

    name: str
    description: str
    turns: tuple[ScenarioTurn, ...]
    setup_files: Mapping[str, str] = field(default_factory=dict)
    """Files written into the work directory before the first turn."""
    git_init: bool = False
    """Make the work directory a git repository with one commit and an ``origin`` remote
    (fills ``session_meta.git``)."""

    @property
    def script(self) -> list[list[ModelResponse]]:
        """The mock server script: one list of responses per turn."""
        return [list(turn.responses) for turn in self.turns]

    @property
    def prompts(self) -> list[str]:
        return [turn.prompt for turn in self.turns]

    @property
    def agent_messages(self) -> list[str]:
        return [text for turn in self.turns for text in turn.agent_messages]

    @property
    def commands(self) -> list[ExpectedCommand]:
        return [cmd for turn in self.turns for cmd in turn.commands]

    @property
    def file_changes(self) -> list[ExpectedFileChange]:
        return [change for turn in self.turns for change in turn.file_changes]


# --------------------------------------------------------------------------------------------
# Scenario data
# --------------------------------------------------------------------------------------------


def _unicode_answer() -> str:
    """A several-KB answer mixing scripts, emoji (with ZWJ, skin tones, flags), accents
    (precomposed and combining), RTL text and markdown."""
    lines = ["# Überblick — 概要 — Обзор 🌍", ""]
    samples = [
        "中文：你好，世界！这是一个测试段落，包含标点符号。",
        "日本語：こんにちは世界。カタカナとひらがな、漢字も混ざっています。",
        "한국어: 안녕하세요, 세계! 유니코드 테스트입니다.",
        "Emoji: 😀 🎉 👩‍💻 👨‍👩‍👧‍👦 👍🏽 🇫🇷 🇯🇵 🏳️‍🌈 ❤️‍🔥",
        "Accents: café naïve façade coöperate Ångström señor Zürich Đà Nẵng",
        "Combining: e\u0301 a\u0300 o\u0308 n\u0303 (decomposed forms)",
        "RTL: مرحبا بالعالم — שלום עולם",
        "Math: ∀x ∈ ℝ, x² ≥ 0; ∑ᵢ aᵢ ≠ ∞; ½ ⅓ ¼",
        "Misc: “quotes” ‘single’ «guillemets» — en–dash … ellipsis ™ © ®",
    ]
    for block in range(1, 9):
        lines.append(f"## Abschnitt {block} / 第{block}節")
        lines.extend(f"- {sample}" for sample in samples)
        lines.append("")
    lines += ["```python", 'print("héllo wörld 🐍")', "```", "", "Fin. 終わり。 🏁"]
    return "\n".join(lines)


UNICODE_ANSWER = _unicode_answer()

BIG_OUTPUT_CMD = "seq 1 20000"
"""Prints 108,894 bytes: more than the rollout's 65,536-character ``aggregated_output`` cap."""

PATCH_ADD = """*** Begin Patch
*** Add File: notes/hello.txt
+Hello from apply_patch!
+Zweite Zeile — ünïcödé ✓
*** End Patch
"""

PATCH_UPDATE = """*** Begin Patch
*** Update File: config.ini
@@
 [server]
-port = 8000
+port = 9000
 host = localhost
*** End Patch
"""

PATCH_MISSING = """*** Begin Patch
*** Update File: missing.txt
@@
-old
+new
*** End Patch
"""


SCENARIOS: tuple[Scenario, ...] = (
    Scenario(
        name="plain_answer",
        description="One turn, one assistant message, no tools.",
        turns=(
            ScenarioTurn(
                prompt="Say hello in one short sentence.",
                responses=(Reply((Message("Hello! Nice to meet you."),)),),
                agent_messages=("Hello! Nice to meet you.",),
            ),
        ),
    ),
    Scenario(
        name="reasoning_answer",
        description="A reasoning item (two summary parts + raw content) before the answer.",
        turns=(
            ScenarioTurn(
                prompt="What is 17 * 23? Think first.",
                responses=(
                    Reply(
                        (
                            Reasoning(
                                summary=(
                                    "**Multiplying** 17 by 23",
                                    "17 * 20 = 340 and 17 * 3 = 51, so 391.",
                                ),
                                content=("17*23 = 17*20 + 17*3 = 340 + 51 = 391",),
                            ),
                            Message("17 × 23 = 391."),
                        )
                    ),
                ),
                agent_messages=("17 × 23 = 391.",),
                reasoning_summaries=(
                    "**Multiplying** 17 by 23",
                    "17 * 20 = 340 and 17 * 3 = 51, so 391.",
                ),
            ),
        ),
    ),
    Scenario(
        name="shell_success",
        description="exec_command `echo hello` (exit 0), then the answer.",
        turns=(
            ScenarioTurn(
                prompt="Run echo hello and tell me what it printed.",
                responses=(
                    Reply((ExecCommand("echo hello", call_id="call_echo_hello"),)),
                    Reply((Message("The command printed `hello`."),)),
                ),
                agent_messages=("The command printed `hello`.",),
                commands=(ExpectedCommand("call_echo_hello", "echo hello", 0, "hello"),),
            ),
        ),
    ),
    Scenario(
        name="shell_failure",
        description="exec_command `ls /nonexistent` exits nonzero (2); the turn still succeeds.",
        turns=(
            ScenarioTurn(
                prompt="List /nonexistent please.",
                responses=(
                    Reply((ExecCommand("ls /nonexistent", call_id="call_ls_missing"),)),
                    Reply((Message("`/nonexistent` does not exist (ls exited with 2)."),)),
                ),
                agent_messages=("`/nonexistent` does not exist (ls exited with 2).",),
                commands=(
                    ExpectedCommand(
                        "call_ls_missing", "ls /nonexistent", 2, "No such file or directory"
                    ),
                ),
            ),
        ),
    ),
    Scenario(
        name="multi_tool_calls",
        description=(
            "One turn, four model calls: a commentary message with two parallel exec_command "
            "calls, then a third command, then the final answer."
        ),
        setup_files={"data.txt": "alpha\nbeta\ngamma\n"},
        turns=(
            ScenarioTurn(
                prompt="Inspect data.txt: count its lines and show the first one.",
                responses=(
                    Reply(
                        (
                            Message(
                                "I'll count the lines and read the first one.", phase="commentary"
                            ),
                            ExecCommand("wc -l < data.txt", call_id="call_wc"),
                            ExecCommand("head -n 1 data.txt", call_id="call_head"),
                        )
                    ),
                    Reply((ExecCommand("grep -c a data.txt", call_id="call_grep"),)),
                    Reply((Message("data.txt has 3 lines; the first is `alpha`."),)),
                ),
                agent_messages=(
                    "I'll count the lines and read the first one.",
                    "data.txt has 3 lines; the first is `alpha`.",
                ),
                commands=(
                    ExpectedCommand("call_wc", "wc -l < data.txt", 0, "3"),
                    ExpectedCommand("call_head", "head -n 1 data.txt", 0, "alpha"),
                    ExpectedCommand("call_grep", "grep -c a data.txt", 0, "3"),
                ),
            ),
        ),
    ),
    Scenario(
        name="apply_patch_add",
        description="apply_patch (freeform custom tool) adds notes/hello.txt.",
        turns=(
            ScenarioTurn(
                prompt="Create notes/hello.txt with a greeting.",
                responses=(
                    Reply((ApplyPatch(PATCH_ADD, call_id="call_patch_add"),)),
                    Reply((Message("Created notes/hello.txt."),)),
                ),
                agent_messages=("Created notes/hello.txt.",),
                file_changes=(
                    ExpectedFileChange(
                        "call_patch_add",
                        "notes/hello.txt",
                        "add",
                        "Hello from apply_patch!\nZweite Zeile — ünïcödé ✓\n",
                    ),
                ),
            ),
        ),
    ),
    Scenario(
        name="apply_patch_update",
        description="apply_patch updates a pre-existing file in a git repository.",
        setup_files={"config.ini": "[server]\nport = 8000\nhost = localhost\n"},
        git_init=True,
        turns=(
            ScenarioTurn(
                prompt="Change the port in config.ini to 9000.",
                responses=(
                    Reply((ApplyPatch(PATCH_UPDATE, call_id="call_patch_update"),)),
                    Reply((Message("The port is now 9000."),)),
                ),
                agent_messages=("The port is now 9000.",),
                file_changes=(
                    ExpectedFileChange(
                        "call_patch_update",
                        "config.ini",
                        "update",
                        "[server]\nport = 9000\nhost = localhost\n",
                    ),
                ),
            ),
        ),
    ),
    Scenario(
        name="apply_patch_failure",
        description=(
            "apply_patch on a missing file fails verification: no FileChange item, only the "
            "custom tool call and its error output; the turn itself succeeds."
        ),
        turns=(
            ScenarioTurn(
                prompt="Patch missing.txt.",
                responses=(
                    Reply((ApplyPatch(PATCH_MISSING, call_id="call_patch_missing"),)),
                    Reply((Message("The patch failed: missing.txt does not exist."),)),
                ),
                agent_messages=("The patch failed: missing.txt does not exist.",),
                tool_outputs_contain={"call_patch_missing": "apply_patch verification failed"},
            ),
        ),
    ),
    Scenario(
        name="unicode_long",
        description="A unicode prompt and a ~6 KB answer (CJK, emoji, accents, RTL).",
        turns=(
            ScenarioTurn(
                prompt="Écris un texte multilingue 🌐 — 多言語のテキストをお願いします。",
                responses=(Reply((Message(UNICODE_ANSWER),)),),
                agent_messages=(UNICODE_ANSWER,),
            ),
        ),
    ),
    Scenario(
        name="large_output",
        description="A command printing ~109 KB; Codex truncates what it stores and sends.",
        turns=(
            ScenarioTurn(
                prompt="Print the numbers from 1 to 20000.",
                responses=(
                    Reply((ExecCommand(BIG_OUTPUT_CMD, call_id="call_seq"),)),
                    Reply((Message("Printed 20000 numbers."),)),
                ),
                agent_messages=("Printed 20000 numbers.",),
                commands=(
                    ExpectedCommand(
                        "call_seq", BIG_OUTPUT_CMD, 0, "19999\n20000", min_output_chars=60_000
                    ),
                ),
            ),
        ),
    ),
    Scenario(
        name="resume_followup",
        description="Turn 1 via `codex exec`, turn 2 via `codex exec resume <id>` (same file).",
        turns=(
            ScenarioTurn(
                prompt="Remember the word 'pineapple'.",
                responses=(Reply((Message("Got it: pineapple."),)),),
                agent_messages=("Got it: pineapple.",),
            ),
            ScenarioTurn(
                prompt="Which word did I ask you to remember?",
                responses=(
                    Reply((ExecCommand("echo pineapple", call_id="call_resume_echo"),)),
                    Reply((Message("You asked me to remember 'pineapple'."),)),
                ),
                agent_messages=("You asked me to remember 'pineapple'.",),
                commands=(ExpectedCommand("call_resume_echo", "echo pineapple", 0, "pineapple"),),
            ),
        ),
    ),
    Scenario(
        name="failed_turn_http400",
        description="The model call answers HTTP 400: the turn fails, codex exits nonzero.",
        turns=(
            ScenarioTurn(
                prompt="This request will be rejected.",
                responses=(
                    HttpError(
                        400,
                        "mock: Invalid 'input': this request was rejected.",
                        code="invalid_request",
                    ),
                ),
                error_contains="this request was rejected",
            ),
        ),
    ),
    Scenario(
        name="failed_turn_after_tool",
        description=(
            "A command runs, then the next model call ends in `response.failed`: the turn "
            "fails after partial progress."
        ),
        turns=(
            ScenarioTurn(
                prompt="Run a command, then fail.",
                responses=(
                    Reply(
                        (
                            Reasoning(summary=("Running a quick check",)),
                            ExecCommand("echo partial", call_id="call_partial"),
                        )
                    ),
                    ResponseFailed("mock: the model crashed mid-turn", code="server_error"),
                ),
                reasoning_summaries=("Running a quick check",),
                commands=(ExpectedCommand("call_partial", "echo partial", 0, "partial"),),
                error_contains="the model crashed mid-turn",
            ),
        ),
    ),
)

SCENARIOS_BY_NAME: dict[str, Scenario] = {s.name: s for s in SCENARIOS}


# --------------------------------------------------------------------------------------------
# Running a scenario
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ScenarioResult:
    """Everything a scenario run left behind, for assertions."""

    scenario: Scenario
    runs: tuple[CodexRun, ...]
    """One ``codex exec`` run per turn (turn 2+ are ``exec resume``)."""
    requests: tuple[RecordedRequest, ...]
    """Every request the mock model server received."""
    codex_home: CodexHome
    workdir: Path
    thread_id: str
    rollout_path: Path

    def rollout_lines(self) -> list[dict[str, Any]]:
        return read_rollout(self.rollout_path)


def _prepare_workdir(scenario: Scenario, workdir: Path) -> None:
    workdir.mkdir(parents=True, exist_ok=True)
    for rel, content in scenario.setup_files.items():
        target = workdir / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(content, encoding="utf-8")
    if scenario.git_init:
        git = shutil.which("git")
        if git is None:
            raise RuntimeError(f"scenario {scenario.name} needs git")
        env_args = ["-c", "user.name=Sessionbase Test", "-c", "user.email=test@example.invalid"]
        for args in (
            ["init", "-q", "-b", "main"],
            ["add", "-A"],
            [*env_args, "commit", "-q", "-m", "initial", "--allow-empty"],
            # A remote (never contacted) makes Codex record git.repository_url.
            ["remote", "add", "origin", "https://example.invalid/sessionbase/fixture.git"],
        ):
            subprocess.run([git, *args], cwd=workdir, check=True, capture_output=True)


def run_scenario(
    scenario: Scenario,
    workdir: Path,
    *,
    codex_home_parent: Path | None = None,
    timeout: float = 60.0,
    before_first_turn: Callable[[CodexHome], None] | None = None,
) -> ScenarioResult:
    """Play ``scenario`` through the real Codex CLI against a fresh mock server.

    Creates ``workdir`` (with the scenario's files) and a fresh ``CODEX_HOME`` under
    ``codex_home_parent`` (default :func:`~tests.support.codex_cli.codex_homes_root`); the
    caller owns both and should delete the home with ``result.codex_home.remove()``.
    ``before_first_turn`` is called with the new home before Codex first runs. Raises
    AssertionError if Codex's model calls do not line up with the script.
    """
    _prepare_workdir(scenario, workdir)
    runs: list[CodexRun] = []
    with MockModelServer(scenario.script) as server:
        home = make_codex_home(server.base_url, parent=codex_home_parent)
        if before_first_turn is not None:
            before_first_turn(home)  # e.g. start a mirror that watches the empty home
        thread_id: str | None = None
        for index, turn in enumerate(scenario.turns):
            run = run_codex_exec(
                home,
                turn.prompt,
                workdir=workdir,
                resume_thread_id=thread_id if index > 0 else None,
                timeout=timeout,
            )
            runs.append(run)
            if run.thread_id is None:
                raise AssertionError(
                    f"{scenario.name} turn {index}: no thread.started event "
                    f"(rc={run.returncode})\n{run.stdout}\n{run.stderr}"
                )
            if thread_id is not None and run.thread_id != thread_id:
                raise AssertionError(
                    f"{scenario.name}: resume reported thread {run.thread_id}, not {thread_id}"
                )
            thread_id = run.thread_id
        server.assert_script_consumed()
        requests = tuple(server.requests)
    assert thread_id is not None
    rollout = home.find_rollout(thread_id)
    if rollout is None:
        raise AssertionError(f"{scenario.name}: no rollout file for thread {thread_id}")
    return ScenarioResult(
        scenario=scenario,
        runs=tuple(runs),
        requests=requests,
        codex_home=home,
        workdir=workdir,
        thread_id=thread_id,
        rollout_path=rollout,
    )
