"""Coding sessions for the search evaluation, played through the real Codex CLI.

Why: judged queries need sessions like the ones people search later (a build that broke, a
flaky test, a slow query), and the shared corpus holds only a handful of topics. Each
:class:`~tests.support.codex_scenarios.Scenario` here is a small project (its files), the
user's prompts and the mock model's script; the real Codex CLI runs it, so the commands run
for real and the rollout is what Codex writes. The rollouts are kept in
``tests/data/search_eval_sessions/`` (zstd-compressed) and mirrored by
``tests/support/search_eval.py`` with the shared corpus. Regenerate them (new thread ids:
update ``search_eval_corpus.json``) with::

    uv run python -m tests.support.eval_sessions [OUT_DIR] [SCENARIO ...]

``OUT_DIR`` defaults to ``tests/data/search_eval_sessions``. The scripted e2e scenarios of
``codex_scenarios`` are played too (``SCENARIOS``), so their sessions are judged as well.
"""

from __future__ import annotations

import shutil
import sys
import tempfile
from pathlib import Path

import zstandard

from tests.support.codex_cli import codex_homes_root
from tests.support.codex_scenarios import SCENARIOS, Scenario, ScenarioTurn, run_scenario
from tests.support.mock_responses import (
    ApplyPatch,
    ExecCommand,
    Message,
    ModelResponse,
    OutputItem,
    Reasoning,
    Reply,
)

OUT_DIR = Path(__file__).resolve().parent.parent / "data" / "search_eval_sessions"

Step = tuple[OutputItem, ...]


def _turn(prompt: str, *steps: Step) -> ScenarioTurn:
    """One user turn: each step is one model response; the last one should end in a message."""
    responses: tuple[ModelResponse, ...] = tuple(Reply(step) for step in steps)
    messages = tuple(i.text for step in steps for i in step if isinstance(i, Message))
    return ScenarioTurn(prompt=prompt, responses=responses, agent_messages=messages)


def _think(*summary: str) -> Reasoning:
    return Reasoning(summary=summary)


def _run(cmd: str) -> ExecCommand:
    return ExecCommand(cmd, login=False)


LOCKFILE = Scenario(
    name="lockfile_ci",
    description="CI fails at npm ci: package.json and package-lock.json disagree.",
    git_init=True,
    setup_files={
        "package.json": (
            '{\n  "name": "billing-ui",\n  "version": "1.4.0",\n  "scripts": {"build": '
            '"vite build"},'
            '\n  "dependencies": {\n    "react": "^18.2.0",\n    "date-fns": "^3.6.0"\n  }\n}\n'
        ),
        "package-lock.json": (
            '{\n  "name": "billing-ui",\n  "version": "1.4.0",\n  "lockfileVersion": 3,\n'
            '  "packages": {\n    "": {"dependencies": {"react": "^18.2.0"}},\n'
            '    "node_modules/react": {"version": "18.2.0"}\n  }\n}\n'
        ),
        "ci.log": (
            "Run npm ci\nnpm ERR! code EUSAGE\nnpm ERR! `npm ci` can only install packages when "
            "your package.json and package-lock.json or npm-shrinkwrap.json are in sync. Please "
            "update your lock file with `npm install` before continuing.\nnpm ERR! Missing: "
            "date-fns@3.6.0 from lock file\nError: Process completed with exit code 1.\n"
        ),
    },
    turns=(
        _turn(
            "The pipeline went red on main right after my last merge, the install step dies. "
            "ci.log has the output. Can you figure out what happened?",
            (
                _think("**Reading the CI log**", "The install step is npm ci; see why it stops."),
                _run("cat ci.log"),
            ),
            (
                _think(
                    "**Comparing manifests**",
                    "npm ci refuses when the lock does not match package.json; check date-fns.",
                ),
                _run("grep -n date-fns package.json package-lock.json"),
            ),
            (
                Message(
                    "`npm ci` fails because `package-lock.json` is out of sync with "
                    "`package.json`: the merge added `date-fns@^3.6.0` to the dependencies but "
                    "the lock file was not regenerated, so the lock has no entry for it "
                    "(`Missing: date-fns@3.6.0 from lock file`). Run `npm install` locally to "
                    "update the lock file, commit `package-lock.json` together with "
                    "`package.json`, and the job will pass again. To catch it earlier, add a "
                    "pre-push check that runs `npm ci --dry-run`."
                ),
            ),
        ),
        _turn(
            "ok, I regenerated it. Add a note to CONTRIBUTING so people commit both files.",
            (
                ApplyPatch(
                    "*** Begin Patch\n*** Add File: CONTRIBUTING.md\n+# Contributing\n+\n"
                    "+When you add or upgrade a dependency, run `npm install` and commit\n"
                    "+`package.json` and `package-lock.json` in the same commit: CI installs\n"
                    "+with `npm ci`, which refuses a lock file that does not match.\n"
                    "*** End Patch\n"
                ),
            ),
            (
                Message(
                    "Added CONTRIBUTING.md: dependency changes must commit package.json and "
                    "package-lock.json together, because CI uses npm ci."
                ),
            ),
        ),
    ),
)

FLAKY_WEBSOCKET = Scenario(
    name="flaky_websocket_test",
    description="A websocket test fails one run in five: it sends before the server listens.",
    setup_files={
        "test/ws.test.js": (
            "const { startServer } = require('../src/server');\n"
            "const WebSocket = require('ws');\n\n"
            "test('echoes messages', (done) => {\n"
            "  const server = startServer(8089);\n"
            "  const ws = new WebSocket('ws://localhost:8089');\n"
            "  setTimeout(() => ws.send('ping'), 50);\n"
            "  ws.on('message', (m) => { expect(String(m)).toBe('ping'); "
            "server.close(); done(); });\n"
            "});\n"
        ),
    },
    turns=(
        _turn(
            "test/ws.test.js passes locally but randomly times out on the build machine, maybe "
            "1 run in 5. Why is it unreliable?",
            (
                _think("**Looking for timing assumptions**"),
                _run("grep -n 'setTimeout\\|startServer' test/ws.test.js"),
            ),
            (
                _think(
                    "**Race between connect and send**",
                    "A fixed 50 ms sleep hopes the socket is open; on a slow runner it is not.",
                ),
                ApplyPatch(
                    "*** Begin Patch\n*** Update File: test/ws.test.js\n@@\n"
                    "-  setTimeout(() => ws.send('ping'), 50);\n"
                    "+  ws.on('open', () => ws.send('ping'));\n*** End Patch\n"
                ),
            ),
            (
                Message(
                    "The test races the connection: it sends after a fixed 50 ms `setTimeout`, "
                    "and on a loaded CI runner the socket is not open yet, so the message is "
                    "lost and the test waits until the 5 s timeout. I replaced the sleep with "
                    "the `open` event, so it sends only once the connection is established. "
                    "The server also binds a fixed port (8089); if two jobs share a runner, "
                    "pass port 0 and read the assigned port."
                ),
            ),
        ),
    ),
)

DOCKER_IMAGE = Scenario(
    name="docker_image_size",
    description="A 1.9 GB image slimmed with a multi-stage build on python:3.12-slim.",
    setup_files={
        "Dockerfile": (
            "FROM python:3.12\nWORKDIR /app\nCOPY . .\n"
            'RUN pip install -r requirements.txt\nCMD ["gunicorn", "app:app"]\n'
        ),
        "requirements.txt": "flask==3.0.3\ngunicorn==22.0.0\n",
    },
    turns=(
        _turn(
            "Our container is almost 2 GB and deploys take forever pulling it. How do I shrink it?",
            (_think("**Inspecting the Dockerfile**"), _run("cat Dockerfile")),
            (
                ApplyPatch(
                    "*** Begin Patch\n*** Update File: Dockerfile\n@@\n-FROM python:3.12\n"
                    "-WORKDIR /app\n-COPY . .\n-RUN pip install -r requirements.txt\n"
                    "+FROM python:3.12 AS build\n+WORKDIR /app\n+COPY requirements.txt .\n"
                    "+RUN pip wheel --wheel-dir /wheels -r requirements.txt\n+\n"
                    "+FROM python:3.12-slim\n+WORKDIR /app\n+COPY --from=build /wheels /wheels\n"
                    "+RUN pip install --no-cache-dir /wheels/* && rm -rf /wheels\n+COPY . .\n"
                    "*** End Patch\n"
                ),
            ),
            (
                Message(
                    "The image is based on the full `python:3.12` (about 1 GB of compilers "
                    "and headers) and copies the whole context before installing. I made it a "
                    "multi-stage build: wheels are built in a `build` stage and only installed "
                    "into `python:3.12-slim`, with `--no-cache-dir`, and requirements are "
                    "copied first so the dependency layer is cached between deploys. Add a "
                    "`.dockerignore` for `.git`, `node_modules` and test data too; expect "
                    "roughly 150–200 MB."
                ),
            ),
        ),
    ),
)

SLOW_QUERY = Scenario(
    name="slow_orders_query",
    description="A slow orders page: sequential scan, fixed with an index on customer_id.",
    setup_files={
        "schema.sql": (
            "CREATE TABLE orders (\n  id bigserial PRIMARY KEY,\n  customer_id bigint NOT NULL,\n"
            "  created_at timestamptz NOT NULL DEFAULT now(),\n  total_cents integer NOT NULL\n);\n"
        ),
        "explain.txt": (
            "Seq Scan on orders  (cost=0.00..412893.00 rows=41 width=32) (actual "
            "time=0.031..2874.113 rows=37 loops=1)\n  Filter: (customer_id = 4812)\n"
            "  Rows Removed by Filter: 18399963\nExecution Time: 2874.402 ms\n"
        ),
    },
    turns=(
        _turn(
            "The customer history page takes 3 seconds to load now that we have 18M orders. "
            "explain.txt has the plan. What do we do?",
            (_think("**Reading the plan**"), _run("cat explain.txt schema.sql")),
            (
                _think(
                    "**Missing index**",
                    "It filters 18M rows for 37; an index on customer_id, created_at fits.",
                ),
                ApplyPatch(
                    "*** Begin Patch\n*** Add File: migrations/0042_orders_customer_idx.sql\n"
                    "+-- CONCURRENTLY: no write lock on orders while it builds.\n"
                    "+CREATE INDEX CONCURRENTLY IF NOT EXISTS orders_customer_created_idx\n"
                    "+    ON orders (customer_id, created_at DESC);\n*** End Patch\n"
                ),
            ),
            (
                Message(
                    "The plan is a sequential scan: PostgreSQL reads all 18.4M rows of `orders` "
                    "to keep 37. There is no index on `customer_id`. I added migration 0042 "
                    "with a composite index on `(customer_id, created_at DESC)`, which also "
                    "serves the page's newest-first order. It is built `CONCURRENTLY`, so it "
                    "does not block writes, but that cannot run inside a transaction: run it "
                    "outside your migration tool's transaction. Expect an index scan in a few "
                    "milliseconds."
                ),
            ),
        ),
    ),
)

CORS = Scenario(
    name="cors_frontend",
    description="The React dev server is blocked by CORS calling the FastAPI backend.",
    setup_files={
        "api/main.py": (
            "from fastapi import FastAPI\n\napp = FastAPI()\n\n\n@app.get('/api/items')\n"
            "def items():\n    return [{'id': 1, 'name': 'first'}]\n"
        ),
    },
    turns=(
        _turn(
            "The browser console says: Access to fetch at 'http://localhost:8000/api/items' from "
            "origin 'http://localhost:5173' has been blocked. The API works fine with curl.",
            (_think("**Cross-origin request**"), _run("grep -rn 'Middleware' api || true")),
            (
                ApplyPatch(
                    "*** Begin Patch\n*** Update File: api/main.py\n@@\n"
                    " from fastapi import FastAPI\n"
                    "+from fastapi.middleware.cors import CORSMiddleware\n \n app = FastAPI()\n"
                    "+app.add_middleware(\n+    CORSMiddleware,\n"
                    "+    allow_origins=['http://localhost:5173'],\n"
                    "+    allow_methods=['*'],\n+    allow_headers=['*'],\n+)\n*** End Patch\n"
                ),
            ),
            (
                Message(
                    "curl does not enforce the same-origin policy, the browser does: the page "
                    "on port 5173 is another origin than the API on 8000, and the API sends no "
                    "`Access-Control-Allow-Origin` header. I added FastAPI's `CORSMiddleware` "
                    "allowing `http://localhost:5173`. In production list the real front-end "
                    "origin instead of a wildcard, especially if you send cookies."
                ),
            ),
        ),
    ),
)

MEMORY_LEAK = Scenario(
    name="node_memory_leak",
    description="A Node service grows until OOM-killed: a listener added on every request.",
    setup_files={
        "src/server.js": (
            "const http = require('http');\nconst bus = require('./bus');\n\n"
            "http.createServer((req, res) => {\n"
            "  bus.on('config-changed', () => res.setHeader('X-Reload', '1'));\n"
            "  res.end('ok');\n}).listen(3000);\n"
        ),
    },
    turns=(
        _turn(
            "Our API pods get OOMKilled every few hours; memory climbs steadily with traffic. "
            "Node also prints MaxListenersExceededWarning. Can you find it?",
            (
                _think("**Listener warning**", "Something subscribes per request."),
                _run('grep -n "bus.on" src/server.js'),
            ),
            (
                ApplyPatch(
                    "*** Begin Patch\n*** Update File: src/server.js\n@@\n"
                    "-http.createServer((req, res) => {\n"
                    "-  bus.on('config-changed', () => res.setHeader('X-Reload', '1'));\n"
                    "+let reload = false;\n+bus.on('config-changed', () => { reload = true; });\n"
                    "+\n+http.createServer((req, res) => {\n"
                    "+  if (reload) res.setHeader('X-Reload', '1');\n*** End Patch\n"
                ),
            ),
            (
                Message(
                    "Every request registers a new `config-changed` handler on the shared event "
                    "bus and never removes it, so each closure keeps its `res` alive: memory "
                    "grows with the number of requests until the pod is killed, and Node warns "
                    "once a bus has more than 10 listeners. I subscribe once at start-up and "
                    "keep a flag instead. Take a heap snapshot after a load test to confirm the "
                    "retained `ServerResponse` objects are gone."
                ),
            ),
        ),
    ),
)

TIMEZONE = Scenario(
    name="timezone_off_by_one",
    description="Due dates shown a day early for users in America/Los_Angeles.",
    setup_files={
        "due.py": (
            "from datetime import datetime\n\n\ndef due_label(iso: str) -> str:\n"
            "    # iso is a date like 2024-03-10 from the API\n"
            "    return datetime.fromisoformat(iso + "
            "'T00:00:00+00:00').astimezone().strftime('%b %d')\n"
        ),
    },
    turns=(
        _turn(
            "Customers in California see every due date one day earlier than the date they "
            "picked. Europe is fine. What's going on in due.py?",
            (
                _think("**Date versus instant**"),
                _run(
                    'TZ=America/Los_Angeles python3 -c "import due; '
                    "print(due.due_label('2024-03-10'))\""
                ),
            ),
            (
                ApplyPatch(
                    "*** Begin Patch\n*** Update File: due.py\n@@\n"
                    "-from datetime import datetime\n+from datetime import date\n@@\n"
                    "-    return datetime.fromisoformat(iso + "
                    "'T00:00:00+00:00').astimezone().strftime('%b %d')\n"
                    "+    return date.fromisoformat(iso).strftime('%b %d')\n*** End Patch\n"
                ),
            ),
            (
                Message(
                    "A due date is a calendar date, but `due_label` turns it into midnight UTC "
                    "and converts that instant to the server's local zone: in Los Angeles "
                    "(UTC−8) midnight UTC is 4 pm the previous day, so `Mar 10` prints as "
                    "`Mar 09`. East of UTC the day stays the same, which is why Europe looked "
                    "fine. It now parses a plain `date` and never converts it."
                ),
            ),
        ),
    ),
)

LEAKED_SECRET = Scenario(
    name="committed_env_file",
    description="A .env with an API key was committed and pushed; clean up and rotate.",
    git_init=True,
    setup_files={".env": "STRIPE_SECRET_KEY=sk_live_51Hx\nDATABASE_URL=postgres://app@db/app\n"},
    turns=(
        _turn(
            "I just realised I pushed our .env file with the Stripe key to the repo an hour "
            "ago. What should I do right now?",
            (_think("**Secret in history**"), _run("git log --oneline --stat | head -20")),
            (
                ApplyPatch(
                    "*** Begin Patch\n*** Add File: .gitignore\n+.env\n+.env.*\n*** End Patch\n"
                ),
                _run("git rm --cached -q .env && git status --short"),
            ),
            (
                Message(
                    "First revoke the key: in the Stripe dashboard roll `STRIPE_SECRET_KEY` now "
                    "and put the new one in your secret store; anyone who cloned or any bot "
                    "that scanned the push in the last hour may have it, so deleting the file "
                    "is not enough. Then I untracked `.env` and added it to `.gitignore`. To "
                    "purge it from history, run `git filter-repo --path .env --invert-paths` and "
                    "force-push, and ask collaborators to re-clone. Check the Stripe logs for "
                    "requests you did not make."
                ),
            ),
        ),
    ),
)

RATE_LIMIT = Scenario(
    name="github_rate_limit",
    description="A sync script hits GitHub's 403 rate limit; add a token and backoff.",
    setup_files={
        "sync.py": (
            "import requests\n\n\ndef fetch(url):\n    r = requests.get(url)\n"
            "    r.raise_for_status()\n    return r.json()\n"
        ),
    },
    turns=(
        _turn(
            "The nightly repo sync started failing with 403 Forbidden from api.github.com "
            "halfway through. Nothing changed on our side.",
            (
                _think("**403 from GitHub**", "Unauthenticated calls get 60 per hour."),
                _run("grep -n 'requests.get' sync.py"),
            ),
            (
                ApplyPatch(
                    "*** Begin Patch\n*** Update File: sync.py\n@@\n-import requests\n"
                    "+import os\n+import time\n+\n+import requests\n+\n"
                    "+HEADERS = {'Authorization': f\"Bearer {os.environ['GITHUB_TOKEN']}\"}\n@@\n"
                    "-    r = requests.get(url)\n+    for attempt in range(5):\n"
                    "+        r = requests.get(url, headers=HEADERS)\n"
                    "+        if r.status_code != 403 or r.headers.get('X-RateLimit-Remaining') "
                    "!= '0':\n"
                    "+            break\n"
                    "+        time.sleep(max(1, int(r.headers['X-RateLimit-Reset']) - "
                    "time.time()))\n"
                    "*** End Patch\n"
                ),
            ),
            (
                Message(
                    "GitHub answers 403 when you run out of API quota: unauthenticated requests "
                    "get 60 an hour per IP, and the sync makes a few hundred, so it dies "
                    "halfway. I added a token (`GITHUB_TOKEN`, 5,000 requests an hour) and, when "
                    "`X-RateLimit-Remaining` is 0, a wait until `X-RateLimit-Reset` before "
                    "retrying, up to five times."
                ),
            ),
        ),
    ),
)

CRON_TWICE = Scenario(
    name="cron_runs_twice",
    description="The invoice job runs twice since scaling to two replicas; a lock fixes it.",
    setup_files={
        "jobs.py": (
            "from apscheduler.schedulers.background import BackgroundScheduler\n\n"
            "sched = BackgroundScheduler()\nsched.add_job(send_invoices, 'cron', hour=6)\n"
            "sched.start()\n"
        ),
    },
    turns=(
        _turn(
            "Customers got their invoice emails twice this morning. We went from one web "
            "replica to two yesterday. Related?",
            (_think("**Scheduler in every process**"), _run("cat jobs.py")),
            (
                Message(
                    "Yes: the scheduler starts inside every web process, so with two replicas "
                    "`send_invoices` fires twice at 06:00. Either run the scheduler in one "
                    "dedicated worker, or have each run take a PostgreSQL advisory lock "
                    "(`SELECT pg_try_advisory_lock(42)`) and skip when another replica holds "
                    "it. Also make the job idempotent: mark each invoice as sent in the same "
                    "transaction, so a retry never mails it again."
                ),
            ),
        ),
    ),
)

PACKAGING = Scenario(
    name="module_not_found_after_install",
    description="pip install works but the CLI fails with ModuleNotFoundError: src layout.",
    setup_files={
        "pyproject.toml": (
            '[project]\nname = "tidyfiles"\nversion = "0.3.0"\n\n[project.scripts]\n'
            'tidy = "tidyfiles.cli:main"\n\n[tool.setuptools]\npackages = ["tidyfiles"]\n'
        ),
        "src/tidyfiles/__init__.py": "",
        "src/tidyfiles/cli.py": "def main():\n    print('tidy')\n",
    },
    turns=(
        _turn(
            "After pip install . the tidy command crashes with ModuleNotFoundError: No module "
            "named 'tidyfiles'. It runs fine from the repo.",
            (_think("**Where the package lives**"), _run("cat pyproject.toml && ls src")),
            (
                ApplyPatch(
                    "*** Begin Patch\n*** Update File: pyproject.toml\n@@\n-[tool.setuptools]\n"
                    '-packages = ["tidyfiles"]\n+[tool.setuptools.packages.find]\n'
                    '+where = ["src"]\n*** End Patch\n'
                ),
            ),
            (
                Message(
                    "The code is in `src/tidyfiles`, but setuptools is told the package is "
                    "`tidyfiles` at the project root, so the wheel ships an entry point and no "
                    "package. From the checkout it works only because you run it from there. "
                    'I switched to `packages.find` with `where = ["src"]`. Reinstall and '
                    "test from another directory (or in CI, from the built wheel)."
                ),
            ),
        ),
    ),
)

LOG_LATENCY = Scenario(
    name="nginx_latency_p95",
    description="p95 latency per endpoint from an nginx access log, with awk and sort.",
    setup_files={
        "access.log": "\n".join(
            f'10.0.0.{i % 7} - - [12/Mar/2024:10:{i % 60:02d}:00 +0000] "GET /api/'
            f'{("search", "orders", "login")[i % 3]} HTTP/1.1" 200 512 '
            f"{0.02 + (i % 11) * 0.037:.3f}"
            for i in range(60)
        )
        + "\n",
    },
    turns=(
        _turn(
            "Users say the app feels sluggish. access.log has request times in the last column. "
            "Which endpoint is slowest at the tail?",
            (
                _think("**Tail latency per endpoint**"),
                _run(
                    "for e in search orders login; do printf '%s ' $e; grep \"/api/$e \" "
                    "access.log | awk '{print $NF}' | sort -n | awk '{a[NR]=$1} END "
                    "{print a[int(NR*0.95)]}'; done"
                ),
            ),
            (
                Message(
                    "95th percentile response time by endpoint: `/api/search` is the slowest "
                    "at the tail, then `/api/orders` and `/api/login` (the command above "
                    "prints each). Averages hide this: most requests are fast, a few are very "
                    "slow. Log `$upstream_response_time` as well to tell the app from nginx, "
                    "and look at the search handler first."
                ),
            ),
        ),
    ),
)

EVAL_SCENARIOS: tuple[Scenario, ...] = (
    LOCKFILE,
    FLAKY_WEBSOCKET,
    DOCKER_IMAGE,
    SLOW_QUERY,
    CORS,
    MEMORY_LEAK,
    TIMEZONE,
    LEAKED_SECRET,
    RATE_LIMIT,
    CRON_TWICE,
    PACKAGING,
    LOG_LATENCY,
)

# The e2e scenarios worth judging: the others say nothing a person would search for.
JUDGED_E2E = (
    "reasoning_answer",
    "shell_failure",
    "multi_tool_calls",
    "apply_patch_add",
    "apply_patch_update",
    "resume_followup",
    "failed_turn_after_tool",
)


def all_scenarios() -> list[Scenario]:
    e2e = [s for s in SCENARIOS if s.name in JUDGED_E2E]
    return [*EVAL_SCENARIOS, *e2e]


def generate(out_dir: Path, names: list[str]) -> None:
    """Play the scenarios (all, or those named) and keep each rollout, compressed as Codex
    can write them, in ``out_dir/<name>.jsonl.zst``."""
    out_dir.mkdir(parents=True, exist_ok=True)
    for scenario in all_scenarios():
        if names and scenario.name not in names:
            continue
        base = Path(tempfile.mkdtemp(prefix=f"eval-{scenario.name}-", dir=codex_homes_root()))
        try:
            result = run_scenario(scenario, base / "work", codex_home_parent=base)
            packed = zstandard.ZstdCompressor(level=19).compress(result.rollout_path.read_bytes())
            (out_dir / f"{scenario.name}.jsonl.zst").write_bytes(packed)
            print(f"{scenario.name}: {result.thread_id}")
        finally:
            shutil.rmtree(base, ignore_errors=True)


if __name__ == "__main__":
    args = sys.argv[1:]
    out = Path(args.pop(0)) if args and "/" in args[0] else OUT_DIR
    generate(out, args)
