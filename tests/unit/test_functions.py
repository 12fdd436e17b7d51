"""Every registered function through the real in-process app, over a database filled by backfill.

The app is ``create_app(settings, ingest=False)`` with its lifespan running on a loop thread;
requests go through ``httpx.ASGITransport``. The corpus (built with ``tests.builders``):

====  ======  ========  ==========================================  =============
name  source  project   notes                                       updated
====  ======  ========  ==========================================  =============
A     cli     proj1     git metadata, tokens, shell command          first
F     cli     proj1     forked from A                                 +1 min
S     sub     proj1     subagent spawned by A (role explorer, Ada)   +2 min
V     vscode  proj2     25 alternating user/assistant messages       +3 min
X     exec    proj2     archived by Codex (``archived_sessions``)    +4 min (newest)
====  ======  ========  ==========================================  =============
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Coroutine, Iterator
from dataclasses import dataclass
from datetime import timedelta
from importlib.metadata import version as package_version
from pathlib import Path
from typing import Any, TypeVar

import httpx
import pytest

from sessionbase.config import Settings
from sessionbase.live.engine import Engine
from sessionbase.server import create_app
from sessionbase.store import sqlite as sqlite_store
from tests.builders.codex import DEFAULT_START, Rollout
from tests.conftest import Cli


@pytest.fixture
def settings(backend_settings: Settings) -> Settings:
    """Every test of this module runs on SQLite and on PostgreSQL."""
    return backend_settings


T = TypeVar("T")

FUNCTIONS = {
    "projects:list": "query",
    "projects:get": "query",
    "projects:save": "mutation",
    "projects:remove": "mutation",
    "threads:recent": "query",
    "threads:list": "query",
    "threads:get": "query",
    "threads:rename": "mutation",
    "threads:setArchived": "mutation",
    "threads:setPinned": "mutation",
    "messages:list": "query",
    "messages:tail": "query",
    "skills:list": "query",
    "status:get": "query",
    "search:messages": "query",
    "search:threads": "query",
    "messages:similar": "query",
    "threads:similar": "query",
    "devices:list": "query",
    "devices:revoke": "mutation",
    "devices:rename": "mutation",
    "pairing:create": "mutation",
}


class Api:
    """The app with its lifespan running on a private loop thread; sync calls for tests."""

    def __init__(self, settings: Settings) -> None:
        self.app = create_app(settings, ingest=False)
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        self._lifespan = self.app.router.lifespan_context(self.app)
        self._run(self._lifespan.__aenter__())
        self.client = httpx.AsyncClient(
            transport=httpx.ASGITransport(app=self.app), base_url="http://127.0.0.1"
        )

    def _run(self, coro: Coroutine[Any, Any, T]) -> T:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout=60)

    def close(self) -> None:
        self._run(self.client.aclose())
        self._run(self._lifespan.__aexit__(None, None, None))
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)
        self.loop.close()

    def request(self, method: str, url: str, **kwargs: Any) -> httpx.Response:
        return self._run(self.client.request(method, url, **kwargs))

    def get(self, url: str, **kwargs: Any) -> httpx.Response:
        return self.request("GET", url, **kwargs)

    def post(self, url: str, **kwargs: Any) -> httpx.Response:
        return self.request("POST", url, **kwargs)

    def query(self, path: str, **args: Any) -> Any:
        response = self.post(f"/v1/query/{path}", json=args)
        assert response.status_code == 200, response.text
        return response.json()

    def mutation(self, path: str, **args: Any) -> Any:
        response = self.post(f"/v1/mutation/{path}", json=args)
        assert response.status_code == 200, response.text
        return response.json()

    def error(self, kind: str, path: str, args: Any, status: int) -> str:
        """Call expecting a failure with ``status``; return the error message."""
        response = self.post(f"/v1/{kind}/{path}", json=args)
        assert response.status_code == status, response.text
        body = response.json()
        assert set(body) == {"error"}
        assert set(body["error"]) == {"code", "message"}
        assert body["error"]["code"] == ("not_found" if status == 404 else "bad_request")
        message: str = body["error"]["message"]
        return message


@dataclass
class Corpus:
    codex_home: Path
    proj1: Path
    proj2: Path
    a: Rollout
    f: Rollout
    s: Rollout
    v: Rollout
    x: Rollout
    paths: dict[str, Path]


def build_corpus(codex_home: Path, root: Path) -> Corpus:
    proj1 = root / "proj1"
    (proj1 / ".git").mkdir(parents=True)
    proj2 = root / "proj2"
    proj2.mkdir()
    skill = proj1 / ".agents" / "skills" / "lint"
    skill.mkdir(parents=True)
    (skill / "SKILL.md").write_text("---\nname: lint\ndescription: Lint the repo.\n---\n")
    user_skill = codex_home / "skills" / "deploy"
    user_skill.mkdir(parents=True)
    (user_skill / "SKILL.md").write_text("---\nname: deploy\ndescription: Ship it.\n---\n")

    git = {"commit_hash": "abc123", "branch": "main", "repository_url": "https://git/x.git"}
    a = Rollout(cwd=str(proj1 / "src"), meta={"git": git})
    turn = a.turn()
    a.context()
    a.user("Fix the parser")
    a.reasoning("Looking at the parser")
    a.shell("pytest -q", "1 failed\n" + "detail line\n" * 200, exit_code=1)
    a.assistant("Fixed the parser.")
    a.tokens(1000)
    a.end_turn(turn)

    f = Rollout(start=DEFAULT_START + timedelta(minutes=1), cwd=str(proj1),
                meta={"forked_from_id": a.thread_id})  # fmt: skip
    turn = f.turn()
    f.user("Try another way")
    f.assistant("Done another way.")
    f.end_turn(turn)

    spawn = {"parent_thread_id": a.thread_id, "depth": 1, "agent_role": "explorer",
             "agent_nickname": "Ada"}  # fmt: skip
    s = Rollout(start=DEFAULT_START + timedelta(minutes=2), cwd=str(proj1),
                source={"subagent": {"thread_spawn": spawn}})  # fmt: skip
    turn = s.turn()
    s.user("Explore the tests")
    s.assistant("Found three tests.")
    s.end_turn(turn)

    v = Rollout(start=DEFAULT_START + timedelta(minutes=3), cwd=str(proj2), source="vscode",
                originator="codex_vscode")  # fmt: skip
    turn = v.turn()
    for i in range(25):
        if i % 2 == 0:
            v.user(f"question {i}")
        else:
            v.assistant(f"answer {i}")
    v.end_turn(turn)

    x = Rollout(start=DEFAULT_START + timedelta(minutes=4), cwd=str(proj2), source="exec",
                originator="codex_exec")  # fmt: skip
    turn = x.turn()
    x.user("Old archived work")
    x.end_turn(turn)

    paths = {"a": a.write(codex_home), "f": f.write(codex_home), "s": s.write(codex_home),
             "v": v.write(codex_home), "x": x.write(codex_home, archived=True)}  # fmt: skip
    return Corpus(codex_home, proj1, proj2, a, f, s, v, x, paths)


@pytest.fixture
def corpus(codex_home: Path, tmp_path: Path, run_cli: Cli) -> Corpus:
    built = build_corpus(codex_home, tmp_path / "work")
    run_cli("backfill")
    return built


@pytest.fixture
def api(settings: Settings, corpus: Corpus) -> Iterator[Api]:
    client = Api(settings)
    try:
        yield client
    finally:
        client.close()


def ids(threads: list[dict[str, Any]]) -> list[str]:
    return [t["id"] for t in threads]


# ------------------------------------------------------------------ threads


def test_threads_recent_filters(api: Api, corpus: Corpus) -> None:
    a, f, s, v, x = (r.thread_id for r in (corpus.a, corpus.f, corpus.s, corpus.v, corpus.x))
    assert ids(api.query("threads:recent")) == [v, f, a]
    assert ids(api.query("threads:recent", includeArchived=True)) == [x, v, f, a]
    assert ids(api.query("threads:recent", includeSubagents=True)) == [v, s, f, a]
    everything = api.query("threads:recent", includeArchived=True, includeSubagents=True)
    assert ids(everything) == [x, v, s, f, a]
    assert ids(api.query("threads:recent", limit=2)) == [v, f]
    assert ids(api.query("threads:recent", limit=1, includeArchived=True)) == [x]

    proj1 = everything[-1]["projectId"]
    proj2 = everything[0]["projectId"]
    assert proj1 != proj2
    assert ids(api.query("threads:recent", projectId=proj1)) == [f, a]
    assert ids(api.query("threads:recent", projectId=proj1, includeSubagents=True)) == [s, f, a]
    assert ids(api.query("threads:recent", projectId=proj2)) == [v]
    assert ids(api.query("threads:recent", projectId="nope")) == []
    assert ids(api.query("threads:recent", source="vscode")) == [v]
    assert ids(api.query("threads:recent", source="exec")) == []
    assert ids(api.query("threads:recent", source="exec", includeArchived=True)) == [x]
    assert ids(api.query("threads:recent", source="subagent", includeSubagents=True)) == [s]


def _walk(api: Api, size: int, **args: Any) -> list[list[str]]:
    """Every page of threads:list, by hand: each page starts at the last one's cursor."""
    pages: list[list[str]] = []
    cursor = None
    while True:
        page = api.query(
            "threads:list", paginationOpts={"numItems": size, "cursor": cursor}, **args
        )
        pages.append(ids(page["page"]))
        if page["isDone"]:
            return pages
        cursor = page["continueCursor"]


def test_threads_list_pages_through_the_same_order(api: Api, corpus: Corpus) -> None:
    a, f, s, v, x = (r.thread_id for r in (corpus.a, corpus.f, corpus.s, corpus.v, corpus.x))
    assert _walk(api, 2) == [[v, f], [a]]
    assert _walk(api, 1) == [[v], [f], [a]]
    assert _walk(api, 10, includeArchived=True) == [[x, v, f, a]]
    assert _walk(api, 3, includeArchived=True, includeSubagents=True) == [[x, v, s], [f, a]]
    proj1 = api.query("threads:get", id=a)["projectId"]
    assert _walk(api, 5, projectId=proj1) == [[f, a]]
    assert _walk(api, 5, source="vscode") == [[v]]
    assert _walk(api, 5, parentId=a) == [[s]]
    assert _walk(api, 5, parentId=v) == [[]]
    # The end of a page is inclusive: the page between two cursors is stable.
    first = api.query("threads:list", paginationOpts={"numItems": 1})
    between = api.query(
        "threads:list",
        paginationOpts={"numItems": 1, "cursor": None, "endCursor": first["continueCursor"]},
    )
    assert ids(between["page"]) == [v]
    assert between["isDone"] is False


def test_threads_list_counts_subagents_and_filters_pins(api: Api, corpus: Corpus) -> None:
    a, f, v = corpus.a.thread_id, corpus.f.thread_id, corpus.v.thread_id
    page = api.query("threads:list", paginationOpts={"numItems": 10})["page"]
    assert {t["id"]: t["subagentCount"] for t in page} == {v: 0, f: 0, a: 1}
    children = api.query("threads:list", parentId=a, paginationOpts={"numItems": 10})["page"]
    assert "subagentCount" not in children[0]
    assert children[0]["agentNickname"] == "Ada"
    api.mutation("threads:setPinned", id=f, pinned=True)
    pinned = api.query("threads:list", pinned=True, paginationOpts={"numItems": 10})
    assert ids(pinned["page"]) == [f]
    unpinned = api.query("threads:list", pinned=False, paginationOpts={"numItems": 10})
    assert ids(unpinned["page"]) == [v, a]


@pytest.mark.parametrize("cursor", ["nope", "12|", "x|abc", "|"])
def test_threads_list_refuses_a_malformed_cursor(api: Api, corpus: Corpus, cursor: str) -> None:
    message = api.error(
        "query", "threads:list", {"paginationOpts": {"numItems": 2, "cursor": cursor}}, 400
    )
    assert "InvalidCursor" in message


def test_threads_recent_summary_fields(api: Api, corpus: Corpus) -> None:
    by_id = {
        t["id"]: t for t in api.query("threads:recent", includeArchived=True, includeSubagents=True)
    }
    a = by_id[corpus.a.thread_id]
    assert set(a) == {
        "id", "title", "titleSource", "snippet", "messageCount", "lastMessageAt", "createdAt",
        "updatedAt", "source", "projectId", "archived", "pinned", "parentThreadId",
        "forkedFromId", "agentRole", "agentNickname", "model", "cwd", "machine",
    }  # fmt: skip
    assert a["title"] == "Fix the parser"
    assert a["titleSource"] == "message"
    assert a["snippet"] == "Fixed the parser."
    assert a["messageCount"] == 2
    assert a["source"] == "cli"
    assert a["cwd"] == str(corpus.proj1 / "src")
    assert a["archived"] is False
    assert a["pinned"] is False
    assert a["createdAt"] == int(DEFAULT_START.timestamp() * 1000)
    assert by_id[corpus.v.thread_id]["messageCount"] == 25
    assert by_id[corpus.v.thread_id]["snippet"] == "question 24"
    assert by_id[corpus.x.thread_id]["archived"] is True
    sub = by_id[corpus.s.thread_id]
    assert (sub["parentThreadId"], sub["agentRole"], sub["agentNickname"]) == (
        corpus.a.thread_id,
        "explorer",
        "Ada",
    )
    assert by_id[corpus.f.thread_id]["forkedFromId"] == corpus.a.thread_id


def test_threads_get_detail(api: Api, corpus: Corpus) -> None:
    a = api.query("threads:get", id=corpus.a.thread_id)
    assert a["id"] == corpus.a.thread_id
    assert a["tokens"] == {"input": 900, "cached": 450, "output": 100, "reasoning": 0,
                           "total": 1000}  # fmt: skip
    assert a["resumeCommand"] == f"codex resume {corpus.a.thread_id}"
    assert a["rolloutPath"] == str(corpus.paths["a"])
    assert a["originator"] == "codex-tui"
    assert a["cliVersion"] == "0.125.0"
    assert a["modelProvider"] == "openai"
    assert a["model"] == "gpt-5.5"
    assert a["git"]["branch"] == "main"
    assert (a["parentThreadId"], a["forkedFromId"]) == (None, None)
    # user message, reasoning, command, answer: every row of the transcript, not only messages
    assert (a["messageCount"], a["itemCount"]) == (2, 4)
    rows = api.query("messages:list", threadId=a["id"], paginationOpts={"numItems": 100})
    assert [m["idx"] for m in rows["page"]] == list(range(a["itemCount"]))

    fork = api.query("threads:get", id=corpus.f.thread_id)
    assert fork["forkedFromId"] == corpus.a.thread_id
    assert fork["parentThreadId"] is None

    sub = api.query("threads:get", id=corpus.s.thread_id)
    assert sub["parentThreadId"] == corpus.a.thread_id
    assert sub["source"] == "subagent"
    assert sub["agentRole"] == "explorer"
    assert sub["sourceDetail"] is not None
    assert api.query("threads:get", id="0000-no-such-thread") is None


# ------------------------------------------------------------------ messages


def test_messages_list_pages_through_a_thread(api: Api, corpus: Corpus) -> None:
    tid = corpus.v.thread_id

    def page(**opts: Any) -> dict[str, Any]:
        result: dict[str, Any] = api.query("messages:list", threadId=tid, paginationOpts=opts)
        assert set(result) == {"page", "isDone", "continueCursor"}
        return result

    first = page(numItems=10, cursor=None)
    assert [m["idx"] for m in first["page"]] == list(range(10))
    assert (first["isDone"], first["continueCursor"]) == (False, "9")
    row = first["page"][0]
    assert row == {
        "id": f"{tid}:0", "threadId": tid, "idx": 0, "turnId": row["turnId"], "ts": row["ts"],
        "role": "user", "kind": "message", "text": "question 0", "data": row["data"],
    }  # fmt: skip
    assert first["page"][1]["role"] == "assistant"
    assert first["page"][1]["text"] == "answer 1"

    second = page(numItems=10, cursor=first["continueCursor"])
    assert [m["idx"] for m in second["page"]] == list(range(10, 20))
    assert (second["isDone"], second["continueCursor"]) == (False, "19")
    last = page(numItems=10, cursor=second["continueCursor"])
    assert [m["idx"] for m in last["page"]] == list(range(20, 25))
    assert (last["isDone"], last["continueCursor"]) == (True, "24")
    exact = page(numItems=5, cursor="19")
    assert [m["idx"] for m in exact["page"]] == list(range(20, 25))
    assert exact["isDone"] is True
    beyond = page(numItems=10, cursor="24")
    assert (beyond["page"], beyond["isDone"], beyond["continueCursor"]) == ([], True, "24")

    # endCursor pins where a page ends, whatever numItems says (a re-run keeps its rows)
    pinned = page(numItems=3, cursor=None, endCursor="9")
    assert [m["idx"] for m in pinned["page"]] == list(range(10))
    assert (pinned["isDone"], pinned["continueCursor"]) == (False, "9")
    middle = page(numItems=3, cursor="9", endCursor="14")
    assert [m["idx"] for m in middle["page"]] == list(range(10, 15))
    to_end = page(numItems=3, cursor="19", endCursor="24")
    assert [m["idx"] for m in to_end["page"]] == list(range(20, 25))
    assert to_end["isDone"] is True

    empty = api.query("messages:list", threadId="nope", paginationOpts={"numItems": 5})
    assert empty == {"page": [], "isDone": True, "continueCursor": "-1"}


@pytest.mark.parametrize(
    ("opts", "message"),
    [
        ({"numItems": 0}, "paginationOpts.numItems: Input should be greater than or equal to 1"),
        ({"numItems": 1001}, "paginationOpts.numItems: Input should be less than or equal"),
        ({"numItems": 5, "cursor": "abc"}, "invalid cursor 'abc'"),
        ({"numItems": 5, "endCursor": "x"}, "invalid endCursor 'x'"),
        ({"cursor": None}, "paginationOpts.numItems: Field required"),
        ({"numItems": 5, "bogus": 1}, "paginationOpts.bogus: Extra inputs are not permitted"),
    ],
)
def test_messages_list_bad_pagination(
    api: Api, corpus: Corpus, opts: dict[str, Any], message: str
) -> None:
    args = {"threadId": corpus.v.thread_id, "paginationOpts": opts}
    assert message in api.error("query", "messages:list", args, 400)


def test_messages_tail(api: Api, corpus: Corpus) -> None:
    tail = api.query("messages:tail", threadId=corpus.v.thread_id, n=3)
    assert [(m["idx"], m["text"]) for m in tail] == [
        (22, "question 22"),
        (23, "answer 23"),
        (24, "question 24"),
    ]
    assert len(api.query("messages:tail", threadId=corpus.v.thread_id)) == 25
    rows = api.query("messages:tail", threadId=corpus.a.thread_id, n=1000)
    assert [(m["role"], m["kind"]) for m in rows] == [
        ("user", "message"),
        ("assistant", "reason"),
        ("assistant", "cmd"),
        ("assistant", "message"),
    ]
    assert rows[2]["text"] == "pytest -q"
    assert api.query("messages:tail", threadId="nope", n=5) == []
    assert "n: Input should be greater than or equal to 1" in api.error(
        "query", "messages:tail", {"threadId": corpus.v.thread_id, "n": 0}, 400
    )
    assert "threadId: Field required" in api.error("query", "messages:tail", {"n": 3}, 400)


# ------------------------------------------------------------------ projects, skills, status


def test_projects_list_and_get(api: Api, corpus: Corpus) -> None:
    projects = api.query("projects:list")
    assert [(p["name"], p["threadCount"]) for p in projects] == [("proj2", 2), ("proj1", 3)]
    proj1 = projects[1]
    assert proj1["workingDir"] == str(corpus.proj1)
    assert proj1["repoUrl"] == "https://git/x.git"
    assert proj1["origin"] == "derived"
    assert proj1["hidden"] is False
    assert api.query("projects:get", id=proj1["id"]) == proj1
    assert api.query("projects:get", id="nope") is None
    assert "id: Field required" in api.error("query", "projects:get", {}, 400)


def test_projects_save_create_rename_and_remove(api: Api, corpus: Corpus) -> None:
    new_id = api.mutation("projects:save", name="Scratch", workingDir="/srv/scratch")
    assert isinstance(new_id, str)
    assert len(new_id) == 16
    created = api.query("projects:get", id=new_id)
    assert (created["name"], created["workingDir"], created["origin"], created["threadCount"]) == (
        "Scratch",
        "/srv/scratch",
        "user",
        0,
    )
    assert api.mutation("projects:save", id=new_id, name="Renamed") == new_id
    assert api.query("projects:get", id=new_id)["name"] == "Renamed"
    assert api.query("projects:get", id=new_id)["workingDir"] == "/srv/scratch"

    derived = next(p for p in api.query("projects:list") if p["name"] == "proj1")
    assert api.mutation("projects:save", id=derived["id"], name="Parser work") == derived["id"]
    assert api.query("projects:get", id=derived["id"])["name"] == "Parser work"
    assert api.query("projects:get", id=derived["id"])["threadCount"] == 3

    assert api.mutation("projects:remove", id=new_id) is None
    assert new_id not in ids(api.query("projects:list"))
    assert api.query("projects:get", id=new_id) is None
    assert len(api.query("projects:list")) == 2

    assert "needs a name" in api.error("mutation", "projects:save", {}, 400)
    assert "no project with id 'nope'" in api.error(
        "mutation", "projects:save", {"id": "nope", "name": "x"}, 404
    )
    assert "no project with id 'nope'" in api.error(
        "mutation", "projects:remove", {"id": "nope"}, 404
    )
    assert "name: String should have at least 1 character" in api.error(
        "mutation", "projects:save", {"name": ""}, 400
    )


def test_saving_a_removed_project_brings_it_back(api: Api, corpus: Corpus) -> None:
    proj2 = next(p for p in api.query("projects:list") if p["name"] == "proj2")
    api.mutation("projects:remove", id=proj2["id"])
    assert proj2["id"] not in ids(api.query("projects:list"))
    api.mutation("projects:save", id=proj2["id"], name="proj2 again")
    assert proj2["id"] in ids(api.query("projects:list"))


def test_skills_list(api: Api, corpus: Corpus) -> None:
    skills = api.query("skills:list")
    assert [(s["name"], s["scope"]) for s in skills] == [("lint", "repo"), ("deploy", "user")]
    lint = skills[0]
    assert lint["description"] == "Lint the repo."
    assert lint["path"] == str(corpus.proj1 / ".agents" / "skills" / "lint" / "SKILL.md")
    projects = {p["name"]: p["id"] for p in api.query("projects:list")}
    assert lint["projectId"] == projects["proj1"]
    assert skills[1]["projectId"] is None
    assert [s["name"] for s in api.query("skills:list", projectId=projects["proj1"])] == [
        "lint",
        "deploy",
    ]
    assert [s["name"] for s in api.query("skills:list", projectId=projects["proj2"])] == ["deploy"]


def test_status_get(api: Api, corpus: Corpus) -> None:
    status = api.query("status:get")
    assert status["threads"] == 5
    assert status["messages"] == 2 + 2 + 2 + 25 + 1
    assert status["files"] == 5
    assert status["filesByStatus"] == {"ok": 5}
    assert status["errors"] == 0
    assert status["skippedLines"] == {}
    assert status["lagBytes"] == 0
    assert status["mirror"] == "off"  # this app serves without following files
    assert status["codexHomes"] == [str(corpus.codex_home)]
    assert status["skillProblems"] == []
    ready = api.get("/readyz").json()
    assert status["lastVersion"] == ready["version"] > 0


# ------------------------------------------------------------------ thread mutations


def test_threads_rename_and_clear(api: Api, corpus: Corpus) -> None:
    tid = corpus.a.thread_id
    assert api.mutation("threads:rename", id=tid, title="  Parser fix  ") is None
    thread = api.query("threads:get", id=tid)
    assert (thread["title"], thread["titleSource"]) == ("Parser fix", "user")
    assert api.query("threads:recent")[-1]["title"] == "Parser fix"
    api.mutation("threads:rename", id=tid, title=None)
    thread = api.query("threads:get", id=tid)
    assert (thread["title"], thread["titleSource"]) == ("Fix the parser", "message")
    api.mutation("threads:rename", id=tid, title="Again")
    api.mutation("threads:rename", id=tid, title="   ")
    assert api.query("threads:get", id=tid)["title"] == "Fix the parser"
    assert "no thread with id 'nope'" in api.error(
        "mutation", "threads:rename", {"id": "nope", "title": "x"}, 404
    )
    assert "title: String should have at most 500 characters" in api.error(
        "mutation", "threads:rename", {"id": tid, "title": "x" * 501}, 400
    )


def test_a_mutation_never_waits_on_a_checkpoint(
    api: Api, corpus: Corpus, monkeypatch: pytest.MonkeyPatch, backend: str
) -> None:
    """The client waits for a mutation's commit; a WAL checkpoint run after it on the same
    thread (a copy and an fsync, sometimes hundreds of ms) would be added to that wait."""
    if backend == "postgres":
        pytest.skip("SQLite's WAL checkpoints: PostgreSQL checkpoints on its own")
    monkeypatch.setattr(sqlite_store, "CHECKPOINT_SECONDS", 0.0)
    engine: Engine = api.app.state.engine
    statements: list[str] = []

    def trace_writer() -> None:
        engine._store()._db.set_trace_callback(statements.append)

    engine._writer.submit(trace_writer).result()
    for title in ("one", "two", "three"):
        api.mutation("threads:rename", id=corpus.a.thread_id, title=title)
    assert any("user_metadata" in s for s in statements)  # the trace sees the writer's work
    assert not [s for s in statements if "wal_checkpoint" in s]


def test_functions_take_whole_thread_ids(api: Api, corpus: Corpus) -> None:
    """The API's rule (README): whole ids only; a prefix names no thread, and a mutation
    given one says which whole id it may have meant."""
    a = corpus.a.thread_id
    assert api.query("threads:get", id=a[:-4]) is None
    message = api.error("mutation", "threads:rename", {"id": a[:-4], "title": "x"}, 404)
    assert (
        message == f"no thread with id {a[:-4]!r} (functions take whole ids: did you mean {a!r}?)"
    )
    assert api.query("threads:get", id=a)["title"] != "x"


def test_threads_set_archived(api: Api, corpus: Corpus) -> None:
    a, x = corpus.a.thread_id, corpus.x.thread_id
    api.mutation("threads:setArchived", id=a, archived=True)
    assert a not in ids(api.query("threads:recent"))
    assert api.query("threads:get", id=a)["archived"] is True
    assert a in ids(api.query("threads:recent", includeArchived=True))
    api.mutation("threads:setArchived", id=a, value=False)
    assert a in ids(api.query("threads:recent"))
    # a thread Codex archived can be brought back in sessionbase (the file is not moved)
    api.mutation("threads:setArchived", id=x, archived=False)
    assert ids(api.query("threads:recent"))[0] == x
    assert corpus.paths["x"].exists()
    assert "needs `archived: true|false`" in api.error(
        "mutation", "threads:setArchived", {"id": a}, 400
    )
    assert "no thread" in api.error(
        "mutation", "threads:setArchived", {"id": "n", "value": True}, 404
    )


def test_threads_set_pinned(api: Api, corpus: Corpus) -> None:
    f = corpus.f.thread_id
    api.mutation("threads:setPinned", id=f, pinned=True)
    pinned = {t["id"]: t["pinned"] for t in api.query("threads:recent")}
    assert pinned == {corpus.v.thread_id: False, f: True, corpus.a.thread_id: False}
    api.mutation("threads:setPinned", id=f, value=False)
    assert api.query("threads:get", id=f)["pinned"] is False
    assert "needs `pinned: true|false`" in api.error(
        "mutation", "threads:setPinned", {"id": f}, 400
    )
    assert "pinned: Input should be a valid boolean" in api.error(
        "mutation", "threads:setPinned", {"id": f, "pinned": "sometimes"}, 400
    )


def test_user_decisions_survive_a_rebuild(api: Api, corpus: Corpus, run_cli: Cli) -> None:
    a, f = corpus.a.thread_id, corpus.f.thread_id
    api.mutation("threads:rename", id=a, title="Mine")
    api.mutation("threads:setPinned", id=a, pinned=True)
    api.mutation("threads:setArchived", id=f, archived=True)
    before = api.query("threads:get", id=a)

    # Codex rewrote the file: shorter, different content, same thread id.
    path = corpus.paths["a"]
    rewritten = Rollout(corpus.a.thread_id, cwd=corpus.a.cwd)
    turn = rewritten.turn()
    rewritten.user("Rewritten question")
    rewritten.assistant("Rewritten answer")
    rewritten.user("And one more")
    rewritten.end_turn(turn)
    assert len(rewritten.to_bytes()) < path.stat().st_size
    with open(path, "r+b") as fh:
        fh.truncate(0)
        fh.write(rewritten.to_bytes())
    rewritten_f = Rollout(corpus.f.thread_id, start=corpus.f.start, cwd=corpus.f.cwd)
    rewritten_f.turn()
    rewritten_f.user("Short")
    corpus.paths["f"].write_bytes(rewritten_f.to_bytes())

    run_cli("backfill")
    texts = [m["text"] for m in api.query("messages:tail", threadId=a, n=100)]
    assert texts == ["Rewritten question", "Rewritten answer", "And one more"]
    after = api.query("threads:get", id=a)
    assert after["messageCount"] == 3 != before["messageCount"]
    assert after["snippet"] == "And one more"
    assert (after["title"], after["titleSource"], after["pinned"]) == ("Mine", "user", True)
    assert api.query("threads:get", id=f)["archived"] is True
    assert [m["text"] for m in api.query("messages:tail", threadId=f)] == ["Short"]
    assert f not in ids(api.query("threads:recent"))

    # and clearing the rename now falls back to the rebuilt thread's own title
    api.mutation("threads:rename", id=a, title=None)
    assert api.query("threads:get", id=a)["title"] == "Rewritten question"


# ------------------------------------------------------------------ errors and routes


def test_error_body_shape(api: Api, corpus: Corpus) -> None:
    """The one error shape of /v1: pinned here, field by field."""
    response = api.post("/v1/query/threads:recent", json={"limit": 0})
    assert response.status_code == 400
    assert response.headers["content-type"] == "application/json"
    assert response.json() == {
        "error": {
            "code": "bad_request",
            "message": "threads:recent: invalid arguments: limit: Input should be greater than "
            "or equal to 1 (got 0)",
        }
    }
    response = api.post("/v1/query/nope:fn", json={})
    assert (response.status_code, response.json()) == (
        404,
        {"error": {"code": "not_found", "message": "no query named 'nope:fn'"}},
    )


@pytest.mark.parametrize(
    ("kind", "path", "args", "status", "message"),
    [
        ("query", "threads:recent", {"limit": 501}, 400, "limit: Input should be less than"),
        ("query", "threads:recent", {"limit": "many"}, 400, "limit: Input should be a valid"),
        ("query", "threads:recent", {"bogus": True}, 400, "bogus: Extra inputs are not permitted"),
        ("query", "threads:recent", [1, 2], 400, "arguments must be an object"),
        ("query", "threads:get", {}, 400, "id: Field required"),
        ("query", "threads:get", {"id": ""}, 400, "id: String should have at least 1"),
        ("query", "threads:rename", {"id": "x"}, 404, "no query named 'threads:rename'"),
        ("mutation", "threads:recent", {}, 404, "no mutation named 'threads:recent'"),
        ("mutation", "threads:rename", {}, 400, "id: Field required"),
        ("action", "threads:recent", {}, 404, "unknown function kind 'action'"),
    ],
)
def test_bad_calls_on_v1(
    api: Api, corpus: Corpus, kind: str, path: str, args: Any, status: int, message: str
) -> None:
    assert message in api.error(kind, path, args, status)


@pytest.mark.parametrize(
    ("path", "args", "message"),
    [
        ("threads:recent", {"limit": True}, "limit: Input should be a valid integer (got true)"),
        ("threads:recent", {"limit": "5"}, "limit: Input should be a valid integer (got '5')"),
        ("threads:recent", {"limit": 5.5}, "limit: Input should be a valid integer (got 5.5)"),
        ("threads:recent", {"includeArchived": 1}, "includeArchived: Input should be a valid"),
        ("threads:get", {"id": 5}, "id: Input should be a valid string"),
        ("messages:tail", {"threadId": "t", "n": "3"}, "n: Input should be a valid integer"),
        ("search:messages", {"q": "x", "since": 2**63}, "since: Input should be less than"),
        ("search:messages", {"q": "x", "until": -(2**63)}, "until: Input should be greater"),
        ("search:messages", {"q": "x", "since": 1e300}, "since: Input should be less than"),
        ("search:messages", {"q": "x", "kind": "bogus"}, "kind: Input should be 'message'"),
        ("search:threads", {"q": "x", "limit": "5"}, "limit: Input should be a valid integer"),
        ("threads:similar", {"threadId": "t", "limit": False}, "limit: Input should be a valid"),
        ("messages:similar", {"messageId": "t:" + "9" * 30}, "messageId must look like"),
        ("messages:list", {"threadId": "t", "paginationOpts": {"numItems": 5, "cursor": "9" * 30}},
         "invalid cursor '999999999999999999999999999999'"),
        ("messages:list", {"threadId": "t", "paginationOpts": {"numItems": 5, "cursor": "-5"}},
         "invalid cursor '-5'"),
        ("messages:list", {"threadId": "t", "paginationOpts": {"numItems": 5,
                                                               "endCursor": str(2**63)}},
         "invalid endCursor"),
        ("messages:list", {"threadId": "t", "paginationOpts": {"numItems": 5, "id": 2**64}},
         "paginationOpts.id: Input should be less than"),
    ],
)  # fmt: skip
def test_arguments_are_validated_strictly_and_in_range(
    api: Api, corpus: Corpus, path: str, args: dict[str, Any], message: str
) -> None:
    """No coercion (``true`` or ``"5"`` is not a number) and no number SQLite cannot bind:
    each is a 400 that says which argument, never a 500."""
    assert message in api.error("query", path, args, 400)


def test_whole_floats_count_as_integers(api: Api, corpus: Corpus) -> None:
    """Convex numbers are float64: its Python client sends ``5.0`` where JavaScript sends 5."""
    assert ids(api.query("threads:recent", limit=1.0)) == [corpus.v.thread_id]
    since = float(corpus.v.start.timestamp() * 1000 // 1)
    assert api.query("search:messages", q="question", mode="text", since=since)
    page = api.query("messages:list", threadId=corpus.v.thread_id,
                     paginationOpts={"numItems": 2.0, "cursor": None, "id": 3.0})  # fmt: skip
    assert len(page["page"]) == 2


def test_v1_get_and_raw_bodies(api: Api, corpus: Corpus) -> None:
    response = api.get("/v1/query/threads:recent", params={"args": '{"limit": 1}'})
    assert response.status_code == 200
    assert ids(response.json()) == [corpus.v.thread_id]
    assert len(api.get("/v1/query/threads:recent").json()) == 3

    response = api.get("/v1/query/threads:recent", params={"args": "{nope"})
    assert (response.status_code, response.json()["error"]["message"]) == (
        400,
        "args is not valid JSON",
    )
    response = api.get("/v1/mutation/threads:rename")
    assert response.status_code == 405
    assert response.json()["error"]["message"] == "mutations need POST"
    as_json = {"Content-Type": "application/json"}
    response = api.post("/v1/query/threads:recent", content=b"{not json", headers=as_json)
    assert response.status_code == 400
    assert response.json()["error"]["message"].startswith("request body is not JSON")
    response = api.post(
        "/v1/query/threads:recent", content=b" " * (1024 * 1024 + 1), headers=as_json
    )
    assert response.status_code == 413
    assert "limited to 1048576 bytes" in response.json()["error"]["message"]
    # an empty body is no arguments
    assert len(api.post("/v1/query/threads:recent", content=b"", headers=as_json).json()) == 3


def convex(api: Api, kind: str, path: str, args: Any) -> httpx.Response:
    body = {"path": path, "args": args, "format": "convex_encoded_json"}
    return api.post(f"/api/{kind}", json=body)


def test_convex_http_api(api: Api, corpus: Corpus) -> None:
    response = convex(api, "query", "threads:recent", [{"limit": 1}])
    assert response.status_code == 200
    body = response.json()
    assert set(body) == {"status", "value", "logLines"}
    assert (body["status"], body["logLines"]) == ("success", [])
    assert ids(body["value"]) == [corpus.v.thread_id]

    response = convex(api, "mutation", "threads:rename", [{"id": corpus.a.thread_id,
                                                           "title": "Via Convex"}])  # fmt: skip
    assert (response.status_code, response.json()) == (
        200,
        {"status": "success", "value": None, "logLines": []},
    )
    got = convex(api, "query", "threads:get", [{"id": corpus.a.thread_id}]).json()
    assert got["value"]["title"] == "Via Convex"

    response = convex(api, "query", "threads:recent", [{"limit": 0}])
    assert response.status_code == 400
    assert response.json() == {
        "status": "error",
        "errorMessage": "threads:recent: invalid arguments: limit: Input should be greater than "
        "or equal to 1 (got 0)",
        "logLines": [],
    }
    response = convex(api, "query", "nope:fn", [{}])
    assert (response.status_code, response.json()) == (
        560,
        {"status": "error", "errorMessage": "no query named 'nope:fn'", "logLines": []},
    )
    response = convex(api, "query", "status", [{}])
    assert response.json()["errorMessage"] == "no query named 'status:default'"
    response = convex(api, "action", "threads:recent", [{}])
    assert response.status_code == 560
    assert response.json()["errorMessage"] == "no action named 'threads:recent'"
    response = convex(api, "mutation", "threads:rename", [{"id": "nope"}])
    assert (response.status_code, response.json()["errorMessage"]) == (
        560,
        "no thread with id 'nope'",
    )
    response = convex(api, "query", "threads:recent", [{"$where": 1}])
    assert response.status_code == 400
    assert "may not start with '$'" in response.json()["errorMessage"]
    response = api.post("/api/query", json={"args": [{}]})
    assert (response.status_code, response.json()["errorMessage"]) == (
        400,
        "body must be {path, args}",
    )
    response = api.post(
        "/api/query", content=b"{nope", headers={"Content-Type": "application/json"}
    )
    assert response.status_code == 400
    assert response.json()["status"] == "error"


def test_convex_http_refuses_args_that_are_not_one_object(api: Api, corpus: Corpus) -> None:
    response = convex(api, "query", "threads:recent", [{"limit": 1}, {"limit": 2}])
    assert response.status_code == 400


def test_convex_http_canonicalizes_paths_like_sync(api: Api, corpus: Corpus) -> None:
    response = convex(api, "query", "threads.js:recent", [{"limit": 1}])
    assert response.status_code == 200


def test_skill_metadata_keys_are_returned_verbatim(
    settings: Settings, codex_home: Path, run_cli: Cli
) -> None:
    skill = codex_home / "skills" / "meta"
    skill.mkdir(parents=True)
    (skill / "SKILL.md").write_text(
        "---\nname: meta\ndescription: d\nmetadata:\n  my_key: 1\n  myKey: 2\n---\n"
    )
    run_cli("backfill")
    api = Api(settings)
    try:
        (found,) = api.query("skills:list")
    finally:
        api.close()
    assert found["metadata"] == {"my_key": 1, "myKey": 2}


def test_openapi_lists_every_function(api: Api, corpus: Corpus) -> None:
    doc = api.get("/openapi.json").json()
    assert doc["openapi"] == "3.1.0"
    assert set(doc["paths"]) == {f"/v1/{kind}/{path}" for path, kind in FUNCTIONS.items()}
    recent = doc["paths"]["/v1/query/threads:recent"]["post"]
    assert recent["operationId"] == "threads_recent"
    assert recent["summary"].startswith("Threads by last update")
    schema = recent["requestBody"]["content"]["application/json"]["schema"]
    assert set(schema["properties"]) == {
        "projectId", "source", "machine", "includeArchived", "includeSubagents", "limit",
    }  # fmt: skip
    assert set(recent["responses"]) == {"200", "400", "401", "403", "404"}
    assert recent["x-scope"] == "read"
    listing = doc["paths"]["/v1/query/messages:list"]["post"]
    required = listing["requestBody"]["content"]["application/json"]["schema"]["required"]
    assert set(required) == {"threadId", "paginationOpts"}
    assert doc["components"]["schemas"]["Error"]["properties"]["error"]["properties"].keys() == {
        "code",
        "message",
    }


def test_health_routes(api: Api, corpus: Corpus) -> None:
    assert api.get("/healthz").json() == {"ok": True}
    ready = api.get("/readyz")
    assert ready.status_code == 200
    body = ready.json()
    assert (body["ready"], body["subscriptions"]) == (True, 0)
    assert isinstance(body["version"], int)
    assert body["version"] > 1_700_000_000 * 10**9  # ns since the epoch
    assert api.get("/version").json() == {
        "name": "sessionbase",
        "version": package_version("sessionbase"),
    }


@pytest.mark.parametrize("host", ["evil.example", "192.168.1.20:7788", "127.0.0.1.nip.io"])
def test_non_loopback_host_is_refused(api: Api, corpus: Corpus, host: str) -> None:
    for method, url in [("GET", "/healthz"), ("POST", "/v1/query/threads:recent")]:
        response = api.request(method, url, headers={"host": host}, json={})
        assert response.status_code == 400
        assert response.json() == {
            "error": {"code": "bad_request", "message": f"Host {host!r} is not this server"}
        }


@pytest.mark.parametrize("host", ["127.0.0.1:7788", "localhost:7788", "localhost"])
def test_loopback_host_is_served(api: Api, corpus: Corpus, host: str) -> None:
    response = api.get("/healthz", headers={"host": host})
    assert (response.status_code, response.json()) == (200, {"ok": True})


def test_public_urls_add_their_hosts_and_origins(settings: Settings, corpus: Corpus) -> None:
    proxied = Api(settings.with_overrides(public_urls=("https://sb.example.ts.net",)))
    try:
        seen = {"host": "sb.example.ts.net", "origin": "https://sb.example.ts.net"}
        response = proxied.post("/v1/query/threads:recent", headers=seen, json={"limit": 1})
        # Host and Origin pass; a request through the proxy is not the local owner's.
        assert response.status_code == 401, response.text
        assert "needs authentication" in response.json()["error"]["message"]
        for origin in ["http://sb.example.ts.net", "https://evil.example", "null"]:
            response = proxied.post(
                "/v1/query/threads:recent", headers={**seen, "origin": origin}, json={}
            )
            assert response.status_code == 403, origin
        response = proxied.get("/healthz", headers={"host": "other.example.ts.net"})
        assert response.status_code == 400
    finally:
        proxied.close()
