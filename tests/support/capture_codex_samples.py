"""Run every scenario through the real Codex CLI and keep the files it wrote, for study.

Why: reading real rollouts is the fastest way to learn what a Codex release writes. Usage::

    uv run python -m tests.support.capture_codex_samples [OUT_DIR] [SCENARIO ...]

``OUT_DIR`` defaults to ``/tmp/codex-samples``. For each scenario it writes
``OUT_DIR/<name>/`` holding the ``sessions/`` and ``archived_sessions/`` subtrees (and
``session_index.jsonl`` if any) of the run's ``CODEX_HOME``, plus ``exec-turn<N>.jsonl`` (the
``codex exec --json`` stdout of each turn), ``exec-turn<N>.stderr.txt`` and ``requests.json``
(the model requests the mock received, without the long instruction texts). Without scenario
names it also captures ``interrupted_sigint`` (SIGINT while a command runs).
"""

from __future__ import annotations

import json
import shutil
import signal
import sys
import tempfile
from pathlib import Path
from typing import Any

from tests.support.codex_cli import codex_homes_root, make_codex_home, start_codex_exec
from tests.support.codex_scenarios import SCENARIOS, SCENARIOS_BY_NAME, Scenario, run_scenario
from tests.support.mock_responses import ExecCommand, Message, MockModelServer, Script


def _slim_request(body: Any) -> Any:
    """A request body with the bulky developer/instruction texts and tool schemas elided."""
    if not isinstance(body, dict):
        return body
    slim = dict(body)
    if isinstance(slim.get("tools"), list):
        slim["tools"] = [t.get("name") or t.get("type") for t in slim["tools"]]
    if isinstance(slim.get("instructions"), str):
        slim["instructions"] = f"<{len(slim['instructions'])} chars>"
    items = []
    for item in slim.get("input") or []:
        if isinstance(item, dict) and item.get("role") == "developer":
            item = {**item, "content": "<developer message elided>"}
        items.append(item)
    slim["input"] = items
    return slim


def capture(scenario: Scenario, out_dir: Path) -> Path:
    """Run one scenario and copy its interesting files to ``out_dir/<name>``."""
    target = out_dir / scenario.name
    if target.exists():
        shutil.rmtree(target)
    target.mkdir(parents=True)
    base = Path(tempfile.mkdtemp(prefix=f"capture-{scenario.name}-", dir=codex_homes_root()))
    try:
        result = run_scenario(scenario, base / "work", codex_home_parent=base)
        home = result.codex_home.path
        for sub in ("sessions", "archived_sessions"):
            if (home / sub).is_dir():
                shutil.copytree(home / sub, target / sub)
        if (home / "session_index.jsonl").exists():
            shutil.copy2(home / "session_index.jsonl", target / "session_index.jsonl")
        for index, run in enumerate(result.runs, start=1):
            (target / f"exec-turn{index}.jsonl").write_text(run.stdout, encoding="utf-8")
            (target / f"exec-turn{index}.stderr.txt").write_text(run.stderr, encoding="utf-8")
        requests = [
            {
                "index": r.index,
                "path": r.path,
                "turn_index": r.turn_index,
                "response_index": r.response_index,
                "codex_turn_id": r.codex_turn_id,
                "body": _slim_request(r.body),
            }
            for r in result.requests
        ]
        (target / "requests.json").write_text(
            json.dumps(requests, indent=1, ensure_ascii=False), encoding="utf-8"
        )
        print(f"{scenario.name}: {result.rollout_path.relative_to(home)}")
    finally:
        shutil.rmtree(base, ignore_errors=True)
    return target


def capture_interrupt(out_dir: Path) -> Path:
    """Extra sample ``interrupted_sigint``: SIGINT while ``sleep 30`` runs (turn_aborted)."""
    target = out_dir / "interrupted_sigint"
    shutil.rmtree(target, ignore_errors=True)
    target.mkdir(parents=True)
    base = Path(tempfile.mkdtemp(prefix="capture-interrupt-", dir=codex_homes_root()))
    script: Script = [
        [[ExecCommand("sleep 30", call_id="call_sleep", yield_time_ms=60_000)], [Message("x")]]
    ]
    try:
        with MockModelServer(script) as server:
            home = make_codex_home(server.base_url, parent=base)
            workdir = base / "work"
            workdir.mkdir()
            with start_codex_exec(home, "Sleep for a while", workdir=workdir) as process:
                process.wait_for_event("item.started", timeout=30)
                process.wait_for_rollout(timeout=30)
                process.kill(signal.SIGINT)
                run = process.wait(timeout=30)
        shutil.copytree(home.sessions_dir, target / "sessions")
        (target / "exec-turn1.jsonl").write_text(run.stdout, encoding="utf-8")
        (target / "exec-turn1.stderr.txt").write_text(run.stderr, encoding="utf-8")
        print(f"interrupted_sigint: rc={run.returncode}")
    finally:
        shutil.rmtree(base, ignore_errors=True)
    return target


def main(argv: list[str]) -> int:
    out_dir = Path(argv[0]) if argv else Path("/tmp/codex-samples")
    names = argv[1:]
    scenarios = [SCENARIOS_BY_NAME[n] for n in names] if names else list(SCENARIOS)
    out_dir.mkdir(parents=True, exist_ok=True)
    for scenario in scenarios:
        capture(scenario, out_dir)
    if not names:
        capture_interrupt(out_dir)
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
