"""Commands that list and show what is mirrored: threads, show, projects, skills."""

from __future__ import annotations

from typing import Any

import click

from sessionbase.cli._group import cli
from sessionbase.cli._output import (
    console_err,
    console_out,
    emit_json,
    listing,
    local_time,
    new_table,
    open_reader,
    resolve_project,
    resolve_thread,
    short_paths,
)
from sessionbase.cli.transcript import print_transcript
from sessionbase.config import Settings
from sessionbase.ingest.timestamps import iso
from sessionbase.store.base import ThreadFilter
from sessionbase.store.rows import StoredMessage, ThreadRow
from sessionbase.wording import counted


@cli.command()
@click.option("--project", help="Only threads of this project: its id, name or working dir.")
@click.option("--source", help="Only threads from this source (cli, vscode, exec, subagent…).")
@click.option("--machine", help="Only threads that ran on this machine (a shared database).")
@click.option("--limit", default=50, show_default=True, type=click.IntRange(min=1))
@click.option("--json", "as_json", is_flag=True, help="Print a JSON list of threads.")
@click.pass_obj
def threads(
    settings: Settings,
    project: str | None,
    source: str | None,
    machine: str | None,
    limit: int,
    as_json: bool,
) -> None:
    """Recent threads, most recently updated first."""
    with open_reader(settings) as store:
        project_id = resolve_project(store, project)
        rows = store.threads(
            ThreadFilter(project_id=project_id, source=source, machine=machine, limit=limit)
        )
    if as_json:
        emit_json([_thread_json(t) for t in rows])
        return
    if not rows:
        console_err().print(
            "no threads" + (" match these filters" if project or source or machine else " yet")
        )
        return
    titles = [(t["title"] or "(no message yet)")[:100] for t in rows]
    table = listing(
        (("updated", 16), ("id", 13), ("source", 8), ("msgs", 4)),
        (("title", max(map(len, titles))),),
    )
    for t, title in zip(rows, titles, strict=True):
        table.add_row(
            local_time(t["updated_at"]),
            t["id"][:13],
            t["source"] or "-",
            str(t["message_count"]),
            title,
        )
    console_out().print(table)


def _thread_json(t: ThreadRow) -> dict[str, Any]:
    keys = (
        "id", "title", "title_source", "source", "project_id", "machine", "originator",
        "cli_version", "model", "model_provider", "cwd", "git", "rollout_path",
        "forked_from_id", "parent_thread_id", "agent_role", "agent_nickname", "message_count",
        "snippet", "tokens", "archived",
    )  # fmt: skip
    row = {k: t.get(k) for k in keys}
    row["created_at"] = iso(t["created_at"])
    row["updated_at"] = iso(t["updated_at"])
    row["last_message_at"] = iso(t["last_message_at"])
    return row


def _message_json(m: StoredMessage) -> dict[str, Any]:
    return {
        "idx": m["idx"],
        "role": m["role"],
        "kind": m["kind"],
        "text": m["text"],
        "ts": iso(m["ts"]),
        "turn_id": m["turn_id"],
        "data": m["data"],
    }


@cli.command()
@click.argument("thread_id")
@click.option("--full", is_flag=True, help="Unfold tool calls: whole commands and outputs.")
@click.option("--json", "as_json", is_flag=True, help="Print {thread, messages} as JSON.")
@click.pass_obj
def show(settings: Settings, thread_id: str, full: bool, as_json: bool) -> None:
    """One thread and its messages in order (an id prefix of 4+ characters that starts one
    thread id is enough).

    Wrapped to the terminal. What you typed, the answers and the reasoning are shown whole;
    tool calls are folded to a few lines with their exit code, time and output size, and a
    run of polls of running commands reads as one row. --full unfolds them all, with each
    command's output (its head and tail, as mirrored).
    """
    with open_reader(settings) as store:
        thread = store.thread(resolve_thread(store, thread_id))
        assert thread is not None
        messages = store.messages(thread["id"])
    if as_json:
        emit_json(
            {"thread": _thread_json(thread), "messages": [_message_json(m) for m in messages]}
        )
        return
    out = console_out()
    out.print(thread["title"] or "(no message yet)", style="bold", markup=False, soft_wrap=False)
    out.print(
        f"{thread['id']} · {thread['source']} · {thread['model'] or '?'} · "
        f"{counted(thread['message_count'], 'message')} · "
        f"{counted(thread['tokens']['total'], 'token')}",
        soft_wrap=False,
    )
    out.print(f"resume: codex resume {thread['id']}\n", soft_wrap=False)
    print_transcript(out, messages, full=full)


@cli.command()
@click.option("--json", "as_json", is_flag=True, help="Print a JSON list of projects.")
@click.pass_obj
def projects(settings: Settings, as_json: bool) -> None:
    """Projects: one per repository root (or working dir outside a repository)."""
    with open_reader(settings) as store:
        rows = store.projects()
    for p in rows:
        for k in ("created_at", "updated_at", "last_active_at"):
            p[k] = iso(p.get(k))
    if as_json:
        emit_json(rows)
        return
    if not rows:
        console_err().print("no projects yet: they come from the threads' working directories")
        return
    names = (("name", max(len(p["name"]) for p in rows)),)
    dirs = (("working dir", max(len(p["working_dir"]) for p in rows)),)
    table = listing((("last active", 16), ("id", 16), ("threads", 7)), names + dirs)
    shown = short_paths([p["working_dir"] for p in rows], table.columns[-1].max_width)
    for p in rows:
        table.add_row(
            (p["last_active_at"] or "-")[:16].replace("T", " "),
            p["id"],
            str(p["thread_count"]),
            p["name"],
            shown[p["working_dir"]],
        )
    console_out().print(table)


@cli.command()
@click.option("--json", "as_json", is_flag=True, help="Print a JSON list of skills.")
@click.pass_obj
def skills(settings: Settings, as_json: bool) -> None:
    """Skills Codex can see: repo, user, system and admin SKILL.md files."""
    with open_reader(settings) as store:
        rows = store.skills()
        problems = store.skill_problems()
    if as_json:
        emit_json(rows)
        return
    if not rows:
        console_out().print(
            "no skills found. Codex reads SKILL.md files under <codex home>/skills,"
            " ~/.agents/skills, /etc/codex/skills, its plugins, and each project's"
            " .codex/skills and .agents/skills."
        )
    else:
        table = new_table()
        for column in ("scope", "name", "description"):
            table.add_column(column, no_wrap=column != "description")
        for s in rows:
            table.add_row(s["scope"], s["name"], s["description"][:120])
        console_out().print(table)
    if problems:
        console_err().print(f"{len(problems)} invalid SKILL.md files: see `sessionbase status`")
