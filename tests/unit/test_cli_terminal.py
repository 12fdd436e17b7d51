"""The CLI as a person sees it in a real terminal (a pseudo-terminal, so progress bars draw)."""

from __future__ import annotations

import os
import pty
import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.builders.codex import Rollout
from tests.conftest import Cli


def in_terminal(*args: str, columns: int = 80) -> str:
    """Run `sessionbase ARGS` with a pseudo-terminal as its stdout and stderr; what it drew."""
    leader, follower = pty.openpty()
    env = {k: v for k, v in os.environ.items() if not k.startswith("SESSIONBASE_")}
    env.update(COLUMNS=str(columns), LINES="50", TERM="xterm-256color")
    env.pop("NO_COLOR", None)
    proc = subprocess.Popen(
        [sys.executable, "-c", "from sessionbase.cli import main; main()", *args],
        stdin=subprocess.DEVNULL, stdout=follower, stderr=follower, env=env,
    )  # fmt: skip
    os.close(follower)
    chunks = []
    while True:
        try:
            chunk = os.read(leader, 65536)
        except OSError:  # the child closed the terminal
            break
        if not chunk:
            break
        chunks.append(chunk)
    os.close(leader)
    assert proc.wait(timeout=120) == 0, b"".join(chunks).decode(errors="replace")
    return b"".join(chunks).decode(errors="replace")


def test_progress_bars_never_count_out_of_nothing(codex_home: Path, run_cli: Cli) -> None:
    for n in range(3):
        r = Rollout()
        r.user(f"question {n} about the flaky deploy")
        r.assistant(f"answer {n}: the lock is never released")
        r.write(codex_home)
    base = ["--data-dir", str(run_cli.settings.data_dir), "--codex-home", str(codex_home)]
    drawn = in_terminal(*base, "backfill")
    assert re.search(r"embedding.*\d+/\d+ units", drawn), drawn
    assert "None" not in drawn
    again = in_terminal(*base, "backfill")  # nothing new: no bar at all
    assert "0/0 files" not in again
    assert "0/1 bytes" not in again


def test_show_wraps_folds_and_collapses_polls(
    codex_home: Path, run_cli: Cli, monkeypatch: pytest.MonkeyPatch
) -> None:
    heredoc = "cat > notes.md <<'EOF'\n" + "".join(f"line {n} of the notes\n" for n in range(40))
    long_answer = "The deploy waits on a lock that the previous run never released. " * 6
    r = Rollout()
    r.user("why does the deploy hang?")
    r.shell(heredoc + "EOF", "", exit_code=0)
    r.tool("exec_command", {"cmd": "npm test"}, "Process running with session ID 7")
    for _ in range(3):
        r.tool("write_stdin", {"session_id": 7, "chars": "", "yield_time_ms": 1000}, "tick")
    r.tool("write_stdin", {"session_id": 7, "chars": "q\n"}, "bye")
    r.assistant(long_answer)
    r.write(codex_home)
    run_cli("backfill", "--no-embed")
    monkeypatch.setenv("COLUMNS", "80")

    shown = run_cli("show", r.thread_id)
    lines = shown.splitlines()
    assert all(len(line) <= 80 for line in lines), [line for line in lines if len(line) > 80]
    assert all(line == line.rstrip() for line in lines)
    assert "line 1 of the notes" in shown
    assert "line 39 of the notes" not in shown
    assert "… 39 more lines (--full)" in shown  # the first 3 of 42 lines are shown
    assert shown.count("write_stdin") == 2  # three polls as one row, the input sent as one
    assert "write_stdin ×3 polled running commands (--full lists each)" in shown
    assert '"chars":"q\\n"' in shown.replace(" ", "").replace("\n", "")
    words = " ".join(shown.split())
    assert " ".join(long_answer.split()) in words  # the conversation is never folded

    full = run_cli("show", r.thread_id, "--full")
    assert all(len(line) <= 80 for line in full.splitlines())
    assert "line 39 of the notes" in full
    assert full.count("write_stdin") == 4
    assert "(--full)" not in full


def test_search_and_similar_results_fit_the_terminal(
    codex_home: Path, run_cli: Cli, monkeypatch: pytest.MonkeyPatch
) -> None:
    title = "Investigate why the nightly deploy pipeline times out on the integration stage " * 2
    for n in range(2):
        r = Rollout()
        r.user(f"{title} run {n}")
        r.assistant("The integration stage waits on a database lock never released. " * 5)
        r.write(codex_home)
    run_cli("backfill")
    monkeypatch.setenv("COLUMNS", "80")
    for output in (run_cli("search", "integration stage"), run_cli("similar", r.thread_id)):
        lines = output.splitlines()
        assert lines
        assert all(len(line) <= 80 for line in lines), [x for x in lines if len(x) > 80]
        assert any(line.startswith("Investigate why") and "…" in line for line in lines)


def test_projects_never_show_two_working_dirs_alike(
    codex_home: Path, run_cli: Cli, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Working dirs that differ only far from their end (here a team's name) are cut so that
    the difference shows; a dir that fits is shown whole."""
    base = "/srv/build/agents/workspaces/{team}/checkouts/services/payments-reconciliation"
    dirs = [base.format(team="team-platform"), base.format(team="team-growth"), "/w/api"]
    for cwd in dirs:
        r = Rollout(cwd=cwd)
        r.user(f"work in {cwd}")
        r.write(codex_home)
    run_cli("backfill", "--no-embed")
    monkeypatch.setenv("COLUMNS", "80")
    listing = run_cli("projects")
    lines = listing.splitlines()[1:]
    assert all(len(line.rstrip()) <= 80 for line in listing.splitlines())
    shown = [line.split()[-1] for line in lines]
    assert len(set(shown)) == 3, shown
    assert "/w/api" in shown
    assert any("plat" in s for s in shown), listing
    assert any("grow" in s for s in shown), listing
