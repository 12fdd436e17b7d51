"""Real headless Chromium for integration tests: Debian's ``chromium`` driven by the npm
``playwright-core`` pinned in ``<repo>/package.json``, through Node scripts that import
``tests/integration/js/chromium.mjs``.

``scripts/test`` installs both (``apt-get install chromium``, ``npm ci``); Playwright's own
browser download is never used. Tests call :func:`browser_unavailable_reason` and skip, or fail
when ``SESSIONBASE_REQUIRE_INTEGRATION=1``.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

from tests.support.codex_cli import REPO_ROOT, harness_setting

JS_DIR = REPO_ROOT / "tests" / "integration" / "js"


def chromium_path() -> Path:
    """Debian's Chromium, or the binary ``SESSIONBASE_CHROMIUM`` names."""
    return Path(harness_setting("SESSIONBASE_CHROMIUM") or "/usr/bin/chromium")


def browser_unavailable_reason() -> str | None:
    """Why a browser test cannot run here, or None when node, the pinned playwright-core and
    Chromium are all in place."""
    if shutil.which("node") is None:
        return "node is not on PATH (needed to drive Chromium with playwright-core)"
    pinned = json.loads((REPO_ROOT / "package.json").read_text())["devDependencies"][
        "playwright-core"
    ]
    manifest = REPO_ROOT / "node_modules" / "playwright-core" / "package.json"
    if not manifest.exists():
        return f"node_modules/playwright-core is missing: run `npm ci` in {REPO_ROOT}"
    found = json.loads(manifest.read_text())["version"]
    if found != pinned:
        return f"node_modules/playwright-core is {found}, package.json pins {pinned}: run `npm ci`"
    if not os.access(chromium_path(), os.X_OK):
        return f"{chromium_path()} is missing: `apt-get install chromium` (scripts/test does)"
    return None


def run_browser_script(script: str, *args: str, timeout: float = 120.0) -> Any:
    """Run ``node tests/integration/js/<script> ARGS…`` and return the JSON object it prints
    last on stdout; raise AssertionError with its output if it fails."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("SESSIONBASE_")}
    env["SESSIONBASE_CHROMIUM"] = str(chromium_path())
    done = subprocess.run(
        ["node", str(JS_DIR / script), *args],
        capture_output=True, text=True, timeout=timeout, env=env, cwd=REPO_ROOT,
    )  # fmt: skip
    lines = done.stdout.strip().splitlines()
    if done.returncode != 0 or not lines:
        raise AssertionError(
            f"node {script} exited {done.returncode}\n"
            f"stdout:\n{done.stdout}\nstderr:\n{done.stderr}"
        )
    return json.loads(lines[-1])
