"""The MCP tools over a real mirrored database: what they answer, how they page, and that no
answer passes its size cap. (Over the wire, with the official MCP client: tests/integration.)"""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from sessionbase.config import Settings
from sessionbase.errors import FunctionError
from sessionbase.mcp.arguments import ToolInputError
from sessionbase.mcp.tools import TOOLS
from sessionbase.store import Store, open_store
from tests.builders.codex import DEFAULT_START, Rollout
from tests.conftest import Cli

ITEM = re.compile(r"^#(\d+) ", re.MULTILINE)
NEXT = re.compile(r"from=(\d+)\)")


def call(store: Store, name: str, **args: Any) -> str:
    tool = TOOLS[name]
    return tool.run(store, tool.parse(args))


@pytest.fixture
def settings(backend_settings: Settings) -> Settings:
    """Every test on SQLite and on PostgreSQL: the tools read through the Store protocol."""
    return backend_settings


@pytest.fixture
def long_thread(codex_home: Path) -> Rollout:
    """A thread of 60 turns: a question, a failing command with long output, an answer."""
    r = Rollout(cwd="/work/sockets")
    r.rename("Flaky websocket test")
    for n in range(60):
        r.user(f"Question {n}: why does test_reconnect_{n} flake?")
        r.shell(f"pytest tests/test_ws.py -k reconnect_{n}", "x" * 3000 + f"\nFAILED {n}", 1)
        r.assistant(f"Answer {n}: the reconnect timer races the close frame.")
    r.write(codex_home)
    return r


@pytest.fixture
def other_thread(codex_home: Path) -> Rollout:
    r = Rollout(cwd="/work/billing", start=DEFAULT_START + timedelta(days=3))
    r.user("Add VAT to invoices")
    r.apply_patch("billing/vat.py", "+RATE = 0.2")
    r.assistant("Invoices now carry VAT at 20 %.")
    r.write(codex_home)
    return r


@pytest.fixture
def store(long_thread: Rollout, other_thread: Rollout, run_cli: Cli) -> Iterator[Store]:
    run_cli("backfill", "--no-embed")
    with open_store(run_cli.settings.database_url, readonly=True) as store:
        yield store


def test_search_names_the_thread_and_how_to_read_and_resume_it(
    store: Store, long_thread: Rollout
) -> None:
    text = call(store, "search_sessions", query="close frame", mode="text", limit=3)
    first = text.split("\n2. ")[0]
    assert f"thread {long_thread.thread_id} #" in first
    assert '"Flaky websocket test" · project sockets (/work/sockets)' in first
    assert "**close frame**" in first
    assert f"resume: codex resume {long_thread.thread_id}" in first
    assert "read_thread(thread=<id>, from=<#>)" in text


def test_search_filters_by_project_kind_and_time(
    store: Store, long_thread: Rollout, other_thread: Rollout
) -> None:
    billing = call(store, "search_sessions", query="invoices", mode="text", project="billing")
    assert other_thread.thread_id in billing
    elsewhere = call(store, "search_sessions", query="invoices", mode="text", project="sockets")
    assert elsewhere.startswith("No hits")
    patches = call(store, "search_sessions", query="vat", mode="text", kind="patch")
    assert "assistant patch" in patches
    assert "assistant message" not in patches
    later = call(store, "search_sessions", query="invoices", mode="text", since="2026-05-03")
    assert other_thread.thread_id in later
    assert call(store, "search_sessions", query="invoices", mode="text", since="2026-05-05") == (
        'No hits for "invoices" (text). Try other words, mode="semantic" for meaning, or fewer'
        " filters."
    )


def test_read_thread_pages_through_a_long_thread_exactly_once(
    store: Store, long_thread: Rollout
) -> None:
    """Following each page's `from` visits every item once, in order, and no page passes the
    cap; the last page says the thread ended."""
    seen: list[int] = []
    start, pages = 0, 0
    while True:
        page = call(store, "read_thread", thread=long_thread.thread_id, **{"from": start},
                    max_chars=2500)  # fmt: skip
        pages += 1
        assert len(page) <= 2500
        seen += [int(n) for n in ITEM.findall(page)]
        following = NEXT.findall(page)
        if not following:
            assert page.endswith("End of thread.")
            break
        assert "More available: read_thread(" in page
        start = int(following[-1])
    assert seen == list(range(180))
    assert pages > 5


def test_read_thread_shows_the_end_of_command_output_and_folds_the_rest(
    store: Store, long_thread: Rollout
) -> None:
    page = call(store, "read_thread", thread=long_thread.thread_id[:8], limit=3)
    assert "#0 user 2026-05-01T10:00Z: Question 0: why does test_reconnect_0 flake?" in page
    assert "#1 cmd: $ pytest tests/test_ws.py -k reconnect_0 → exit 1" in page
    assert "  | FAILED 0" in page
    assert "(3,009 characters; the last 300:)" in page
    assert "#2 assistant: Answer 0" in page
    assert "from=3)" in page
    assert "this page stopped at limit=3" in page
    folded = call(store, "read_thread", thread=long_thread.thread_id, limit=3, tool_output_chars=0)
    assert "(3,009 characters of output folded)" in folded
    assert "FAILED 0" not in folded


def test_read_thread_kinds_and_positions(store: Store, long_thread: Rollout) -> None:
    answers = call(store, "read_thread", thread=long_thread.thread_id, kinds=["message"],
                   **{"from": 3}, limit=4)  # fmt: skip
    assert [int(n) for n in ITEM.findall(answers)] == [3, 5, 6, 8]
    assert "cmd:" not in answers
    assert "from=9)" in answers
    past = call(store, "read_thread", thread=long_thread.thread_id, **{"from": 500})
    assert past.endswith("No items from #500: this thread has 180 (#0 to #179).")


def test_one_huge_message_is_cut_to_fit_and_says_so(codex_home: Path, run_cli: Cli) -> None:
    r = Rollout()
    r.user("Here is the log:\n" + "line\n" * 40_000)
    r.assistant("Thanks.")
    r.write(codex_home)
    run_cli("backfill", "--no-embed")
    with open_store(run_cli.settings.database_url, readonly=True) as store:
        page = call(store, "read_thread", thread=r.thread_id, max_chars=5000)
    assert len(page) <= 5000
    assert re.search(r"\[[\d,]+ more characters not shown; a larger max_chars shows more\]", page)
    assert "#1" not in page
    assert page.endswith("from=1) — 1 item left (this page stopped at max_chars=5000).")


def test_lists_stay_within_their_cap_and_say_what_they_left_out(
    codex_home: Path, run_cli: Cli
) -> None:
    for n in range(40):
        r = Rollout(cwd=f"/work/project-{n}", start=DEFAULT_START + timedelta(hours=n))
        r.user(f"Deploy fails again with timeout number {n} " + "and more words " * 30)
        r.write(codex_home)
    run_cli("backfill", "--no-embed")
    with open_store(run_cli.settings.database_url, readonly=True) as store:
        for name, args in (
            ("search_sessions", {"query": "deploy timeout", "mode": "text", "limit": 40}),
            ("recent_threads", {"limit": 40}),
            ("list_projects", {}),
        ):
            text = call(store, name, max_chars=2000, **args)
            assert len(text) <= 2000, name
            assert re.search(r"\d+ more \w+ left out to stay within max_chars=2000", text), name
        recent = call(store, "recent_threads", limit=3)
        assert recent.count("\n- ") == 3
        assert "project project-39 (/work/project-39)" in recent


def test_similar_threads_without_embeddings_says_what_builds_them(
    store: Store, long_thread: Rollout
) -> None:
    text = call(store, "similar_threads", thread=long_thread.thread_id)
    assert "needs embeddings" in text


@pytest.mark.parametrize(
    ("name", "args", "expected"),
    [
        ("search_sessions", {}, "query: Field required"),
        ("search_sessions", {"query": "x", "limit": 0}, "limit: Input should be greater than"),
        ("search_sessions", {"query": "x", "limit": "5"}, "limit: Input should be a valid integer"),
        ("search_sessions", {"query": "x", "mode": "fuzzy"}, "mode: Input should be 'hybrid'"),
        ("search_sessions", {"query": "x", "colour": 1}, "colour: Extra inputs are not permitted"),
        ("search_sessions", {"query": "x", "since": "last week"}, "since: not a date, time"),
        ("search_sessions", {"query": "x", "project": "nowhere"}, "no project matches 'nowhere'"),
        ("read_thread", {"thread": "01"}, "'01' is too short"),
        ("read_thread", {"thread": "ffffffff"}, "no thread matches 'ffffffff'"),
        ("read_thread", {"thread": "x", "kinds": ["chat"]}, "kinds.0: Input should be 'message'"),
        ("read_thread", {"thread": "x", "max_chars": 10}, "max_chars: Input should be greater"),
        ("read_thread", {"thread": "x", "from": -1}, "from: Input should be greater than"),
    ],
)
def test_bad_arguments_say_what_is_wrong(
    store: Store, name: str, args: dict[str, Any], expected: str
) -> None:
    with pytest.raises(ToolInputError) as refused:
        call(store, name, **args)
    assert expected in str(refused.value)
    assert isinstance(refused.value, FunctionError)


def test_whole_floats_count_as_integers(store: Store, long_thread: Rollout) -> None:
    assert "#0 user" in call(store, "read_thread", thread=long_thread.thread_id, limit=1.0)


def test_input_schemas_are_plain_json_schema() -> None:
    """What a model sees: every argument described, no pydantic titles, no anyOf with null
    for optional arguments, nothing accepted beyond what is listed."""
    for tool in TOOLS.values():
        schema = tool.input_schema()
        assert schema["type"] == "object"
        assert schema["additionalProperties"] is False
        assert "title" not in str(schema)
        assert "anyOf" not in str(schema)
        for prop in schema["properties"].values():
            assert prop["description"]
            assert prop.get("type") in ("string", "integer", "array")
            assert not {"ge", "le"} & set(prop)
    read = TOOLS["read_thread"].input_schema()
    assert read["required"] == ["thread"]
    assert read["properties"]["from"]["minimum"] == 0
    assert read["properties"]["kinds"]["items"]["enum"][0] == "message"
