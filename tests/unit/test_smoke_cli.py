"""The CLI end to end on small built rollouts: backfill, the listings, show, and what it says
when there is nothing to list or search for."""

from __future__ import annotations

import os
import re
from pathlib import Path

import orjson
import pytest

from sessionbase.cli import cli
from sessionbase.config import Settings
from tests.builders.codex import Rollout
from tests.conftest import Cli


@pytest.fixture
def settings(backend_settings: Settings) -> Settings:
    """Every test of this module runs on SQLite and on PostgreSQL."""
    return backend_settings


def test_backfill_then_show(codex_home: Path, run_cli: Cli) -> None:
    r = Rollout()
    turn = r.turn()
    r.context()
    r.user("Fix the flaky websocket test")
    r.reasoning("**Looking at the test**")
    r.shell("pytest -x tests/test_ws.py", "1 failed", exit_code=1)
    r.assistant("The test races the server start; fixed.")
    r.tokens(1200)
    r.end_turn(turn)
    r.write(codex_home)

    summary = run_cli("backfill")
    assert "1 file (0 unchanged), 1 thread updated, 4 rows written" in summary
    assert "mirror now holds 1 thread and 2 messages" in summary
    threads = run_cli.json("threads")
    assert [t["id"] for t in threads] == [r.thread_id]
    assert threads[0]["title"] == "Fix the flaky websocket test"
    assert threads[0]["message_count"] == 2
    shown = run_cli.json("show", r.thread_id)
    kinds = [(m["role"], m["kind"]) for m in shown["messages"]]
    assert kinds == [
        ("user", "message"),
        ("assistant", "reason"),
        ("assistant", "cmd"),
        ("assistant", "message"),
    ]
    cmd = shown["messages"][2]
    assert cmd["text"] == "pytest -x tests/test_ws.py"
    assert cmd["data"]["exit_code"] == 1
    assert shown["thread"]["tokens"]["total"] == 1200
    assert "2 messages · 1,200 tokens" in run_cli("show", r.thread_id[:-6])


def test_listings_keep_ids_whole_on_a_narrow_terminal(
    codex_home: Path, run_cli: Cli, monkeypatch: pytest.MonkeyPatch
) -> None:
    r = Rollout()
    r.context()
    r.user("Explain why the nightly deploy pipeline keeps timing out on the integration stage")
    r.assistant("It waits on a lock the previous run never released.")
    r.write(codex_home)
    run_cli("backfill")
    thread = run_cli.json("threads")[0]
    project = run_cli.json("projects")[0]

    monkeypatch.setenv("COLUMNS", "60")
    listing = run_cli("threads")
    header, row = listing.splitlines()[:2]
    assert header.split() == ["updated", "id", "source", "msgs", "title"]
    assert thread["id"][:13] in row  # enough of the id for `show`
    assert thread["source"] in row
    assert "Explain" in row
    assert row.rstrip().endswith("…")
    assert all(len(line.rstrip()) <= 60 for line in listing.splitlines())

    projects = run_cli("projects")
    assert project["id"] in projects
    assert all(len(line.rstrip()) <= 60 for line in projects.splitlines())


def test_project_paths_keep_their_end_and_short_names_leave_room(
    codex_home: Path, run_cli: Cli, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HOME", "/home/ada")
    deep = "/srv/build/agents/workspaces/team-platform/checkouts/payments-reconciliation"
    for cwd in ("/home/ada/src/api", deep):
        r = Rollout(cwd=cwd)
        r.user(f"work in {cwd}")
        r.write(codex_home)
    run_cli("backfill", "--no-embed")

    monkeypatch.setenv("COLUMNS", "160")  # an even split would give each 55 characters
    rows = run_cli("projects").splitlines()[1:]
    assert any(row.split()[-1] == "~/src/api" for row in rows)  # whole, and under ~
    assert any(row.split()[-1] == deep for row in rows)  # the short names left it room

    monkeypatch.setenv("COLUMNS", "80")
    listing = run_cli("projects")
    assert all(len(line.rstrip()) <= 80 for line in listing.splitlines())
    (cut,) = [row.split()[-1] for row in listing.splitlines()[1:] if "payments" in row]
    assert cut.startswith("…")
    assert deep.endswith(cut[1:])


def test_backfill_of_a_home_without_sessions_says_where_it_looked(
    codex_home: Path, run_cli: Cli
) -> None:
    out = run_cli("backfill", "--no-embed")
    assert "no Codex sessions found" in out
    assert str(codex_home / "sessions") in out
    assert str(codex_home / "archived_sessions") in out
    assert "--codex-home" in out

    assert "no Codex sessions found" in run_cli("status")
    assert "no projects yet" in run_cli("projects")
    assert "no threads yet" in run_cli("threads")
    Rollout().write(codex_home)
    assert "no Codex sessions found" not in run_cli("backfill", "--no-embed")
    assert "no Codex sessions found" not in run_cli("status")


def test_status_counts_rollouts_not_yet_read_as_lag(codex_home: Path, run_cli: Cli) -> None:
    """Before the first backfill, everything on disk is lag, not only what follows an offset."""
    first = Rollout()
    first.user("one")
    first_path = first.write(codex_home)
    run_cli("backfill", "--no-embed")
    status = run_cli.json("status")
    assert (status["lag_bytes"], status["files_new"]) == (0, 0)

    second = Rollout()
    second.user("two")
    second_path = second.write(codex_home)
    with first_path.open("ab") as fh:
        fh.write(b'{"partial": ')  # a line being written
    status = run_cli.json("status")
    assert status["files_new"] == 1
    assert status["lag_bytes"] == second_path.stat().st_size + len(b'{"partial": ')
    assert "(1 new file)" in run_cli("status")


def test_skills_says_where_it_looked_when_there_are_none(codex_home: Path, run_cli: Cli) -> None:
    run_cli("backfill")
    out = run_cli("skills")
    assert out.startswith("no skills found")
    assert "/skills" in out
    assert run_cli.json("skills") == []


def test_an_empty_search_says_what_to_give(codex_home: Path, run_cli: Cli) -> None:
    run_cli("backfill")
    result = run_cli.runner.invoke(cli, [*run_cli.base_args(), "search", " "])
    assert result.exit_code == 0  # like --json, which gives [] (see test_search_text)
    assert "nothing to search for" in result.output


def test_a_project_is_named_by_id_name_or_working_dir(codex_home: Path, run_cli: Cli) -> None:
    threads = {}
    for cwd in ("/w/alpha", "/w/beta", "/x/beta"):
        r = Rollout(cwd=cwd)
        r.user(f"work in {cwd}")
        r.write(codex_home)
        threads[cwd] = r.thread_id
    run_cli("backfill", "--no-embed")
    projects = {p["working_dir"]: p for p in run_cli.json("projects")}
    alpha = projects["/w/alpha"]["id"]

    def listed(project: str) -> list[str]:
        return [t["id"] for t in run_cli.json("threads", "--project", project)]

    assert listed(alpha) == [threads["/w/alpha"]]
    assert listed(alpha[:6]) == [threads["/w/alpha"]]
    assert listed("Alpha") == [threads["/w/alpha"]]
    assert listed("/x/beta") == [threads["/x/beta"]]

    for given, message in (("beta", "is several projects"), ("gamma", "no project matches")):
        result = run_cli.runner.invoke(cli, [*run_cli.base_args(), "threads", "--project", given])
        assert result.exit_code == 2
        assert message in result.output
    beta = threads["/w/beta"]
    hits = run_cli.json("search", "work", "--mode", "text", "--thread", beta[:-4])
    assert {h["thread_id"] for h in hits} == {beta}
    common = os.path.commonprefix(list(threads.values()))
    assert len(common) >= 4  # uuidv7 ids minted together share their first digits
    result = run_cli.runner.invoke(cli, [*run_cli.base_args(), "show", common])
    assert result.exit_code == 1
    assert f"{common!r} starts several thread ids" in result.output
    result = run_cli.runner.invoke(
        cli, [*run_cli.base_args(), "search", "work", "--thread", "zzzz"]
    )
    assert result.exit_code == 2
    assert "no thread matches 'zzzz'" in result.output
    assert "no threads match these filters" in run_cli("threads", "--source", "nosuch")


def test_global_options_go_before_or_after_the_command(
    codex_home: Path, tmp_path: Path, run_cli: Cli
) -> None:
    """`sessionbase serve --data-dir D` is `sessionbase --data-dir D serve` (so scripts/serve,
    which passes its arguments on to `serve`, takes them too). Given in both places, the one
    after the command wins; every --codex-home counts."""
    first = Rollout()
    first.user("from the first home")
    first.write(codex_home)
    other_home = tmp_path / "other-home"
    second = Rollout()
    second.user("from the second home")
    second.write(other_home)
    data = str(run_cli.settings.data_dir)
    runner = run_cli.runner
    db = ["--database", run_cli.settings.database] if run_cli.settings.database else []

    result = runner.invoke(
        cli,
        ["--codex-home", str(codex_home), *db, "backfill", "--no-embed", "-v",
         "--data-dir", data, "--codex-home", str(other_home)],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    result = runner.invoke(
        cli,
        ["--data-dir", str(tmp_path / "elsewhere"), *db, "threads", "--json", "--data-dir", data],
    )
    assert result.exit_code == 0, result.output
    assert {t["id"] for t in orjson.loads(result.output)} == {first.thread_id, second.thread_id}
    help_text = runner.invoke(cli, ["serve", "--help"]).output
    assert "--data-dir" in help_text
    assert "--codex-home" in help_text


def test_thread_id_prefixes_in_the_cli(codex_home: Path, run_cli: Cli) -> None:
    """The command line takes a whole id or a prefix of at least 4 characters that starts one
    thread id; a shorter one is too short, whatever it matches."""
    r = Rollout()
    r.user("the only thread")
    r.write(codex_home)
    run_cli("backfill", "--no-embed")
    assert run_cli.json("show", r.thread_id[:4])["thread"]["id"] == r.thread_id
    assert run_cli.json("show", r.thread_id.upper())["thread"]["id"] == r.thread_id
    for args, code in ((["show", r.thread_id[:3]], 1),
                       (["search", "thread", "--thread", r.thread_id[:2]], 2),
                       (["similar", r.thread_id[:3]], 1)):  # fmt: skip
        result = run_cli.runner.invoke(cli, [*run_cli.base_args(), *args])
        assert result.exit_code == code, result.output
        assert "is too short: give at least 4 characters of the thread id" in result.output
        assert "no thread matches" not in result.output


def test_search_kind_and_role_are_checked_alike(codex_home: Path, run_cli: Cli) -> None:
    r = Rollout()
    r.user("pytest keeps failing")
    r.write(codex_home)
    run_cli("backfill", "--no-embed")
    for option in ("--kind", "--role"):
        result = run_cli.runner.invoke(
            cli, [*run_cli.base_args(), "search", "pytest", option, "bogus"]
        )
        assert result.exit_code == 2, result.output
        assert f"Invalid value for '{option}': 'bogus' is not one of" in result.output
    hits = run_cli.json("search", "pytest", "--mode", "text", "--kind", "message")
    assert [h["thread_id"] for h in hits] == [r.thread_id]


def test_search_and_similar_json_times_are_rfc3339(codex_home: Path, run_cli: Cli) -> None:
    """Like every time in the JSON output (README: JSON output)."""
    for text in ("the websocket test is flaky", "the websocket test flakes again"):
        r = Rollout()
        r.user(text)
        r.assistant("It races the server start.")
        r.write(codex_home)
    run_cli("backfill")
    rfc3339 = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")
    hits = run_cli.json("search", "websocket")
    assert hits
    assert all(rfc3339.match(h["ts"]) for h in hits), hits
    groups = run_cli.json("similar", r.thread_id)
    assert groups
    assert all(rfc3339.match(h["ts"]) for g in groups for h in g["hits"]), groups


def test_after_backfill_no_embed_status_and_similar_say_what_to_do(
    codex_home: Path, run_cli: Cli
) -> None:
    r = Rollout()
    r.user("why does the deploy time out?")
    r.assistant("A lock is never released.")
    r.write(codex_home)
    run_cli("backfill", "--no-embed")
    assert run_cli.json("status")["threads_to_embed"] == 1
    status = run_cli("status")
    assert "semantic     none embedded yet, 1 thread to embed: run `sessionbase backfill`" in status
    assert "0/0" not in status
    similar = run_cli("similar", r.thread_id)
    assert "this thread is not embedded yet: run `sessionbase backfill`" in similar

    run_cli("backfill")
    assert run_cli.json("status")["threads_to_embed"] == 0
    assert "semantic     2/2 units embedded (" in run_cli("status")
    assert "no other thread is like this one yet" in run_cli("similar", r.thread_id)
