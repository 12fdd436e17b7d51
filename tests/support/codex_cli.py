"""Run the pinned, real Codex CLI (``codex exec --json``) against a loopback mock model server.

Why: sessionbase mirrors the files that Codex writes; the only trustworthy source of those files
is the real binary. The version is pinned in ``<repo>/package.json`` and installed by
``npm install`` into ``<repo>/node_modules`` (gitignored).

Every run gets an isolated ``CODEX_HOME`` holding a generated ``config.toml`` that points a
custom model provider at the mock (no retries, no update check, no analytics), an isolated
``HOME``, stdin from ``/dev/null`` and a hard timeout.

Where ``CODEX_HOME`` lives: Codex 0.169.0 warns ``Refusing to create helper binaries under
temporary dir "/tmp"`` when ``CODEX_HOME`` is inside the system temp dir (its ``PATH`` aliases,
e.g. the ``apply_patch`` helper, are then missing), and pytest's ``tmp_path`` is under ``/tmp``.
So homes are created under :func:`codex_homes_root` (``/var/tmp/sessionbase-codex-tests`` unless
``SESSIONBASE_CODEX_TMP`` says otherwise); the work directory may stay under ``tmp_path``.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import tempfile
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import IO, Any

__all__ = [
    "CODEX_VERSION",
    "DEFAULT_MODEL",
    "MOCK_API_KEY_ENV",
    "REPO_ROOT",
    "CodexHome",
    "CodexProcess",
    "CodexRun",
    "CodexTimeout",
    "CodexUnavailable",
    "codex_homes_root",
    "codex_unavailable_reason",
    "find_codex_binary",
    "find_node",
    "find_rollout",
    "harness_setting",
    "make_codex_home",
    "read_rollout",
    "require_codex",
    "run_codex_exec",
    "start_codex_exec",
]

CODEX_VERSION = "0.169.0"
"""The Codex CLI version pinned in ``package.json``; the harness refuses any other."""

DEFAULT_MODEL = "gpt-5.5"
"""A slug Codex 0.169.0 has metadata for: it then offers ``exec_command`` and ``apply_patch``
and prints no "model metadata not found" error item."""

MOCK_API_KEY_ENV = "SESSIONBASE_MOCK_API_KEY"
"""The provider's ``env_key``: Codex requires it to be set and sends it as a Bearer token."""

MOCK_PROVIDER_ID = "sessionbase_mock"

REPO_ROOT = Path(__file__).resolve().parents[2]

_ENV_AT_IMPORT = {k: v for k, v in os.environ.items() if k.startswith("SESSIONBASE_")}


def harness_setting(name: str) -> str | None:
    """A ``SESSIONBASE_*`` harness setting from the environment, falling back to its value when
    this module was imported: the suite's autouse fixture scrubs ``SESSIONBASE_*`` variables
    while each test runs, but the harness knobs must still reach the fixtures."""
    return os.environ.get(name) or _ENV_AT_IMPORT.get(name)


class CodexUnavailable(RuntimeError):
    """node or the pinned Codex CLI is missing or has the wrong version."""


class CodexTimeout(AssertionError):
    """Codex did not exit in time; carries whatever it printed before being killed."""

    def __init__(self, message: str, stdout: str, stderr: str) -> None:
        super().__init__(
            f"{message}\n--- stdout ---\n{stdout[-4000:]}\n--- stderr ---\n{stderr[-4000:]}"
        )
        self.stdout = stdout
        self.stderr = stderr


# --------------------------------------------------------------------------------------------
# Locating node and the binary
# --------------------------------------------------------------------------------------------


def find_node() -> Path | None:
    """The ``node`` executable on PATH (the npm ``codex`` launcher is a node script)."""
    found = shutil.which("node")
    return Path(found) if found else None


def find_codex_binary(repo_root: Path = REPO_ROOT) -> Path | None:
    """``<repo>/node_modules/.bin/codex`` as installed by ``npm install``, if present.

    ``SESSIONBASE_CODEX_BIN`` overrides the location (its version is still checked).
    """
    override = harness_setting("SESSIONBASE_CODEX_BIN")
    candidate = Path(override) if override else repo_root / "node_modules" / ".bin" / "codex"
    return candidate if candidate.exists() else None


_version_cache: dict[Path, str] = {}


def _codex_version(binary: Path) -> str:
    if binary not in _version_cache:
        proc = subprocess.run(
            [str(binary), "--version"],
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        )
        _version_cache[binary] = proc.stdout.strip() or proc.stderr.strip()
    return _version_cache[binary]


def codex_unavailable_reason(repo_root: Path = REPO_ROOT) -> str | None:
    """Why the real Codex CLI cannot be run here, or None if it can."""
    if find_node() is None:
        return "node is not on PATH (needed by the npm-installed Codex CLI)"
    binary = find_codex_binary(repo_root)
    override = harness_setting("SESSIONBASE_CODEX_BIN")
    if binary is None and override:
        return f"SESSIONBASE_CODEX_BIN={override} does not exist"
    if binary is None:
        return (
            f"Codex CLI not installed: run `npm install` in {repo_root} "
            f"(package.json pins @openai/codex {CODEX_VERSION})"
        )
    try:
        version = _codex_version(binary)
    except (OSError, subprocess.SubprocessError) as exc:
        return f"cannot run {binary} --version: {exc}"
    if version.split()[-1:] != [CODEX_VERSION]:
        return f"{binary} reports {version!r}, expected codex-cli {CODEX_VERSION}"
    return None


def require_codex(repo_root: Path = REPO_ROOT) -> Path:
    """The pinned Codex binary; raise :class:`CodexUnavailable` with the reason otherwise."""
    reason = codex_unavailable_reason(repo_root)
    if reason is not None:
        raise CodexUnavailable(reason)
    binary = find_codex_binary(repo_root)
    assert binary is not None
    return binary


# --------------------------------------------------------------------------------------------
# CODEX_HOME
# --------------------------------------------------------------------------------------------


def codex_homes_root() -> Path:
    """A directory outside the system temp dir for throwaway ``CODEX_HOME`` trees (see module
    docstring); ``SESSIONBASE_CODEX_TMP`` overrides it."""
    root = Path(harness_setting("SESSIONBASE_CODEX_TMP") or "/var/tmp/sessionbase-codex-tests")
    root.mkdir(parents=True, exist_ok=True)
    return root


def _toml_str(value: str) -> str:
    return json.dumps(value)  # a JSON string literal is a valid TOML basic string


@dataclass(frozen=True)
class CodexHome:
    """An isolated ``CODEX_HOME`` whose ``config.toml`` targets a mock model server."""

    path: Path
    """The ``CODEX_HOME`` directory itself."""
    base_url: str
    user_home: Path
    """An empty directory used as ``HOME`` for Codex (keeps the real ~/.bashrc, ~/.gitconfig,
    ~/.codex out of the run)."""

    @property
    def sessions_dir(self) -> Path:
        return self.path / "sessions"

    @property
    def archived_sessions_dir(self) -> Path:
        return self.path / "archived_sessions"

    @property
    def session_index(self) -> Path:
        return self.path / "session_index.jsonl"

    @property
    def config_path(self) -> Path:
        return self.path / "config.toml"

    def rollout_files(self) -> list[Path]:
        """All rollout files (active and archived), sorted by path."""
        files: list[Path] = []
        for root in (self.sessions_dir, self.archived_sessions_dir):
            if root.is_dir():
                files.extend(root.rglob("rollout-*.jsonl*"))
        return sorted(files)

    def find_rollout(self, thread_id: str) -> Path | None:
        return find_rollout(self.path, thread_id)

    def remove(self) -> None:
        """Delete the home and its sibling user home (the whole temp directory)."""
        shutil.rmtree(self.path.parent, ignore_errors=True)


def make_codex_home(
    base_url: str,
    *,
    parent: Path | None = None,
    model: str = DEFAULT_MODEL,
    trusted_dirs: Sequence[Path] = (),
    extra_config: str = "",
) -> CodexHome:
    """Create a fresh ``<tmp>/codex-home`` + ``<tmp>/user-home`` pair under ``parent``
    (default :func:`codex_homes_root`); delete it with :meth:`CodexHome.remove`.

    ``extra_config`` is appended verbatim at the end of ``config.toml``, so it may only hold
    ``[tables]``; override top-level keys per run with ``extra_args=["-c", "key=value"]``.
    """
    parent = parent or codex_homes_root()
    parent.mkdir(parents=True, exist_ok=True)
    root = Path(tempfile.mkdtemp(prefix="codex-run-", dir=parent)).resolve()
    path = root / "codex-home"
    user_home = root / "user-home"
    path.mkdir()
    user_home.mkdir()
    lines = [
        f"model = {_toml_str(model)}",
        f"model_provider = {_toml_str(MOCK_PROVIDER_ID)}",
        'approval_policy = "never"',
        'sandbox_mode = "danger-full-access"',
        "check_for_update_on_startup = false",
        "",
        "[analytics]",
        "enabled = false",
        "",
        f"[model_providers.{MOCK_PROVIDER_ID}]",
        'name = "sessionbase mock Responses API"',
        f"base_url = {_toml_str(base_url)}",
        'wire_api = "responses"',
        f"env_key = {_toml_str(MOCK_API_KEY_ENV)}",
        "request_max_retries = 0",
        "stream_max_retries = 0",
        # A stalled mock must fail the turn quickly rather than after 5 minutes.
        "stream_idle_timeout_ms = 30000",
        "",
    ]
    for directory in trusted_dirs:
        lines += [f"[projects.{_toml_str(str(directory))}]", 'trust_level = "trusted"', ""]
    text = "\n".join(lines) + ("\n" + extra_config if extra_config else "")
    (path / "config.toml").write_text(text, encoding="utf-8")
    return CodexHome(path=path, base_url=base_url, user_home=user_home)


# --------------------------------------------------------------------------------------------
# Rollout helpers
# --------------------------------------------------------------------------------------------


def find_rollout(codex_home: Path, thread_id: str) -> Path | None:
    """The rollout file of ``thread_id`` under ``sessions/`` or ``archived_sessions/``."""
    for sub in ("sessions", "archived_sessions"):
        root = codex_home / sub
        if root.is_dir():
            matches = sorted(root.rglob(f"rollout-*-{thread_id}.jsonl*"))
            if matches:
                return matches[0]
    return None


def read_rollout(path: Path) -> list[dict[str, Any]]:
    """Parse the complete lines of a rollout file (a trailing partial line is ignored)."""
    data = path.read_bytes()
    end = data.rfind(b"\n")
    if end < 0:
        return []
    return [json.loads(line) for line in data[: end + 1].splitlines() if line.strip()]


# --------------------------------------------------------------------------------------------
# Running codex exec
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class CodexRun:
    """Outcome of one ``codex exec --json`` (or ``exec resume``) invocation."""

    argv: list[str]
    returncode: int
    stdout: str
    stderr: str
    events: list[dict[str, Any]]
    """Parsed ``--json`` stdout lines (non-JSON lines are skipped)."""
    thread_id: str | None
    """From the ``thread.started`` event."""
    rollout_path: Path | None
    codex_home: Path
    workdir: Path
    duration_s: float

    @property
    def ok(self) -> bool:
        """Exit code 0 and a ``turn.completed`` event."""
        return self.returncode == 0 and any(e.get("type") == "turn.completed" for e in self.events)

    def completed_items(self, item_type: str | None = None) -> list[dict[str, Any]]:
        """``item`` of every ``item.completed`` event, optionally of one ``type``."""
        items = [
            e["item"]
            for e in self.events
            if e.get("type") == "item.completed" and isinstance(e.get("item"), dict)
        ]
        return [i for i in items if item_type is None or i.get("type") == item_type]

    @property
    def agent_messages(self) -> list[str]:
        return [str(i.get("text")) for i in self.completed_items("agent_message")]

    @property
    def error_messages(self) -> list[str]:
        """Messages of ``turn.failed`` and top-level ``error`` events."""
        messages: list[str] = []
        for event in self.events:
            if event.get("type") == "turn.failed":
                messages.append(str((event.get("error") or {}).get("message")))
            elif event.get("type") == "error":
                messages.append(str(event.get("message")))
        return messages

    def rollout_lines(self) -> list[dict[str, Any]]:
        """Parsed lines of the rollout file (empty if there is none)."""
        return read_rollout(self.rollout_path) if self.rollout_path else []


def _base_env(home: CodexHome, env: Mapping[str, str] | None) -> dict[str, str]:
    result = {
        "PATH": os.environ.get("PATH", "/usr/local/bin:/usr/bin:/bin"),
        "HOME": str(home.user_home),
        "LANG": "C.UTF-8",
        "LC_ALL": "C.UTF-8",
        "TERM": "dumb",
        "NO_COLOR": "1",
        "CODEX_HOME": str(home.path),
        MOCK_API_KEY_ENV: "sessionbase-mock-key",
    }
    if env:
        result.update(env)
    return result


def _build_argv(
    binary: Path,
    prompt: str | None,
    *,
    resume_thread_id: str | None,
    model: str | None,
    extra_args: Sequence[str],
) -> list[str]:
    node = find_node()
    if node is None:
        raise CodexUnavailable("node is not on PATH")
    argv = [str(node), str(binary.resolve()), "exec"]
    if resume_thread_id is not None:
        argv += ["resume", resume_thread_id]
    argv += [
        "--json",
        "--skip-git-repo-check",
        "--dangerously-bypass-approvals-and-sandbox",
        "--strict-config",
    ]
    if model is not None:
        argv += ["-m", model]
    argv += list(extra_args)
    if prompt is not None:
        argv += ["--", prompt]
    return argv


def _parse_events(stdout: str) -> list[dict[str, Any]]:
    events: list[dict[str, Any]] = []
    for line in stdout.splitlines():
        line = line.strip()
        if not line.startswith("{"):
            continue
        try:
            value = json.loads(line)
        except ValueError:
            continue
        if isinstance(value, dict):
            events.append(value)
    return events


def _thread_id(events: Sequence[Mapping[str, Any]]) -> str | None:
    for event in events:
        if event.get("type") == "thread.started" and isinstance(event.get("thread_id"), str):
            return str(event["thread_id"])
    return None


@dataclass
class CodexProcess:
    """A ``codex exec`` running in the background (own process group), for live-watch tests.

    stdout and stderr are drained by threads, so the child never blocks on a full pipe;
    :meth:`wait` returns the same :class:`CodexRun` as :func:`run_codex_exec`.
    """

    argv: list[str]
    popen: subprocess.Popen[bytes]
    codex_home: Path
    workdir: Path
    started_at: float
    _stdout: list[str] = field(default_factory=list)
    _stderr: list[str] = field(default_factory=list)
    _cond: threading.Condition = field(default_factory=threading.Condition)
    _threads: list[threading.Thread] = field(default_factory=list)

    def _drain(self, stream: IO[bytes], sink: list[str]) -> None:
        for raw in iter(stream.readline, b""):
            with self._cond:
                sink.append(raw.decode("utf-8", errors="replace"))
                self._cond.notify_all()
        stream.close()

    def _start_drains(self) -> None:
        assert self.popen.stdout is not None
        assert self.popen.stderr is not None
        for stream, sink in ((self.popen.stdout, self._stdout), (self.popen.stderr, self._stderr)):
            thread = threading.Thread(target=self._drain, args=(stream, sink), daemon=True)
            thread.start()
            self._threads.append(thread)

    @property
    def pid(self) -> int:
        return self.popen.pid

    def events(self) -> list[dict[str, Any]]:
        """The ``--json`` events printed so far."""
        with self._cond:
            return _parse_events("".join(self._stdout))

    def wait_for_event(self, event_type: str, timeout: float = 30.0) -> dict[str, Any]:
        """Block until an event of ``event_type`` was printed; raise TimeoutError otherwise."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                for event in _parse_events("".join(self._stdout)):
                    if event.get("type") == event_type:
                        return event
                remaining = deadline - time.monotonic()
                if remaining <= 0 or (self.popen.poll() is not None and not self._alive_drains()):
                    raise TimeoutError(f"codex printed no {event_type!r} event")
                self._cond.wait(min(remaining, 0.2))

    def _alive_drains(self) -> bool:
        return any(t.is_alive() for t in self._threads)

    def wait_for_thread_id(self, timeout: float = 30.0) -> str:
        return str(self.wait_for_event("thread.started", timeout)["thread_id"])

    def wait_for_rollout(self, timeout: float = 30.0) -> Path:
        """The rollout path, once Codex has created the file."""
        deadline = time.monotonic() + timeout
        thread_id = self.wait_for_thread_id(timeout)
        while True:
            path = find_rollout(self.codex_home, thread_id)
            if path is not None:
                return path
            if time.monotonic() > deadline:
                raise TimeoutError(f"no rollout file for thread {thread_id}")
            time.sleep(0.02)

    def kill(self, sig: int = signal.SIGKILL) -> None:
        """Signal the whole process group this harness started (node launcher + native binary)."""
        if self.popen.poll() is None:
            try:
                os.killpg(self.popen.pid, sig)
            except ProcessLookupError:
                pass

    def wait(self, timeout: float = 60.0) -> CodexRun:
        """Wait for exit; on timeout kill the process group and raise :class:`CodexTimeout`."""
        try:
            returncode = self.popen.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            self.popen.wait(timeout=10)
            for thread in self._threads:
                thread.join(timeout=5)
            raise CodexTimeout(
                f"codex did not exit within {timeout}s: {self.argv}",
                "".join(self._stdout),
                "".join(self._stderr),
            ) from None
        for thread in self._threads:
            thread.join(timeout=10)
        stdout = "".join(self._stdout)
        events = _parse_events(stdout)
        thread_id = _thread_id(events)
        return CodexRun(
            argv=self.argv,
            returncode=returncode,
            stdout=stdout,
            stderr="".join(self._stderr),
            events=events,
            thread_id=thread_id,
            rollout_path=find_rollout(self.codex_home, thread_id) if thread_id else None,
            codex_home=self.codex_home,
            workdir=self.workdir,
            duration_s=time.monotonic() - self.started_at,
        )

    def __enter__(self) -> CodexProcess:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        """Kill the run if still going, and any command it left behind in its process group."""
        self.kill()
        self.popen.wait(timeout=10)
        try:
            os.killpg(self.popen.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
        for thread in self._threads:
            thread.join(timeout=5)


def start_codex_exec(
    codex_home: CodexHome,
    prompt: str | None,
    *,
    workdir: Path,
    resume_thread_id: str | None = None,
    model: str | None = DEFAULT_MODEL,
    extra_args: Sequence[str] = (),
    env: Mapping[str, str] | None = None,
    binary: Path | None = None,
) -> CodexProcess:
    """Start ``codex exec --json [resume <id>] -- <prompt>`` in the background.

    The child runs in ``workdir`` with stdin from ``/dev/null`` in its own process group.
    ``extra_args`` go before the prompt (e.g. ``["-c", "key=value"]``).
    """
    binary = binary or require_codex()
    argv = _build_argv(
        binary, prompt, resume_thread_id=resume_thread_id, model=model, extra_args=extra_args
    )
    popen = subprocess.Popen(
        argv,
        cwd=workdir,
        env=_base_env(codex_home, env),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        start_new_session=True,
    )
    process = CodexProcess(
        argv=argv,
        popen=popen,
        codex_home=codex_home.path,
        workdir=workdir,
        started_at=time.monotonic(),
    )
    process._start_drains()
    return process


def run_codex_exec(
    codex_home: CodexHome,
    prompt: str | None,
    *,
    workdir: Path,
    resume_thread_id: str | None = None,
    model: str | None = DEFAULT_MODEL,
    extra_args: Sequence[str] = (),
    env: Mapping[str, str] | None = None,
    timeout: float = 60.0,
    binary: Path | None = None,
) -> CodexRun:
    """Run ``codex exec --json`` (or ``exec resume <resume_thread_id>``) to completion.

    A nonzero exit is *not* an error here (failed-turn scenarios expect one); check
    :attr:`CodexRun.ok` / :attr:`CodexRun.returncode`. Raises :class:`CodexTimeout` after
    ``timeout`` seconds, having killed the process group.
    """
    process = start_codex_exec(
        codex_home,
        prompt,
        workdir=workdir,
        resume_thread_id=resume_thread_id,
        model=model,
        extra_args=extra_args,
        env=env,
        binary=binary,
    )
    with process:
        return process.wait(timeout=timeout)
