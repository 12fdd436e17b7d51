"""The web app in a real browser: Debian's Chromium (playwright-core) against a real
`sessionbase serve` on a real mirrored Codex home.

The home holds the shared corpus (rollouts written by several Codex versions) plus sessions
the pinned Codex CLI writes here against the loopback mock model (commands, a patch, a plan,
reasoning). One server serves the module. Each test runs one scenario of
``js/web_app.mjs`` and asserts on the JSON it reports; every scenario also reports console
errors, uncaught exceptions, failed requests and HTTP errors, which must be none.

Screenshots of every page at 1280 and 390 px wide land in ``tests/out/screenshots`` (or
``SESSIONBASE_SCREENSHOTS``).
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import tempfile
import time
import urllib.request
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import pytest

from sessionbase.server.webapp import WEB_ROOT
from tests.builders.codex import Rollout
from tests.conftest import CORPUS
from tests.support.browser import run_browser_script
from tests.support.codex_cli import codex_homes_root, harness_setting
from tests.support.codex_scenarios import SCENARIOS_BY_NAME, run_scenario
from tests.support.server import ServerProcess

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]
CLI_SCENARIOS = ("multi_tool_calls", "apply_patch_update", "reasoning_answer")
THREAD_OF_EVERY_KIND = "019e1625-789d-76c0-80ab-3724b5ddb799"  # in the corpus
LIVE_LATENCY_MS = 1000  # the issue: a line Codex writes appears within a second
DAY = ("2026", "01", "02")


@dataclass
class WebHome:
    server: ServerProcess
    codex_home: Path
    cli_threads: dict[str, tuple[str, Path]]  # scenario -> (thread id, rollout in our home)
    parent: str  # a thread with two sub-agents
    subagents: list[str]

    @property
    def url(self) -> str:
        return self.server.url

    def query(self, path: str, **args: Any) -> Any:
        request = urllib.request.Request(
            f"{self.url}/v1/query/{path}",
            data=json.dumps(args).encode(),
            headers={"content-type": "application/json"},
        )
        with urllib.request.urlopen(request, timeout=30) as response:
            return json.loads(response.read())

    def messages(self, thread_id: str) -> list[dict[str, Any]]:
        """Every row of a thread, as messages:list pages them."""
        rows: list[dict[str, Any]] = []
        cursor = None
        while True:
            opts = {"numItems": 1000, "cursor": cursor}
            page = self.query("messages:list", threadId=thread_id, paginationOpts=opts)
            rows += page["page"]
            if page["isDone"]:
                return rows
            cursor = page["continueCursor"]

    def message(self, thread_id: str, idx: int) -> dict[str, Any]:
        return next(m for m in self.messages(thread_id) if m["idx"] == idx)

    def run(self, scenario: str, **config: Any) -> Any:
        config = {"url": self.url, **config}
        result = run_browser_script("web_app.mjs", scenario, json.dumps(config))
        assert result.pop("problems") == [], "the browser saw errors"
        return result


def _copy_corpus(sessions: Path) -> None:
    for path in CORPUS.glob("*/*.jsonl"):
        name = path.name if path.name.startswith("rollout-") else f"rollout-{path.name}"
        shutil.copy(path, sessions / name)


def _write_history(home: Path) -> tuple[str, list[str]]:
    """A thread that spawned two sub-agents, and 50 older one-question threads, so that the
    history is longer than its first page. Returns the parent's id and its sub-agents' ids."""
    day = datetime(2026, 3, 1, 9, 0, tzinfo=UTC)
    parent = Rollout(start=day, cwd="/work/web-app")
    turn = parent.turn()
    parent.user("Split the review between two helpers")
    parent.assistant("Two sub-agents are on it.")
    parent.end_turn(turn)
    parent.write(home)
    children = []
    for i, (role, nickname) in enumerate((("explorer", "Ada"), ("worker", "Grace"))):
        spawn = {"parent_thread_id": parent.thread_id, "depth": 1, "agent_role": role,
                 "agent_nickname": nickname}  # fmt: skip
        child = Rollout(start=day + timedelta(minutes=i + 1), cwd="/work/web-app",
                        source={"subagent": {"thread_spawn": spawn}})  # fmt: skip
        turn = child.turn()
        child.user(f"Review part {i + 1}")
        child.assistant(f"Part {i + 1} looks right.")
        child.end_turn(turn)
        child.write(home)
        children.append(child.thread_id)
    for i in range(50):
        old = Rollout(start=datetime(2024, 1, 1, tzinfo=UTC) + timedelta(hours=i), cwd="/work/old")
        turn = old.turn()
        old.user(f"Old question {i}")
        old.assistant(f"Old answer {i}")
        old.end_turn(turn)
        old.write(home)
    return parent.thread_id, children


def _write_skills(root: Path) -> None:
    """A user skill, and a SKILL.md Codex cannot read (the skills page lists both)."""
    (root / "review").mkdir(parents=True)
    (root / "review" / "SKILL.md").write_text(
        "---\nname: review\ndescription: Review a change for bugs, tests and naming before it"
        " lands.\nlicense: MIT\n---\nRead the diff twice.\n"
    )
    (root / "broken").mkdir()
    (root / "broken" / "SKILL.md").write_text("---\nname: [unclosed\n---\n")


@pytest.fixture(scope="module")
def web_home(chromium: None, codex_binary: Path) -> Iterator[WebHome]:
    root = Path(tempfile.mkdtemp(prefix="web-", dir=codex_homes_root()))
    codex_home = root / "codex-home"
    sessions = codex_home / "sessions" / Path(*DAY)
    sessions.mkdir(parents=True)
    _copy_corpus(sessions)
    _write_skills(codex_home / "skills")
    parent, subagents = _write_history(codex_home)
    cli_threads: dict[str, tuple[str, Path]] = {}
    for name in CLI_SCENARIOS:
        result = run_scenario(
            SCENARIOS_BY_NAME[name], root / "work" / name, codex_home_parent=root / "codex"
        )
        target = sessions / result.rollout_path.name
        shutil.copy(result.rollout_path, target)
        cli_threads[name] = (result.thread_id, target)
        result.codex_home.remove()
    server = ServerProcess(root / "data", codex_home).start(timeout=120)
    _wait_for_semantic_search(server)
    try:
        yield WebHome(server, codex_home, cli_threads, parent, subagents)
    finally:
        server.stop()
        if harness_setting("SESSIONBASE_KEEP_CODEX_HOMES") != "1":
            shutil.rmtree(root, ignore_errors=True)


def _wait_for_semantic_search(server: ServerProcess, timeout: float = 120.0) -> None:
    """Every message is embedded (the paraphrase search needs it)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with urllib.request.urlopen(f"{server.url}/readyz", timeout=5) as response:
            if json.loads(response.read())["semantic"]:
                return
        time.sleep(0.2)
    raise AssertionError(f"semantic search not ready after {timeout} s:\n{server.log()}")


def _screenshots() -> Path:
    default = REPO / "tests" / "out" / "screenshots"
    return Path(harness_setting("SESSIONBASE_SCREENSHOTS") or default)


# ------------------------------------------------------------------ tests


def test_drawer_lists_the_mirrored_threads_page_by_page(web_home: WebHome) -> None:
    threads = web_home.query("threads:recent", limit=500)
    assert len(threads) > 60  # more than the first page
    shown = web_home.run("drawer", expectCount=len(threads))
    assert shown["firstPage"] < len(threads)
    assert shown["ids"] == [t["id"] for t in threads]
    assert "threads" in shown["status"]
    # served on loopback: no other device can reach it, and the address says where it is
    assert "cannot reach it" in shown["access"], shown["access"]
    assert f"127.0.0.1:{web_home.server.port}" in shown["access"], shown["access"]
    for _, (thread_id, _) in web_home.cli_threads.items():
        assert thread_id in shown["ids"]
    for path in CORPUS.glob("codemie-ai__codemie-code/rollout-*.jsonl"):
        assert path.stem[-36:] in shown["ids"]


def test_subagents_fold_under_the_thread_that_spawned_them(web_home: WebHome) -> None:
    shown = web_home.run("drawer", expectCount=0, parentId=web_home.parent)
    assert not set(web_home.subagents) & set(shown["ids"])  # not listed on their own
    assert shown["subagents"]["label"] == "2 sub-agents"
    assert sorted(shown["subagents"]["ids"]) == sorted(web_home.subagents)


def test_keys_move_through_the_history(web_home: WebHome) -> None:
    shown = web_home.run("keys")
    ids = shown["ids"]
    assert shown["visited"] == [ids[0], ids[1], ids[0]]
    assert shown["focused"] == "search-input"


def _look(message: dict[str, Any]) -> str:
    """What a row of this kind must show: the label of its activity line, or its class."""
    kind, role = message["kind"], message["role"]
    if kind == "message":
        return "msg-user" if role == "user" else "msg-assistant"
    if kind == "error":
        return "divider" if message["data"].get("aborted") else "callout"
    labels = {"reason": "Thought", "cmd": "Ran", "patch": "Edited", "tool": "Called",
              "search": "Searched", "plan": "act-plan"}  # fmt: skip
    return labels[kind]


def _exit_badge(message: dict[str, Any]) -> str | None:
    code = message["data"].get("exit_code") if message["kind"] in ("cmd", "tool") else None
    if code is None:
        return None
    return "0" if code == 0 else f"exit {code}"


@pytest.mark.parametrize(
    "thread",
    [
        "019e1625-789d-76c0-80ab-3724b5ddb799",  # commands, tool calls, patches, plans, searches
        "01997e76-d124-7592-9cac-2ec05abbca08",  # reasoning, interrupted turns, 800 lines
        "multi_tool_calls",  # written by the real Codex CLI here
    ],
)
def test_a_thread_shows_every_row_in_order_drawn_by_kind(web_home: WebHome, thread: str) -> None:
    thread_id = web_home.cli_threads[thread][0] if thread in web_home.cli_threads else thread
    messages = web_home.messages(thread_id)
    assert messages, "the thread has no rows"
    outputs = (m["idx"] for m in messages if m["kind"] == "cmd" and m["data"].get("output"))
    command = next(outputs, None)
    shown = web_home.run(
        "transcript", threadId=thread_id, lastIdx=messages[-1]["idx"], commandIdx=command
    )
    assert shown["lastInView"], "the thread did not open at its last row"
    rows = shown["rows"]
    print(f"{thread_id}: {len(rows)} rows, kinds {sorted({r['kind'] for r in rows})}")
    assert [(r["idx"], r["role"], r["kind"]) for r in rows] == [
        (m["idx"], m["role"], m["kind"]) for m in messages
    ]
    for row, message in zip(rows, messages, strict=True):
        look = _look(message)
        assert look in (row["label"], *row["look"].split()), (row, message["kind"])
        assert row["exit"] == _exit_badge(message), (row, message["data"].get("exit_code"))
    if command is not None:
        output = next(m for m in messages if m["idx"] == command)["data"]["output"]
        assert shown["output"].strip().splitlines()[0] == output.strip().splitlines()[0]


def test_lines_appended_to_a_rollout_show_without_a_reload(web_home: WebHome) -> None:
    thread_id, path = web_home.cli_threads["reasoning_answer"]
    before = len(web_home.messages(thread_id))
    appended = Rollout(thread_id, start=datetime.now(UTC), write_meta=False)
    appended.user("One more question, typed while the page was open")
    appended.assistant("And its answer, appended to the rollout live")
    shown = web_home.run(
        "append",
        threadId=thread_id,
        path=str(path),
        lines=[line.decode() for line in appended.lines],
        expectText="And its answer, appended to the rollout live",
    )
    assert shown["reloaded"] is False
    assert shown["inView"], "the new row arrived below the view instead of being followed"
    print(f"append → visible: {shown['latencyMs']} ms")
    assert shown["latencyMs"] <= LIVE_LATENCY_MS, f"took {shown['latencyMs']} ms"
    assert len(web_home.messages(thread_id)) == before + 2


def test_rename_pin_and_archive_show_live_in_a_second_browser(web_home: WebHome) -> None:
    thread_id, _ = web_home.cli_threads["apply_patch_update"]
    shown = web_home.run("mutations", threadId=thread_id, title="Port change, renamed live")
    assert shown["seen"] == {"renamed": True, "pinned": True, "archivedHidden": True,
                             "restored": True}  # fmt: skip
    thread = web_home.query("threads:get", id=thread_id)
    assert (thread["pinned"], thread["archived"]) == (False, False)
    assert thread["titleSource"] == "message"


def test_the_header_says_when_the_connection_drops_and_the_page_recovers(
    web_home: WebHome,
) -> None:
    thread_id, _ = web_home.cli_threads["multi_tool_calls"]
    shown = web_home.run("reconnect", threadId=thread_id, title="Renamed after the outage")
    assert shown["before"] is False
    assert shown["notice"] == "Reconnecting…"
    assert web_home.query("threads:get", id=thread_id)["titleSource"] != "user"


def test_search_by_identifier_opens_the_thread_at_the_hit(web_home: WebHome) -> None:
    target = "019e1625-789d-76c0-80ab-3724b5ddb799"
    shown = web_home.run("typeahead", q="OPENCODE_CONFIG_CONTENT", threadId=target)
    assert shown["inView"]
    # The snippet marks the identifier, whole or by its parts; the row opened holds it.
    assert shown["marked"]
    for marked in shown["marked"]:
        assert set(re.split(r"[^a-z0-9]+", marked.lower())) <= {"opencode", "config", "content"}
    hit = web_home.message(target, shown["at"])
    assert shown["marked"][0].lower() in (hit["text"] + json.dumps(hit["data"])).lower()


def test_search_by_paraphrase_opens_the_thread_at_the_hit(web_home: WebHome) -> None:
    # The thread asked to "analyze trascript and summarzie action items related to codemie and
    # demo preapration": typos and all, its words are not these; its meaning is.
    target = "019e1695-0522-7c83-8b39-0dd379793f80"
    said = "summarize the demo preparation meeting transcript"
    assert web_home.query("search:threads", q=said, mode="text") == []
    shown = web_home.run("searchPage", query=urlencode({"q": said}), threadId=target)
    assert shown["threads"][0] == target
    assert shown["inView"]


def test_every_page_is_clean_accessible_and_fits_a_phone(web_home: WebHome) -> None:
    pages = _pages()
    result = web_home.run("pages", pages=pages, screenshots=str(_screenshots()))
    for entry in result["report"]:
        where = f"{entry['page']} at {entry['viewport']}"
        overflow = entry["overflow"]
        assert overflow["scrollWidth"] <= overflow["clientWidth"], f"{where} scrolls sideways"
        serious = [v for v in entry["violations"] if v["impact"] in ("serious", "critical")]
        assert serious == [], f"{where}: {serious}"
    assert len(result["report"]) == 2 * len(pages)


def test_a_phone_never_scrolls_sideways_and_opens_the_history_as_a_sheet(
    web_home: WebHome,
) -> None:
    shown = web_home.run("phone", pages=_pages(), threadId=THREAD_OF_EVERY_KIND)
    for page in shown["overflow"]:
        assert page["scrollWidth"] <= page["clientWidth"], f"{page['page']} scrolls sideways"
    assert len(shown["overflow"]) == len(_pages())
    assert shown["hiddenBefore"]
    assert shown["sheet"]["x"] >= 0
    assert shown["sheet"]["links"] >= len(CLI_SCENARIOS)
    assert shown["sheet"]["focusedInSheet"] == "page"  # focus went to the open thread's row
    assert shown["sheet"]["focusBack"] == "menu"  # and back to the button on Escape


def _pages() -> list[dict[str, str]]:
    """The main pages, each with a selector that says it has drawn its content."""
    return [
        {"name": "home", "path": "/", "ready": "aside#history a[data-thread-link]"},
        {"name": "thread", "path": f"/t/{THREAD_OF_EVERY_KIND}",
         "ready": "[data-testid=transcript] .row[data-idx]"},
        {"name": "search", "path": "/search?q=compaction+threshold",
         "ready": "[data-testid=search-results] a.hit"},
        {"name": "projects", "path": "/projects", "ready": "[data-testid=projects] li"},
        {"name": "skills", "path": "/skills", "ready": "[data-testid=skills-user] li"},
    ]  # fmt: skip


def test_the_wheel_ships_the_built_app(tmp_path: Path) -> None:
    uv = shutil.which("uv")
    if uv is None:
        pytest.fail("uv is not on PATH (scripts/test installs it)")
    subprocess.run(
        [uv, "build", "--wheel", "--out-dir", str(tmp_path)],
        cwd=REPO, check=True, capture_output=True, timeout=300,
    )  # fmt: skip
    (wheel,) = tmp_path.glob("sessionbase-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    shipped = {
        f"sessionbase/server/web/{p.relative_to(WEB_ROOT).as_posix()}"
        for p in WEB_ROOT.rglob("*")
        if p.is_file()
    }
    assert "sessionbase/server/web/index.html" in shipped
    assert any(n.startswith("sessionbase/server/web/assets/") for n in shipped)
    assert shipped <= names
