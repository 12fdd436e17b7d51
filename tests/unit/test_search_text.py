"""Full-text search end to end: ``sessionbase search --json`` and ``search:messages`` (mode text).

One corpus, backfilled once per module (without embeddings: text mode never needs them):

======  ========  =======  ==============================================================
name    source    project  what is in it
======  ========  =======  ==============================================================
CODE    cli       proj1    identifiers, paths, flags, a quoted error phrase
UNI     cli       proj1    Chinese, Japanese, Korean, emoji, accented and plain words
Q1      cli       proj1    "quokka" in a user message, reasoning, a command, an answer
Q2      vscode    proj2    "quokka" in a user message and an answer (a day later)
Q3      exec      proj2    "quokka" in a user message (two days later)
QS      subagent  proj1    "quokka" in a sub-agent of Q1 (three days later)
======  ========  =======  ==============================================================

Filter expectations are computed by brute force over the stored messages, so a filter that
is ignored, inverted or applied to the wrong column fails.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import orjson
import pytest
from hypothesis import given, settings, strategies as st

from sessionbase import config
from sessionbase.config import Settings
from sessionbase.store import open_store, tokens
from sessionbase.store._sqlite_fts import fts5_match
from sessionbase.store.base import SearchFilter
from sessionbase.store.textquery import Term, TextQuery, parse_query, prefix_term
from tests.builders.codex import DEFAULT_START, Rollout
from tests.conftest import Cli
from tests.unit.test_functions import Api

DAY = timedelta(days=1)


@dataclass
class Corpus:
    settings: Settings
    cli: Cli
    code: Rollout
    uni: Rollout
    q1: Rollout
    q2: Rollout
    q3: Rollout
    qs: Rollout


def _build(codex_home: Path, work: Path) -> dict[str, Rollout]:
    proj1 = work / "proj1"
    (proj1 / ".git").mkdir(parents=True)
    proj2 = work / "proj2"
    proj2.mkdir()

    code = Rollout(cwd=str(proj1))
    turn = code.turn()
    code.user(
        "The flaky_websocket_test fails when getUserName returns None; see src/app/cli.py "
        "and run pytest with --verbose please"
    )
    code.reasoning("Checking parseHTTPResponse in src/app/net/client.py first")
    code.shell("pytest --verbose tests/test_ws.py", "E  ConnectionRefusedError", exit_code=1)
    code.apply_patch("src/app/cli.py", "+retry = True")
    code.assistant(
        "Fixed: the server answered “connection refused” before the handshake, so I raised "
        "MAX_RETRY_COUNT and made the reconnect wait."
    )
    code.end_turn(turn)

    uni = Rollout(start=DEFAULT_START + timedelta(hours=1), cwd=str(proj1))
    turn = uni.turn()
    uni.user("修复数据库连接池的错误，谢谢")
    uni.assistant("データベースの接続を直しました。데이터베이스 연결도 확인했습니다.")
    uni.user("The 🐛 in the parser is gone 🚀 but the café menu shows naïve entries")
    uni.assistant("The cafe page now renders the résumé of each naive dish.")
    uni.end_turn(turn)

    q1 = Rollout(start=DEFAULT_START + DAY, cwd=str(proj1))
    turn = q1.turn()
    q1.user("Where does the quokka counter live?")
    q1.reasoning("The quokka counter is probably in the stats module")
    q1.shell("grep -rn quokka src", "src/stats.py:3: quokka = 0")
    q1.assistant("The quokka counter lives in src/stats.py.")
    q1.end_turn(turn)

    q2 = Rollout(start=DEFAULT_START + 2 * DAY, cwd=str(proj2), source="vscode",
                 originator="codex_vscode")  # fmt: skip
    turn = q2.turn()
    q2.user("Rename the quokka widget")
    q2.assistant("Renamed the quokka widget to marsupial.")
    q2.end_turn(turn)

    q3 = Rollout(start=DEFAULT_START + 3 * DAY, cwd=str(proj2), source="exec",
                 originator="codex_exec")  # fmt: skip
    turn = q3.turn()
    q3.user("Count every quokka in the logs")
    q3.end_turn(turn)

    spawn = {"parent_thread_id": q1.thread_id, "depth": 1, "agent_role": "explorer"}
    qs = Rollout(start=DEFAULT_START + 4 * DAY, cwd=str(proj1),
                 source={"subagent": {"thread_spawn": spawn}})  # fmt: skip
    turn = qs.turn()
    qs.user("Find the quokka tests")
    qs.assistant("Two quokka tests exist.")
    qs.end_turn(turn)

    built = {"code": code, "uni": uni, "q1": q1, "q2": q2, "q3": q3, "qs": qs}
    for rollout in built.values():
        rollout.write(codex_home)
    return built


@pytest.fixture(
    scope="module", params=["sqlite", pytest.param("postgres", marks=pytest.mark.integration)]
)
def corpus(
    tmp_path_factory: pytest.TempPathFactory, request: pytest.FixtureRequest
) -> Iterator[Corpus]:
    """The corpus mirrored on each backend in turn (PostgreSQL in a database of its own)."""
    database = ""
    if request.param == "postgres":
        database = request.getfixturevalue("pg_databases").create()
    root = tmp_path_factory.mktemp("search-text")
    codex_home = root / "codex-home"
    (codex_home / "sessions").mkdir(parents=True)
    with pytest.MonkeyPatch.context() as mp:
        for name in list(os.environ):
            if name.startswith("SESSIONBASE_") or name == "CODEX_HOME":
                mp.delenv(name)
        settings = config.load(
            environ={},
            overrides={
                "data_dir": root / "data",
                "codex_homes": (codex_home,),
                "home": root / "user-home",
                "machine": "test-machine",
                "database": database,
            },
        )
        built = _build(codex_home, root / "work")
        cli = Cli(settings)
        report = orjson.loads(cli("backfill", "--no-embed", "--json"))
        assert report["errors"] == []
        assert report["threads"] == 6
        yield Corpus(settings, cli, **built)


@pytest.fixture(scope="module")
def api(corpus: Corpus) -> Iterator[Api]:
    client = Api(corpus.settings)
    try:
        yield client
    finally:
        client.close()


def cli_search(corpus: Corpus, query: str, *options: str) -> list[dict[str, Any]]:
    """``sessionbase search --mode text --json [options] -- QUERY``; must exit 0."""
    output = corpus.cli("search", "--mode", "text", "--limit", "100", "--json", *options, "--",
                        query)  # fmt: skip
    hits: list[dict[str, Any]] = orjson.loads(output)
    return hits


def fn_search(api: Api, query: str, **args: Any) -> list[dict[str, Any]]:
    """``search:messages`` in text mode; must answer 200 with a list."""
    hits: list[dict[str, Any]] = api.query(
        "search:messages", q=query, mode="text", limit=100, **args
    )
    assert isinstance(hits, list)
    return hits


def keys(hits: list[dict[str, Any]]) -> set[tuple[str, int]]:
    return {(h.get("thread_id") or h["threadId"], h["idx"]) for h in hits}


def message_key(corpus: Corpus, rollout: Rollout, text_part: str) -> tuple[str, int]:
    """(thread id, idx) of the one message of ``rollout`` whose text contains ``text_part``."""
    store = open_store(corpus.settings.database_url, readonly=True)
    try:
        found = [m["idx"] for m in store.messages(rollout.thread_id) if text_part in m["text"]]
    finally:
        store.close()
    assert len(found) == 1, (text_part, found)
    return rollout.thread_id, found[0]


Search = Callable[[str], set[tuple[str, int]]]


@pytest.fixture(params=["cli", "function"])
def search(request: pytest.FixtureRequest, corpus: Corpus) -> Search:
    """The same text search through the CLI or through ``search:messages``."""
    if request.param == "cli":
        return lambda q: keys(cli_search(corpus, q))
    api = request.getfixturevalue("api")
    return lambda q: keys(fn_search(api, q))


# ------------------------------------------------------------------ shape of a hit


def test_cli_json_hits_have_the_documented_fields(corpus: Corpus) -> None:
    hits = cli_search(corpus, "flaky_websocket_test")
    assert len(hits) == 1
    (hit,) = hits
    assert hit["thread_id"] == corpus.code.thread_id
    assert isinstance(hit["idx"], int)
    assert isinstance(hit["score"], float)
    assert hit["score"] > 0
    assert hit["snippet"].startswith("The <mark>flaky_websocket_test</mark> fails when")
    assert (hit["role"], hit["kind"]) == ("user", "message")
    assert hit["resume_command"] == f"codex resume {corpus.code.thread_id}"
    assert hit["thread_title"].startswith("The flaky_websocket_test fails")


def test_function_hits_have_the_same_fields_in_camel_case(corpus: Corpus, api: Api) -> None:
    (hit,) = fn_search(api, "flaky_websocket_test")
    assert hit["threadId"] == corpus.code.thread_id
    assert {"threadId", "idx", "score", "snippet", "role", "kind", "ts", "threadTitle",
            "projectId", "source", "resumeCommand"} <= set(hit)  # fmt: skip
    assert "<mark>flaky_websocket_test</mark>" in hit["snippet"]
    assert (hit["threadId"], hit["idx"]) in keys(cli_search(corpus, "flaky_websocket_test"))


@pytest.mark.parametrize(
    ("query", "marked"),
    [
        ("flaky_websocket_test", "flaky_websocket_test"),
        ("getUserName", "getUserName"),
        ("src/app/cli.py", "src/app/cli.py"),
        ("--verbose", "--verbose"),
        ('"connection refused"', "connection refused"),
        ("quokka", "quokka"),
        ("cafe", "café"),
        ("naïve", "naive"),
    ],
)
def test_snippets_mark_whole_token_matches(corpus: Corpus, query: str, marked: str) -> None:
    hits = cli_search(corpus, query)
    assert hits, query
    assert any(f"<mark>{marked}</mark>" in h["snippet"] for h in hits), [h["snippet"] for h in hits]
    for h in hits:
        assert "<mark>" in h["snippet"], h
        assert h["snippet"].count("<mark>") == h["snippet"].count("</mark>")


@pytest.mark.parametrize("query", ["websocket", "UserName", "cli.py", "数据库", "🐛"])
def test_snippets_mark_part_matches(corpus: Corpus, query: str) -> None:
    hits = cli_search(corpus, query)
    assert hits, query
    for h in hits:
        assert "<mark>" in h["snippet"], h


# ------------------------------------------------------------------ what is found


def test_identifiers_whole_and_by_part(corpus: Corpus, search: Search) -> None:
    user = message_key(corpus, corpus.code, "flaky_websocket_test")
    reasoning = message_key(corpus, corpus.code, "parseHTTPResponse")
    answer = message_key(corpus, corpus.code, "MAX_RETRY_COUNT")
    # snake_case, whole, by part, and any case
    for q in ("flaky_websocket_test", "FLAKY_WEBSOCKET_TEST", "flaky", "websocket", "test"):
        assert user in search(q), q
    assert search('"flaky websocket"') >= {user}
    assert user in search("websocket_test")  # a run of its parts
    assert search("test_websocket") == set()  # parts out of order
    # camelCase whole and by its parts (in order, as a phrase)
    for q in ("getUserName", "getusername", "UserName", "user", "name"):
        assert user in search(q), q
    assert search("parseHTTPResponse") == {reasoning}
    assert search("HTTP") == {reasoning}
    assert search("Response") == {reasoning}
    # SCREAMING_SNAKE
    assert search("MAX_RETRY_COUNT") == {answer}
    assert answer in search("retry")
    # a word that is in no message
    assert search("getUserEmail") == set()
    assert search("flakywebsockettest") == set()


def test_paths_whole_tail_and_base_name(corpus: Corpus, search: Search) -> None:
    user = message_key(corpus, corpus.code, "flaky_websocket_test")
    found = search("src/app/cli.py")
    assert user in found
    store = open_store(corpus.settings.database_url, readonly=True)
    try:
        patches = [(corpus.code.thread_id, m["idx"]) for m in store.messages(corpus.code.thread_id)
                   if m["kind"] == "patch"]  # fmt: skip
    finally:
        store.close()
    assert patches, "the builder's apply_patch should make a patch row"
    patch = patches[0]
    assert found == {user, patch}
    assert search("app/cli.py") == {user, patch}
    assert search("cli.py") == {user, patch}
    assert search("src/app/net/client.py") == {message_key(corpus, corpus.code, "parseHTTP")}
    assert search("client.py") == {message_key(corpus, corpus.code, "parseHTTP")}
    assert search("src/app/other.py") == set()
    assert search("lib/app/cli.py") == set()


def test_flags(corpus: Corpus, search: Search) -> None:
    user = message_key(corpus, corpus.code, "flaky_websocket_test")
    found = search("--verbose")
    assert user in found
    store = open_store(corpus.settings.database_url, readonly=True)
    try:
        cmd = [(corpus.code.thread_id, m["idx"]) for m in store.messages(corpus.code.thread_id)
               if m["kind"] == "cmd"]  # fmt: skip
    finally:
        store.close()
    assert found == {user, *cmd}
    assert search("verbose") == found
    assert search("--quiet") == set()


def test_phrases(corpus: Corpus, search: Search) -> None:
    answer = message_key(corpus, corpus.code, "MAX_RETRY_COUNT")
    assert search('"connection refused"') == {answer}
    assert search('"Connection Refused"') == {answer}
    assert search('"refused connection"') == set()  # order matters in a phrase
    assert search("refused connection") == {answer}  # bare words match in any order
    assert search('"connection refused" handshake') == {answer}
    assert search('"connection refused" quokka') == set()  # every term must match
    # a phrase is never a prefix, even last
    assert search('"connection refu"') == set()


@pytest.mark.parametrize("query", ["数据库连接", "🐛", "UserName", "app/cli.py"])
def test_quoting_a_findable_term_still_finds_it(corpus: Corpus, search: Search, query: str) -> None:
    unquoted = search(query)
    assert unquoted, query
    assert search(f'"{query}"') == unquoted


def test_every_term_of_a_long_query_must_match(corpus: Corpus, search: Search) -> None:
    text = (
        "The flaky_websocket_test fails when getUserName returns None; see src/app/cli.py "
        "and run pytest with --verbose please"
    )
    user = message_key(corpus, corpus.code, "flaky_websocket_test")
    assert search(text) == {user}  # the whole message, 15 terms
    long_query = text + " The flaky_websocket_test"
    assert len(long_query.split()) == 17
    assert search(long_query) == {user}  # 17 terms, all there
    assert search(long_query + " kangaroo") == set()  # 18 terms, the last one absent


def test_prefix_type_ahead_on_the_last_term_only(corpus: Corpus, search: Search) -> None:
    user = message_key(corpus, corpus.code, "flaky_websocket_test")
    for q in ("fla", "flak", "flaky_web", "getUs", "src/app/cl", "--verb", "pytest --verb"):
        assert user in search(q), q
    assert search("flak websocket") == set()  # only the last term is a prefix
    assert user in search("websocket flak")
    assert search("quok") == search("quokka")
    assert search("quokkas") == set()


def test_cjk_by_any_substring_of_two_or_more(corpus: Corpus, search: Search) -> None:
    zh = message_key(corpus, corpus.uni, "数据库")
    ja_ko = message_key(corpus, corpus.uni, "データベース")
    for q in ("数据", "数据库", "库连", "连接池", "修复数据库连接池的错误", "错误"):
        assert search(q) == {zh}, q
    for q in ("データ", "ベース", "接続", "데이터", "베이스 연결"):
        assert search(q) == {ja_ko}, q
    assert search("池数") == set()  # not in that order anywhere
    assert search("数据 quokka") == set()


def test_emoji(corpus: Corpus, search: Search) -> None:
    parser = message_key(corpus, corpus.uni, "🐛")
    assert search("🐛") == {parser}
    assert search("🚀") == {parser}
    assert search("🐛 parser") == {parser}
    assert search("🦘") == set()


def test_accents_ignored_both_ways(corpus: Corpus, search: Search) -> None:
    accented = message_key(corpus, corpus.uni, "café")
    plain = message_key(corpus, corpus.uni, "cafe page")
    for q in ("café", "cafe", "CAFÉ", "naive", "naïve"):
        assert search(q) == {accented, plain}, q
    assert search("résumé") == {plain}
    assert search("resume") == {plain}


# ------------------------------------------------------------------ hostile queries

HOSTILE = [
    '"unbalanced',
    'flaky"',
    '"""',
    "NEAR(",
    "NEAR(flaky websocket)",
    "NEAR(flaky websocket, 3)",
    "*",
    "**",
    "flaky*",
    "^flaky",
    "AND OR NOT",
    "AND",
    "NOT quokka",
    "quokka NOT",
    "quokka OR",
    "col:term",
    "text:quokka",
    "parts:quokka",
    "{text parts}: quokka",
    "message_search:quokka",
    "(",
    ")",
    "()",
    "quokka)",
    "-",
    "--",
    ".",
    "/",
    "'",
    "\\",
    "%",
    "_",
    "\x00quokka",
    "quokka\x00",
    "\u200b",
    "'; DROP TABLE messages; --",
    "",
    " ",
    "      ",
    "\t\n",
]


def _punctuation_storm(size: int) -> str:
    chunk = '"*() NEAR( AND OR NOT : ^ - + {}[] ,.;\'\\/ quokka" *'
    return (chunk * (size // len(chunk) + 1))[:size]


@pytest.mark.parametrize("query", [*HOSTILE, "storm-10kib"])
def test_hostile_queries_through_the_cli(corpus: Corpus, query: str) -> None:
    if query == "storm-10kib":
        query = _punctuation_storm(10 * 1024)
    hits = cli_search(corpus, query)
    assert isinstance(hits, list)
    for hit in hits:
        assert {"thread_id", "idx", "score", "snippet"} <= set(hit)


@pytest.mark.parametrize("query", [*HOSTILE, "storm-10k"])
def test_hostile_queries_through_the_function(corpus: Corpus, api: Api, query: str) -> None:
    if query == "storm-10k":
        query = _punctuation_storm(10_000)  # the argument's documented maximum
    hits = fn_search(api, query)
    for hit in hits:
        assert {"threadId", "idx", "score", "snippet"} <= set(hit)


def test_hostile_queries_give_the_sensible_result(corpus: Corpus, search: Search) -> None:
    """Where a hostile query still has a clear meaning, that is what it finds."""
    quokka = search("quokka")
    assert len(quokka) == 7  # everything but the sub-agent's two
    user = message_key(corpus, corpus.code, "flaky_websocket_test")
    assert user in search('"flaky')  # the odd quote is dropped
    assert user in search('flaky"')
    assert search("flaky*") == search("flaky")
    assert search("quokka)") == quokka
    assert search("\x00quokka") == quokka
    assert search("*") == set()
    assert search("") == set()
    assert search("   ") == set()
    assert search("'; DROP TABLE messages; --") == set()
    assert search("quokka") == quokka  # and the table is still there


def test_an_overlong_function_query_is_a_clear_argument_error(api: Api) -> None:
    message = api.error("query", "search:messages", {"q": "x" * 10_001, "mode": "text"}, 400)
    assert "q: String should have at most 10000 characters" in message


# ------------------------------------------------------------------ filters


@dataclass(frozen=True)
class Row:
    thread_id: str
    idx: int
    role: str
    kind: str
    ts: int
    project_id: str
    source: str
    subagent: bool


@pytest.fixture(scope="module")
def quokka_rows(corpus: Corpus) -> list[Row]:
    """Every stored message containing the word quokka, with its thread's facts."""
    store = open_store(corpus.settings.database_url, readonly=True)
    rows = []
    try:
        for thread_id in store.thread_ids():
            thread = store.thread(thread_id)
            assert thread is not None
            for m in store.messages(thread_id):
                if re.search(r"\bquokka\b", m["text"], re.IGNORECASE):
                    subagent = thread["parent_thread_id"] is not None
                    facts = (thread["project_id"], thread["source"], subagent)
                    rows.append(Row(thread_id, m["idx"], m["role"], m["kind"], m["ts"], *facts))
    finally:
        store.close()
    return rows


def _expect(rows: list[Row], keep: Callable[[Row], bool], subagents: bool = False) -> set[Any]:
    return {(r.thread_id, r.idx) for r in rows if keep(r) and (subagents or not r.subagent)}


def test_the_filter_corpus_covers_every_facet(quokka_rows: list[Row]) -> None:
    assert len({r.thread_id for r in quokka_rows}) == 4
    assert {r.kind for r in quokka_rows} >= {"message", "reason", "cmd"}
    assert {r.role for r in quokka_rows} == {"user", "assistant"}
    assert {r.source for r in quokka_rows} == {"cli", "vscode", "exec", "subagent"}
    assert len({r.project_id for r in quokka_rows}) == 2
    assert any(r.subagent for r in quokka_rows)


def test_filters_applied(corpus: Corpus, api: Api, quokka_rows: list[Row]) -> None:
    rows = quokka_rows
    proj2 = next(r.project_id for r in rows if r.source == "vscode")
    q1 = corpus.q1.thread_id
    since = int((DEFAULT_START + 2 * DAY).timestamp() * 1000)  # Q2's first line and later
    until = int((DEFAULT_START + 3 * DAY).timestamp() * 1000)
    q2_user_ts = min(r.ts for r in rows if r.source == "vscode")
    cases: list[tuple[list[str], dict[str, Any], set[Any]]] = [
        ([], {}, _expect(rows, lambda r: True)),
        (["--project", proj2], {"projectId": proj2},
         _expect(rows, lambda r: r.project_id == proj2)),
        # the CLI refuses a project it does not know (see test_smoke_cli)
        ([], {"projectId": "nope"}, set()),
        (["--thread", q1], {"threadId": q1}, _expect(rows, lambda r: r.thread_id == q1)),
        (["--role", "user"], {"role": "user"}, _expect(rows, lambda r: r.role == "user")),
        (["--role", "assistant"], {"role": "assistant"},
         _expect(rows, lambda r: r.role == "assistant")),
        (["--role", "system"], {"role": "system"}, set()),
        (["--kind", "cmd"], {"kind": "cmd"}, _expect(rows, lambda r: r.kind == "cmd")),
        (["--kind", "reason"], {"kind": "reason"}, _expect(rows, lambda r: r.kind == "reason")),
        (["--kind", "message", "--role", "assistant"], {"kind": "message", "role": "assistant"},
         _expect(rows, lambda r: r.kind == "message" and r.role == "assistant")),
        (["--source", "vscode"], {"source": "vscode"},
         _expect(rows, lambda r: r.source == "vscode")),
        (["--source", "exec"], {"source": "exec"}, _expect(rows, lambda r: r.source == "exec")),
        (["--source", "subagent"], {"source": "subagent"}, set()),
        (["--source", "subagent", "--include-subagents"],
         {"source": "subagent", "includeSubagents": True},
         _expect(rows, lambda r: r.source == "subagent", subagents=True)),
        (["--include-subagents"], {"includeSubagents": True},
         _expect(rows, lambda r: True, subagents=True)),
        (["--since", "2026-05-03"], {"since": since}, _expect(rows, lambda r: r.ts >= since)),
        (["--until", "2026-05-04"], {"until": until}, _expect(rows, lambda r: r.ts < until)),
        (["--since", "2026-05-03", "--until", "2026-05-04"], {"since": since, "until": until},
         _expect(rows, lambda r: since <= r.ts < until)),
        ([], {"since": q2_user_ts, "until": q2_user_ts + 1},
         _expect(rows, lambda r: r.ts == q2_user_ts)),
        (["--since", "2026-05-03", "--include-subagents"],
         {"since": since, "includeSubagents": True},
         _expect(rows, lambda r: r.ts >= since, subagents=True)),
    ]  # fmt: skip
    everything = _expect(rows, lambda r: True)
    assert len(everything) == 7
    for options, args, expected in cases:
        assert expected != everything or not args, f"{args} would change nothing"
        if options:
            assert keys(cli_search(corpus, "quokka", *options)) == expected, options
        assert keys(fn_search(api, "quokka", **args)) == expected, args
    # the ts filter needs exactly one message at that instant
    assert len(_expect(rows, lambda r: r.ts == q2_user_ts)) == 1


def test_limit_keeps_the_best(corpus: Corpus, api: Api) -> None:
    everything = fn_search(api, "quokka")
    assert len(everything) == 7
    scores = [h["score"] for h in everything]
    assert scores == sorted(scores, reverse=True)
    top = api.query("search:messages", q="quokka", mode="text", limit=3)
    assert [(h["threadId"], h["idx"]) for h in top] == [
        (h["threadId"], h["idx"]) for h in everything[:3]
    ]
    cli_top = orjson.loads(corpus.cli("search", "--mode", "text", "--limit", "2", "--json",
                                      "quokka"))  # fmt: skip
    assert len(cli_top) == 2


def test_a_short_last_term_is_not_a_prefix() -> None:
    assert parse_query("both one o") == TextQuery((Term("both"), Term("one"), Term("o")))
    assert parse_query("git di") == TextQuery((Term("git"), Term("di")))
    assert parse_query("git dif") == TextQuery((Term("git"), Term("dif", prefix=True)))
    assert fts5_match(TextQuery((Term("git"), Term("dif", prefix=True)))) == '"git" AND "dif"*'
    assert prefix_term("git dif") == "dif"
    assert prefix_term("git di") is None
    assert prefix_term('git "dif"') is None  # a phrase is never a prefix
    # a lone CJK character is found as the start of its bigrams
    assert parse_query("数") == TextQuery((Term("数", prefix=True),))


def test_a_query_is_read_into_terms_and_sqlite_quotes_every_one() -> None:
    query = parse_query('fix "connection refused" !!! getUserName')
    assert query == TextQuery(
        (Term("fix"), Term("connection refused", phrase=True), Term("getUserName", prefix=True))
    )
    assert fts5_match(query) == (
        '"fix" AND "connection refused" AND ("getUserName"* OR parts : "get user name"*)'
    )
    # a last term with nothing searchable in it is dropped, and makes no other term a prefix
    assert parse_query("okay !!!") == TextQuery((Term("okay"),))
    assert parse_query('!!! ""') is None
    near = parse_query("NEAR(a b) OR c*")
    assert near is not None
    assert fts5_match(near) == '"NEAR a" AND "b" AND "OR" AND "c"'


def test_ranking_first_then_filtering_keeps_the_best_rows(tmp_path: Path) -> None:
    """Top rows ranked inside FTS5 and then filtered must equal the best rows that pass the
    filter, also when the filter rejects every one of the top rows (the sub-agent's)."""
    codex_home = tmp_path / "codex-home"
    (codex_home / "sessions").mkdir(parents=True)
    parent = Rollout(start=DEFAULT_START, cwd=str(tmp_path / "p"))
    for n in range(12):
        turn = parent.turn()
        parent.user(f"note {n}: the wombat burrow is {'deep ' * n}and dry, filler words here")
        parent.end_turn(turn)
    spawn = {"parent_thread_id": parent.thread_id, "depth": 1, "agent_role": "explorer"}
    child = Rollout(start=DEFAULT_START + DAY, cwd=str(tmp_path / "p"),
                    source={"subagent": {"thread_spawn": spawn}})  # fmt: skip
    for _ in range(30):
        turn = child.turn()
        child.user("wombat wombat")  # short, and the word twice: the best BM25
        child.end_turn(turn)
    for other in range(40):
        filler = Rollout(start=DEFAULT_START + 2 * DAY, cwd=str(tmp_path / f"f{other}"))
        turn = filler.turn()
        filler.user(f"unrelated message number {other}")
        filler.end_turn(turn)
        filler.write(codex_home)
    parent.write(codex_home)
    child.write(codex_home)
    settings = config.load(
        environ={},
        overrides={"data_dir": tmp_path / "data", "codex_homes": (codex_home,),
                   "home": tmp_path / "user-home", "machine": "test-machine"},
    )  # fmt: skip
    assert orjson.loads(Cli(settings)("backfill", "--no-embed", "--json"))["errors"] == []
    match = parse_query("wombat", prefix_last=False)
    assert match is not None
    store = open_store(settings.database_path, readonly=True)
    try:
        with_children = store.search_messages(match, SearchFilter(include_subagents=True), 100)
        assert len(with_children) == 42
        assert {r["source"] for r in with_children[:30]} == {"subagent"}
        everything = store.search_messages(match, SearchFilter(), 100)
        assert len(everything) == 12
        ranks = [r["rank"] for r in everything]
        assert ranks == sorted(ranks)
        assert len(set(ranks)) > 1
        for limit in (1, 5, 12, 13):
            rows = store.search_messages(match, SearchFilter(), limit)
            assert [r["rank"] for r in rows] == ranks[:limit], limit
            assert {r["source"] for r in rows} == {"cli"}
    finally:
        store.close()


_ASCII_TEXT = st.text(
    alphabet=st.sampled_from("aZ09_-./ \n\t\"'(),:;=<>!?*Xyzb-.AbcDEFghi"), max_size=200
)


@settings(max_examples=500, deadline=None)
@given(_ASCII_TEXT)
def test_ascii_parts_equal_the_general_tokenizer(text: str) -> None:
    """The byte-level path for ASCII text indexes exactly what the regex path would."""
    assert tokens._ascii_parts(text) == tokens._unicode_parts(text)


def test_ascii_parts_of_code() -> None:
    text = "Run getUserName in src/app/cli.py --verbose; flaky_websocket_test failed. HTTPServer"
    assert tokens.parts(text) == (
        "get user name src app cli py cli.py verbose flaky websocket test failed http server"
    )
