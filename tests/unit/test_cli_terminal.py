"""The CLI as a person sees it in a real terminal (a pseudo-terminal, so progress bars draw)."""

from __future__ import annotations

import os
import pty
import re
import subprocess
import sys
from pathlib import Path

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
