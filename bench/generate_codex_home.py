"""Generate a realistic synthetic ``$CODEX_HOME`` for benchmarks (deterministic by seed).

Envelope-format rollouts (codex-formats §2) under
``sessions/YYYY/MM/DD/rollout-<ts>-<uuidv7>.jsonl`` with the line mix of a 0.125-era
interactive (Extended-history) session: a ``session_meta`` with a ~20 KB
``base_instructions``; ``task_started``/``turn_context``/``task_complete`` per turn; the
injected developer, AGENTS.md and ``<environment_context>`` messages; user messages as both a
``response_item`` and a ``user_message`` event; reasoning items (summary + ~1 KB of base64
``encrypted_content``, sometimes echoed as ``agent_reasoning`` events); agent messages as
event + item; ``exec_command``/``shell_command`` calls with their outputs (a few of them
10–200 KB) and ``exec_command_end`` events; ``apply_patch`` custom tool calls with
``patch_apply_end``; the odd web search and aborted turn; repeated ``token_count`` lines.

Most threads are small, a few are large. ``--big-file``/``--big-file-mb`` also writes one
single rollout of that many MB with the same mix. Every thread is generated from its own
seed (``seed:index``), so output is identical whatever ``--jobs`` is. ``--lean`` keeps the
same threads and turns, and about as many transcript rows, but cuts what is never searched or
shown whole (injected instructions, encrypted reasoning, command output past 240 characters):
44 % of the bytes at 200 threads (1.8 KB of rollout per row instead of 4.2), so a home of a
million rows is generated and mirrored in minutes.

    uv run python bench/generate_codex_home.py --out /tmp/home --threads 500 --seed 1
    uv run python bench/generate_codex_home.py --out /tmp/big --threads 0 --big-file-mb 1024
"""

from __future__ import annotations

import argparse
import base64
import multiprocessing
import os
import random
import shutil
import string
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson

GENERATOR_VERSION = 1  # bump when the bytes a seed produces change
EPOCH = datetime(2026, 1, 5, 9, 0, 0, tzinfo=UTC)
SPAN_DAYS = 150
CLI_VERSIONS = ("0.118.0", "0.121.0", "0.125.0")
MODELS = ("gpt-5.5", "gpt-5.4-codex", "gpt-5.5")
ALNUM = string.ascii_letters + string.digits
HEX = "0123456789abcdef"
_DUMPS = orjson.dumps
_NL = orjson.OPT_APPEND_NEWLINE

# ----------------------------------------------------------------------------- text pools

_EN = (
    "the a to of and in is that for it with as on be this are by not or from at an which can "
    "will but if have has more one all we so use there their when what about into than then "
    "them also any only some other new these may such like make just how each first need "
    "should because check now still here file code test run change fix look update add keep "
    "make sure next step instead already before after again without while since both same "
    "output error value result function module class method call return line path config "
    "option flag default behaviour case issue problem approach plan done works failing passes"
).split()
_VERBS = (
    "get set load parse build sync read write flush commit render fetch update resolve apply"
).split()
_NOUNS = (
    "config thread message rollout offset batch store index session token patch cursor schema "
    "event record project skill worker queue cache handler client server request response"
).split()
_EXTS = (".py", ".ts", ".tsx", ".rs", ".go", ".md", ".json", ".toml", ".sql")
_DIRS = "src lib app core api cli web tests internal pkg utils server client components".split()
_PROJECTS = (
    "orbit ledger atlas quill harbor tessera nimbus falcon juniper mosaic cobalt prism "
    "lantern sable meridian ember glacier aurora basalt cinder delta fjord garnet helix "
    "indigo jasper kestrel lumen magnet nova onyx pylon quartz raven sierra tundra umbra "
    "vertex willow xenon yarrow zephyr"
).split()


def _ident(rng: random.Random) -> str:
    verb, noun = rng.choice(_VERBS), rng.choice(_NOUNS)
    return f"{verb}_{noun}" if rng.random() < 0.6 else f"{verb}{noun.capitalize()}"


def _relpath(rng: random.Random) -> str:
    parts = rng.sample(_DIRS, rng.randint(1, 3))
    return "/".join(parts) + "/" + rng.choice(_NOUNS) + "_" + rng.choice(_VERBS) + rng.choice(_EXTS)


def _prose_pool(rng: random.Random, size: int) -> str:
    out: list[str] = []
    n = 0
    while n < size:
        words = rng.choices(_EN, k=rng.randint(6, 22))
        if rng.random() < 0.35:
            words.insert(rng.randrange(len(words)), f"`{_ident(rng)}()`")
        if rng.random() < 0.2:
            words.insert(rng.randrange(len(words)), f"`{_relpath(rng)}`")
        sentence = " ".join(words).capitalize() + rng.choice(".....?:")
        if rng.random() < 0.12:
            sentence = "\n\n- " + sentence
        out.append(sentence)
        n += len(sentence) + 1
    return " ".join(out)


def _log_pool(rng: random.Random, size: int) -> str:
    out: list[str] = []
    n = 0
    while n < size:
        r = rng.random()
        if r < 0.3:
            call = f"{_ident(rng)}({_ident(rng)}, {rng.choice(_NOUNS)}={rng.randint(0, 99)})"
            line = f"{_relpath(rng)}:{rng.randint(1, 900)}:    {call}"
        elif r < 0.5:
            status = "PASSED" if rng.random() < 0.93 else "FAILED"
            test = f"tests/{rng.choice(_DIRS)}/test_{rng.choice(_NOUNS)}.py::test_{_ident(rng)}"
            line = f"{test} {status} [{rng.randint(0, 100):3d}%]"
        elif r < 0.65:
            size, day = rng.randint(80, 90000), rng.randint(1, 28)
            hour, minute = rng.randint(0, 23), rng.randint(0, 59)
            name = f"{rng.choice(_NOUNS)}_{rng.choice(_VERBS)}{rng.choice(_EXTS)}"
            line = f"-rw-r--r--  1 dev staff {size:6d} May {day:2d} {hour:02d}:{minute:02d} {name}"
        elif r < 0.85:
            indent = " " * (4 * rng.randint(0, 3))
            args = f"{rng.choice(_NOUNS)}.{rng.choice(_NOUNS)}, {rng.randint(0, 512)}"
            line = f"{rng.choice('+- ')}{indent}{rng.choice(_NOUNS)} = {_ident(rng)}({args})"
        else:
            line = " ".join(rng.choices(_EN, k=rng.randint(4, 14)))
        out.append(line)
        n += len(line) + 1
    return "\n".join(out) + "\n"


@dataclass
class Pools:
    prose: str
    log: str
    b64: str
    base_instructions: tuple[str, ...]
    developer: tuple[str, ...]
    agents_md: tuple[str, ...]
    collab: str


def make_pools(seed: int, lean: bool = False) -> Pools:
    """The text every thread slices from: built once per process, deterministic by seed."""
    rng = random.Random(f"pools:{seed}")
    cut = 20 if lean else 1  # --lean: injected instructions a twentieth as long
    prose = _prose_pool(rng, 2_000_000)
    log = _log_pool(rng, 4_000_000)
    b64 = base64.b64encode(rng.randbytes(3_000_000)).decode().replace("+", "-").replace("/", "_")
    base = tuple(
        "You are Codex, a coding agent based on GPT-5. You and the user share one workspace.\n\n"
        + "# Personality\n\n"
        + _slice(rng, prose, (20_000 + 800 * i) // cut)
        for i in range(len(CLI_VERSIONS))
    )
    developer = tuple(
        "<permissions instructions>\nFilesystem sandboxing defines which files can be read or "
        "written. " + _slice(rng, prose, n // cut) + "\n</permissions instructions>"
        for n in (4_000, 9_000, 24_000)
    )
    agents = tuple(
        "<INSTRUCTIONS>\n# Repository guidelines\n\n"
        + _slice(rng, prose, n // cut)
        + "\n</INSTRUCTIONS>"
        for n in (600, 1_400, 3_000)
    )
    collab = "# Collaboration Mode: Default\n\n" + _slice(rng, prose, 2_400 // cut)
    return Pools(prose, log, b64, base, developer, agents, collab)


def _slice(rng: random.Random, pool: str, n: int) -> str:
    """``n`` characters from a random place in ``pool`` (repeating it if ``n`` is larger)."""
    if n <= 0:
        return ""
    if n >= len(pool):
        return (pool * (n // len(pool) + 1))[:n]
    start = rng.randrange(len(pool) - n)
    return pool[start : start + n]


_POOLS: Pools | None = None
_POOL_SEED: int | None = None
_LEAN = False  # set by generate() before its workers fork


def pools(seed: int) -> Pools:
    global _POOLS, _POOL_SEED
    if _POOLS is None or _POOL_SEED != seed:
        _POOLS, _POOL_SEED = make_pools(seed, _LEAN), seed
    return _POOLS


# ------------------------------------------------------------------------------ helpers


def uuid7(rng: random.Random, ms: int) -> str:
    value = (ms << 80) | rng.getrandbits(80)
    value = (value & ~(0xF << 76)) | (0x7 << 76)
    value = (value & ~(0x3 << 62)) | (0x2 << 62)
    h = f"{value:032x}"
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


def stamp(ms: int) -> str:
    t = time.gmtime(ms // 1000)
    return (
        f"{t.tm_year:04d}-{t.tm_mon:02d}-{t.tm_mday:02d}T"
        f"{t.tm_hour:02d}:{t.tm_min:02d}:{t.tm_sec:02d}.{ms % 1000:03d}Z"
    )


def rollout_relpath(ms: int, thread_id: str) -> str:
    t = time.gmtime(ms // 1000)
    return (
        f"sessions/{t.tm_year:04d}/{t.tm_mon:02d}/{t.tm_mday:02d}/rollout-"
        f"{t.tm_year:04d}-{t.tm_mon:02d}-{t.tm_mday:02d}T{t.tm_hour:02d}-{t.tm_min:02d}-"
        f"{t.tm_sec:02d}-{thread_id}.jsonl"
    )


# ------------------------------------------------------------------------------ threads


@dataclass
class ThreadPlan:
    index: int
    thread_id: str
    start_ms: int
    relpath: str
    turns: int


def plan_thread(seed: int, index: int) -> ThreadPlan:
    """Identity, start time and size class of thread ``index`` (cheap; no text)."""
    rng = random.Random(f"plan:{seed}:{index}")
    start_ms = int(EPOCH.timestamp() * 1000) + rng.randrange(SPAN_DAYS * 86_400_000)
    thread_id = uuid7(rng, start_ms)
    r = rng.random()
    if r < 0.62:
        turns = rng.randint(1, 3)  # most threads: a question or two
    elif r < 0.92:
        turns = rng.randint(4, 12)
    else:
        turns = rng.randint(13, 60)  # a few long working sessions
    return ThreadPlan(index, thread_id, start_ms, rollout_relpath(start_ms, thread_id), turns)


class ThreadWriter:
    """Produces the lines of one thread; counts the transcript rows they should make."""

    def __init__(self, rng: random.Random, p: Pools, thread_id: str, start_ms: int) -> None:
        self.rng = rng
        self.p = p
        self.thread_id = thread_id
        self.clock = start_ms
        self.rows = 0
        self.lines = 0
        self.turn_no = 0
        project = rng.choice(_PROJECTS)
        self.cwd = f"/home/dev/src/{project}"
        self.project = project
        version = rng.randrange(len(CLI_VERSIONS))
        self.cli_version = CLI_VERSIONS[version]
        self.base = p.base_instructions[version]
        self.model = MODELS[version]
        self.source = rng.choices(("cli", "vscode", "exec"), (0.6, 0.3, 0.1))[0]
        self.reasoning_events = rng.random() < 0.4  # older builds echo summaries as events
        self.tokens = [0, 0, 0, 0]
        self.rate_reset = start_ms // 1000 + 18_000

    # -- primitives

    def _tick(self, lo: int, hi: int) -> str:
        self.clock += self.rng.randint(lo, hi)
        return stamp(self.clock)

    def _line(self, kind: str, payload: dict[str, Any], lo: int = 5, hi: int = 400) -> bytes:
        self.lines += 1
        return _DUMPS(
            {"timestamp": self._tick(lo, hi), "type": kind, "payload": payload}, option=_NL
        )

    def _event(self, payload: dict[str, Any], lo: int = 5, hi: int = 400) -> bytes:
        return self._line("event_msg", payload, lo, hi)

    def _item(self, payload: dict[str, Any], lo: int = 5, hi: int = 400) -> bytes:
        return self._line("response_item", payload, lo, hi)

    def _call_id(self) -> str:
        return "call_" + "".join(self.rng.choices(ALNUM, k=24))

    def _prose(self, lo: int, hi: int) -> str:
        return _slice(self.rng, self.p.prose, self.rng.randint(lo, hi)).strip() or "ok"

    def _output(self) -> str:
        rng = self.rng
        r = rng.random()
        if r < 0.035:
            n = int(10_000 * (20 ** rng.random()))  # 10–200 KB, log-uniform
        elif r < 0.25:
            n = 0
        else:
            n = min(int(rng.lognormvariate(6.6, 1.0)), 9_000)
        if _LEAN:
            n = min(n, 240)
        text = _slice(rng, self.p.log, n)
        cut = text.find("\n")
        return text[cut + 1 :] if 0 <= cut < 200 else text

    # -- blocks

    def session_meta(self) -> bytes:
        rng = self.rng
        payload = {
            "id": self.thread_id,
            "timestamp": stamp(self.clock),
            "cwd": self.cwd,
            "originator": {"cli": "codex-tui", "vscode": "codex_vscode", "exec": "codex_exec"}[
                self.source
            ],
            "cli_version": self.cli_version,
            "source": self.source,
            "model_provider": "openai",
            "base_instructions": {"text": self.base},
            "git": {
                "commit_hash": "".join(rng.choices(HEX, k=40)),
                "branch": rng.choice(("main", "main", f"feature/{_ident(rng)}")),
                "repository_url": f"git@github.com:example/{self.project}.git",
            },
        }
        return self._line("session_meta", payload, 20, 80)

    def token_count(self) -> bytes:
        rng, t = self.rng, self.tokens
        last = [rng.randint(8_000, 60_000), 0, rng.randint(20, 2_000), 0]
        last[1] = int(last[0] * rng.uniform(0.5, 0.95))
        last[3] = rng.randint(0, last[2])
        for i in range(4):
            t[i] += last[i]

        def usage(v: list[int]) -> dict[str, int]:
            return {
                "input_tokens": v[0],
                "cached_input_tokens": v[1],
                "output_tokens": v[2],
                "reasoning_output_tokens": v[3],
                "total_tokens": v[0] + v[2],
            }

        info = None
        if rng.random() > 0.08:
            info = {
                "total_token_usage": usage(t),
                "last_token_usage": usage(last),
                "model_context_window": 258_400,
            }
        return self._event(
            {
                "type": "token_count",
                "info": info,
                "rate_limits": {
                    "limit_id": "codex",
                    "limit_name": None,
                    "primary": {
                        "used_percent": round(rng.uniform(0, 60), 1),
                        "window_minutes": 300,
                        "resets_at": self.rate_reset,
                    },
                    "secondary": {
                        "used_percent": round(rng.uniform(0, 30), 1),
                        "window_minutes": 10_080,
                        "resets_at": self.rate_reset + 400_000,
                    },
                    "credits": None,
                    "plan_type": "pro",
                    "rate_limit_reached_type": None,
                },
            },
            1,
            30,
        )

    def reasoning(self) -> Iterator[bytes]:
        rng = self.rng
        summaries = [
            "**" + self._prose(15, 50).rstrip(".?:") + "**\n\n" + self._prose(60, 500)
            for _ in range(rng.choices((0, 1, 2), (0.35, 0.5, 0.15))[0])
        ]
        if self.reasoning_events:
            for text in summaries:
                yield self._event({"type": "agent_reasoning", "text": text}, 300, 4_000)
        enc = "gAAAAAB" + _slice(
            rng, self.p.b64, rng.randint(40, 80) if _LEAN else rng.randint(900, 1_500)
        )
        yield self._item(
            {
                "type": "reasoning",
                "summary": [{"type": "summary_text", "text": s} for s in summaries],
                "content": None,
                "encrypted_content": enc,
            },
            300,
            6_000,
        )
        self.rows += len(summaries)

    def agent_message(self, phase: str, lo: int, hi: int) -> Iterator[bytes]:
        text = self._prose(lo, hi)
        yield self._event(
            {"type": "agent_message", "message": text, "phase": phase, "memory_citation": None},
            200,
            3_000,
        )
        yield self._item(
            {
                "type": "message",
                "role": "assistant",
                "content": [{"type": "output_text", "text": text}],
                "phase": phase,
            }
        )
        self.rows += 1

    def user_message(self, text: str) -> Iterator[bytes]:
        yield self._item(
            {"type": "message", "role": "user", "content": [{"type": "input_text", "text": text}]},
            2_000,
            90_000,
        )
        yield self._event(
            {
                "type": "user_message",
                "message": text,
                "images": [],
                "local_images": [],
                "text_elements": [],
            },
            1,
            5,
        )
        self.rows += 1

    def tool_calls(self, turn_id: str) -> Iterator[bytes]:
        """1–3 parallel calls, a token count, then their outputs (and end events)."""
        rng = self.rng
        calls: list[tuple[str, str, Any]] = []
        for _ in range(rng.choices((1, 2, 3), (0.7, 0.2, 0.1))[0]):
            call_id = self._call_id()
            r = rng.random()
            if r < 0.1:
                path = _relpath(rng)
                body = "\n".join("+" + ln for ln in self._prose(100, 2_500).split(". "))
                patch = f"*** Begin Patch\n*** Update File: {path}\n@@\n{body}\n*** End Patch\n"
                yield self._item(
                    {
                        "type": "custom_tool_call",
                        "status": "completed",
                        "call_id": call_id,
                        "name": "apply_patch",
                        "input": patch,
                    },
                    500,
                    8_000,
                )
                calls.append(("apply_patch", call_id, (path, body)))
            elif r < 0.12:
                query = self._prose(30, 90)
                action = {"type": "search", "query": query, "queries": [query]}
                yield self._event(
                    {"type": "web_search_end", "call_id": "ws_" + call_id, "query": query,
                     "action": action},
                    500,
                    4_000,
                )  # fmt: skip
                yield self._item(
                    {"type": "web_search_call", "status": "completed", "action": action}
                )
                self.rows += 1
                continue
            else:
                command = rng.choice(
                    (
                        f"sed -n '1,{rng.randint(40, 400)}p' {_relpath(rng)}",
                        f'rg -n "{_ident(rng)}" {rng.choice(_DIRS)}',
                        f"ls -la {rng.choice(_DIRS)}",
                        "git status --short",
                        "git diff --stat",
                        f"uv run pytest -q tests/{rng.choice(_DIRS)}",
                        f"cat {_relpath(rng)}",
                    )
                )
                if r < 0.7:
                    args = {
                        "cmd": command,
                        "workdir": self.cwd,
                        "yield_time_ms": 1000,
                        "max_output_tokens": 12000,
                    }
                    name = "exec_command"
                else:
                    args = {"command": command, "workdir": self.cwd, "timeout_ms": 120000}
                    name = "shell_command"
                yield self._item(
                    {
                        "type": "function_call",
                        "name": name,
                        "arguments": orjson.dumps(args).decode(),
                        "call_id": call_id,
                    },
                    500,
                    8_000,
                )
                calls.append((name, call_id, command))
            self.rows += 1
        yield self.token_count()
        for name, call_id, extra in calls:
            if name == "apply_patch":
                path, _body = extra
                out = f"Success. Updated the following files:\nM {path}\n"
                yield self._event(
                    {
                        "type": "patch_apply_end",
                        "call_id": call_id,
                        "turn_id": turn_id,
                        "stdout": out,
                        "stderr": "",
                        "success": True,
                        "changes": {
                            f"{self.cwd}/{path}": {
                                "type": "update",
                                "unified_diff": "@@ -1,2 +1,6 @@\n" + _body[:4000],
                                "move_path": None,
                            }
                        },
                        "status": "completed",
                    },
                    200,
                    3_000,
                )
                yield self._item(
                    {
                        "type": "custom_tool_call_output",
                        "call_id": call_id,
                        "output": orjson.dumps(
                            {"output": out, "metadata": {"exit_code": 0, "duration_seconds": 0.1}}
                        ).decode(),
                    },
                    5,
                    200,
                )
                continue
            output = self._output()
            code = 0 if self.rng.random() < 0.9 else self.rng.choice((1, 2, 127))
            wall = round(self.rng.uniform(0.01, 12.0), 4)
            if name == "exec_command":
                text = (
                    f"Chunk ID: {''.join(self.rng.choices(HEX, k=6))}\nWall time: {wall} seconds\n"
                    f"Process exited with code {code}\nOriginal token count: {len(output) // 4}\n"
                    f"Output:\n{output}"
                )
            else:
                text = f"Exit code: {code}\nWall time: {wall} seconds\nOutput:\n{output}"
            yield self._item(
                {"type": "function_call_output", "call_id": call_id, "output": text}, 100, 12_000
            )
            if name == "exec_command":
                aggregated = output
                if len(aggregated) > 16_384:  # Extended history middle-truncates it
                    aggregated = (
                        aggregated[:8_192]
                        + f"\n… {len(aggregated) - 16_384} chars truncated …\n"
                        + aggregated[-8_192:]
                    )
                yield self._event(
                    {
                        "type": "exec_command_end",
                        "call_id": call_id,
                        "process_id": str(self.rng.randint(1000, 99999)),
                        "turn_id": turn_id,
                        "command": ["/bin/zsh", "-lc", extra],
                        "cwd": self.cwd,
                        "parsed_cmd": [{"type": "unknown", "cmd": extra}],
                        "source": "unified_exec_startup",
                        "stdout": "",
                        "stderr": "",
                        "aggregated_output": aggregated,
                        "exit_code": code,
                        "duration": {"secs": int(wall), "nanos": int((wall % 1) * 1e9)},
                        "formatted_output": "",
                        "status": "completed" if code == 0 else "failed",
                    },
                    1,
                    50,
                )

    def turn(self, steps: int) -> Iterator[bytes]:
        rng = self.rng
        self.turn_no += 1
        turn_id = uuid7(rng, self.clock + 1)
        started = self.clock // 1000
        yield self._event(
            {
                "type": "task_started",
                "turn_id": turn_id,
                "started_at": started,
                "model_context_window": 258_400,
                "collaboration_mode_kind": "default",
            },
            1_000,
            120_000,
        )
        if self.turn_no == 1:
            yield self._item(
                {
                    "type": "message",
                    "role": "developer",
                    "content": [{"type": "input_text", "text": rng.choice(self.p.developer)}],
                },
                1,
                5,
            )
            context = (
                f"<environment_context>\n  <cwd>{self.cwd}</cwd>\n  <shell>zsh</shell>\n"
                f"  <current_date>{stamp(self.clock)[:10]}</current_date>\n"
                "  <timezone>Europe/Berlin</timezone>\n</environment_context>"
            )
            yield self._item(
                {
                    "type": "message",
                    "role": "user",
                    "content": [
                        {
                            "type": "input_text",
                            "text": f"# AGENTS.md instructions for {self.cwd}\n\n"
                            + rng.choice(self.p.agents_md),
                        },
                        {"type": "input_text", "text": context},
                    ],
                },
                1,
                5,
            )
        yield self._line(
            "turn_context",
            {
                "turn_id": turn_id,
                "cwd": self.cwd,
                "current_date": stamp(self.clock)[:10],
                "timezone": "Europe/Berlin",
                "approval_policy": "on-request",
                "sandbox_policy": {
                    "type": "workspace-write",
                    "writable_roots": [],
                    "network_access": False,
                    "exclude_tmpdir_env_var": False,
                    "exclude_slash_tmp": False,
                },
                "model": self.model,
                "personality": "pragmatic",
                "collaboration_mode": {
                    "mode": "default",
                    "settings": {
                        "model": self.model,
                        "reasoning_effort": "medium",
                        "developer_instructions": self.p.collab,
                    },
                },
                "realtime_active": False,
                "effort": "medium",
                "summary": "auto",
            },
            1,
            5,
        )
        yield from self.user_message(self._prose(20, 1_200))
        for step in range(steps):
            yield from self.reasoning()
            if rng.random() < 0.3:
                yield from self.agent_message("commentary", 60, 400)
            yield from self.tool_calls(turn_id)
            if rng.random() < 0.5:
                yield self.token_count()
            if step == steps - 1 and rng.random() < 0.02:
                yield self._event(
                    {"type": "turn_aborted", "turn_id": turn_id, "reason": "interrupted"},
                    500,
                    9_000,
                )
                self.rows += 1
                return
        yield from self.reasoning()
        final = self._prose(200, 2_500)
        yield self._event(
            {"type": "agent_message", "message": final, "phase": "final_answer",
             "memory_citation": None},
            500,
            9_000,
        )  # fmt: skip
        yield self._item(
            {
                "type": "message",
                "role": "assistant",
                "content": [{"type": "output_text", "text": final}],
                "phase": "final_answer",
            }
        )
        self.rows += 1
        yield self.token_count()
        yield self._event(
            {
                "type": "task_complete",
                "turn_id": turn_id,
                "last_agent_message": final,
                "completed_at": self.clock // 1000,
                "duration_ms": self.clock - started * 1000,
                "time_to_first_token_ms": rng.randint(400, 6_000),
            },
            1,
            40,
        )

    def steps(self) -> int:
        return max(1, min(60, int(self.rng.lognormvariate(1.6, 0.8))))


@dataclass
class FileStats:
    index: int
    path: str
    bytes: int
    lines: int
    rows: int


def write_thread(out: Path, seed: int, index: int) -> FileStats:
    """Write thread ``index`` of home ``seed`` to ``out``; identical whatever the process."""
    plan = plan_thread(seed, index)
    rng = random.Random(f"thread:{seed}:{index}")
    w = ThreadWriter(rng, pools(seed), plan.thread_id, plan.start_ms)
    path = out / plan.relpath
    path.parent.mkdir(parents=True, exist_ok=True)
    size = 0
    with open(path, "wb", buffering=1 << 20) as fh:
        line = w.session_meta()
        fh.write(line)
        size += len(line)
        for _ in range(plan.turns):
            for line in w.turn(w.steps()):
                fh.write(line)
                size += len(line)
    os.utime(path, ns=(w.clock * 1_000_000, w.clock * 1_000_000))
    return FileStats(index, str(path), size, w.lines, w.rows)


def write_big_file(out: Path, seed: int, megabytes: float) -> FileStats:
    """One rollout of at least ``megabytes`` MB (10^6 bytes) with the usual mix."""
    rng = random.Random(f"big:{seed}")
    start_ms = int(EPOCH.timestamp() * 1000) - 86_400_000 * 3
    thread_id = uuid7(rng, start_ms)
    w = ThreadWriter(rng, pools(seed), thread_id, start_ms)
    path = out / rollout_relpath(start_ms, thread_id)
    path.parent.mkdir(parents=True, exist_ok=True)
    target = int(megabytes * 1_000_000)
    size = 0
    chunk: list[bytes] = []
    with open(path, "wb") as fh:
        chunk.append(w.session_meta())
        while size < target:
            for line in w.turn(w.steps()):
                chunk.append(line)
                size += len(line)
            if len(chunk) > 2_000:
                fh.write(b"".join(chunk))
                chunk.clear()
        fh.write(b"".join(chunk))
    size = path.stat().st_size
    return FileStats(-1, str(path), size, w.lines, w.rows)


def append_lines(seed: int, thread_id: str, cwd_start_ms: int) -> Iterator[bytes]:
    """Endless realistic lines for an existing thread (for live-lag benchmarks)."""
    rng = random.Random(f"live:{seed}:{thread_id}")
    w = ThreadWriter(rng, pools(seed), thread_id, cwd_start_ms)
    w.turn_no = 1  # no first-turn preamble
    while True:
        yield from w.turn(w.steps())


def thread_start_ms(path: Path) -> int:
    """Wall-clock ms of the last line of a generated rollout (new lines continue from it)."""
    with open(path, "rb") as fh:
        fh.seek(max(0, path.stat().st_size - 300_000))
        last = fh.read().rstrip(b"\n").rsplit(b"\n", 1)[-1]
    ts = orjson.loads(last)["timestamp"]
    return int(datetime.fromisoformat(ts).timestamp() * 1000)


# ------------------------------------------------------------------------------ homes


@dataclass
class HomeStats:
    files: int = 0
    bytes: int = 0
    lines: int = 0
    rows: int = 0
    seconds: float = 0.0

    def add(self, s: FileStats) -> None:
        self.files += 1
        self.bytes += s.bytes
        self.lines += s.lines
        self.rows += s.rows

    def summary(self) -> str:
        return (
            f"{self.files} files, {self.bytes / 1e6:.1f} MB, {self.lines} lines, "
            f"~{self.rows} transcript rows in {self.seconds:.1f} s"
        )


def _worker_init(seed: int) -> None:
    pools(seed)


def _write_one(args: tuple[str, int, int]) -> FileStats:
    out, seed, index = args
    return write_thread(Path(out), seed, index)


def generate(
    out: Path,
    *,
    threads: int,
    seed: int = 1,
    big_file_mb: float | None = None,
    total_mb: float | None = None,
    target_rows: int | None = None,
    jobs: int | None = None,
    log: bool = False,
    lean: bool = False,
) -> HomeStats:
    """Write a Codex home under ``out``: up to ``threads`` threads, stopping early once
    ``total_mb`` MB or ``target_rows`` transcript rows are reached; plus the big file.
    ``lean``: the same rows in fewer bytes (the module docstring).

    Returns what was written. ``out`` is created; existing files in it are overwritten.
    """
    global _LEAN, _POOLS
    if lean != _LEAN:
        _LEAN, _POOLS = lean, None
    began = time.perf_counter()
    out.mkdir(parents=True, exist_ok=True)
    stats = HomeStats()
    jobs = max(1, jobs or os.cpu_count() or 1)

    def done() -> bool:
        return (total_mb is not None and stats.bytes >= total_mb * 1e6) or (
            target_rows is not None and stats.rows >= target_rows
        )

    last_index = -1
    if threads > 0:
        pools(seed)  # build once before forking
        tasks = ((str(out), seed, i) for i in range(threads))
        ctx = multiprocessing.get_context("fork")
        with ctx.Pool(jobs, initializer=_worker_init, initargs=(seed,)) as pool:
            for s in pool.imap(_write_one, tasks, chunksize=4):
                stats.add(s)
                last_index = s.index
                if log and stats.files % 500 == 0:
                    print(f"  … {stats.files} threads, {stats.bytes / 1e6:.0f} MB", flush=True)
                if done():
                    break
            pool.terminate()
        # Threads written past the stopping point by other workers are not part of the home.
        for i in range(last_index + 1, threads):
            path = out / plan_thread(seed, i).relpath
            if not path.exists() and i > last_index + 8 * jobs + 64:
                break
            path.unlink(missing_ok=True)
    names = [plan_thread(seed, i) for i in range(0, last_index + 1, 7)]
    with open(out / "session_index.jsonl", "wb") as fh:
        for plan in names:
            fh.write(
                _DUMPS(
                    {
                        "id": plan.thread_id,
                        "thread_name": f"Work on {plan.relpath[-12:-6]}",
                        "updated_at": stamp(plan.start_ms + 3_600_000),
                    },
                    option=_NL,
                )
            )
    if big_file_mb:
        stats.add(write_big_file(out, seed, big_file_mb))
    stats.seconds = time.perf_counter() - began
    return stats


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, required=True, help="The Codex home to write.")
    parser.add_argument("--threads", type=int, default=200, help="Threads (rollout files).")
    parser.add_argument("--seed", type=int, default=1, help="Same seed, same bytes.")
    parser.add_argument(
        "--big-file-mb",
        type=float,
        default=None,
        help="Also write one single rollout of this many MB (with --big-file: 1024).",
    )
    parser.add_argument("--big-file", action="store_true", help="Write a 1024 MB single rollout.")
    parser.add_argument("--total-mb", type=float, help="Stop adding threads past this many MB.")
    parser.add_argument("--target-rows", type=int, help="Stop once ~this many rows are expected.")
    parser.add_argument("--jobs", type=int, default=None, help="Worker processes (default: CPUs).")
    parser.add_argument("--clean", action="store_true", help="Delete --out first.")
    parser.add_argument(
        "--lean", action="store_true", help="About the same rows in under half the bytes."
    )
    args = parser.parse_args()
    big = args.big_file_mb if args.big_file_mb is not None else (1024 if args.big_file else None)
    if args.clean and args.out.exists():
        shutil.rmtree(args.out)
    stats = generate(
        args.out,
        threads=args.threads,
        seed=args.seed,
        big_file_mb=big,
        total_mb=args.total_mb,
        target_rows=args.target_rows,
        jobs=args.jobs,
        log=True,
        lean=args.lean,
    )
    print(f"{args.out}: {stats.summary()}")


if __name__ == "__main__":
    main()
