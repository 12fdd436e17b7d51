"""The store contract: every behaviour the rest of sessionbase relies on, on both backends.

Each test takes the ``store`` fixture, which runs it once on SQLite and once on PostgreSQL
(that case is an integration test: it needs the server on 127.0.0.1:5432). Ingest, the live
engine, search and the CLI see only ``Store``; what holds here holds for them on either.
"""

from __future__ import annotations

import threading
from typing import Any

import numpy as np
import psycopg
import pytest

from sessionbase.errors import StoreError
from sessionbase.store import Store, open_store, open_vectors
from sessionbase.store.base import (
    IngestBatch,
    NewDevice,
    ProjectRow,
    SearchFilter,
    SourceRow,
    ThreadFilter,
    UserChange,
)
from sessionbase.store.rows import ExtraRow, MessageValues, QuarantineRow
from sessionbase.store.textquery import parse_query

T1 = "019e1625-0000-7000-8000-000000000001"
T2 = "019e1625-0000-7000-8000-000000000002"
SUB = "019e1700-0000-7000-8000-000000000003"
DAY = 86_400_000


def message(
    thread: str, idx: int, text: str, *, role: str = "user", kind: str = "message", ts: int = 0
) -> MessageValues:
    return (thread, idx, f"turn-{idx // 2}", ts or 1_700_000_000_000 + idx, role, kind, text,
            f'{{"n": {idx}}}', None, idx * 100)  # fmt: skip


def thread_row(thread: str, **fields: Any) -> dict[str, Any]:
    row: dict[str, Any] = {
        "id": thread,
        "project_id": "p1",
        "machine": "test-machine",
        "source": "cli",
        "cwd": "/home/dev/app",
        "git": {"repository_url": "https://example.com/app.git", "branch": "main"},
        "title_auto": f"first message of {thread[-1]}",
        "rollout_path": f"/codex/sessions/rollout-{thread}.jsonl",
        "created_at": 1_700_000_000_000,
        "updated_at": 1_700_000_000_000,
        "message_count": 0,
        "tokens": {"input": 10, "cached": 1, "output": 5, "reasoning": 2, "total": 15},
        "archived": 0,
    }
    row.update(fields)
    return row


def ingest(
    store: Store,
    thread: str,
    texts: list[str],
    *,
    start: int = 0,
    path: str | None = None,
    reset: bool = False,
    **fields: Any,
) -> int | None:
    """Commit one file's batch: a thread, its project, messages from ``start``, the offset."""
    path = path or f"/codex/sessions/rollout-{thread}.jsonl"
    messages = [message(thread, start + n, text) for n, text in enumerate(texts)]
    offset = 1000 * (start + len(texts))
    return store.commit(
        IngestBatch(
            source=SourceRow(path, "/codex", thread_id=thread, size=offset, offset=offset,
                             mtime_ns=1, inode=7, dev=1, state={"next_idx": start + len(texts)}),
            thread=thread_row(thread, message_count=start + len(texts), **fields),
            project=ProjectRow("p1", "app", "/home/dev/app", machine="test-machine"),
            messages=messages,
            reset_thread=thread if reset else None,
        )
    )  # fmt: skip


def hits(store: Store, text: str, flt: SearchFilter | None = None) -> list[tuple[str, int]]:
    query = parse_query(text)
    assert query is not None
    rows = store.search_messages(query, flt or SearchFilter(include_subagents=True), 20)
    return [(r["thread_id"], r["idx"]) for r in rows]


# ------------------------------------------------------------------ commits and offsets


def test_a_commit_stores_rows_and_offset_together(store: Store) -> None:
    version = ingest(store, T1, ["hello", "world"])
    assert version is not None
    assert version == store.last_version()
    source = store.source(f"/codex/sessions/rollout-{T1}.jsonl")
    assert source is not None
    assert (source.offset, source.thread_id, source.state) == (2000, T1, {"next_idx": 2})
    assert [m["text"] for m in store.messages(T1)] == ["hello", "world"]
    assert store.messages(T1)[1]["data"] == {"n": 1}
    thread = store.thread(T1)
    assert thread is not None
    assert thread["tokens"] == {"input": 10, "cached": 1, "output": 5, "reasoning": 2, "total": 15}
    assert thread["git"]["branch"] == "main"
    assert thread["title"] == "first message of 1"
    assert thread["title_source"] == "message"


def test_a_failed_commit_leaves_nothing_behind(store: Store) -> None:
    ingest(store, T1, ["kept"])
    bad = message(T1, 1, "never stored")
    bad = (*bad[:4], None, *bad[5:])  # type: ignore[assignment]  # role is NOT NULL
    before = store.last_version()
    with pytest.raises(StoreError):
        store.commit(
            IngestBatch(
                source=SourceRow(f"/codex/sessions/rollout-{T1}.jsonl", "/codex",
                                 thread_id=T1, offset=9999, size=9999),
                thread=thread_row(T1, message_count=2, title_auto="changed"),
                messages=[message(T1, 2, "also never stored"), bad],
            )
        )  # fmt: skip
    source = store.source(f"/codex/sessions/rollout-{T1}.jsonl")
    assert source is not None
    assert source.offset == 1000
    assert [m["text"] for m in store.messages(T1)] == ["kept"]
    assert store.last_version() == before
    ingest(store, T1, ["next"], start=1)  # the store is still usable
    assert [m["text"] for m in store.messages(T1)] == ["kept", "next"]


def test_grouped_commits_share_transactions_but_keep_each_file_whole(store: Store) -> None:
    with store.grouped_commits(seconds=3600):
        assert ingest(store, T1, ["one"]) is None
        assert ingest(store, T2, ["two"], path="/codex/sessions/b.jsonl") is None
    version = store.last_version()
    touched = {k for _, keys in store.commits_since(0) for k in keys}
    assert {f"messages:{T1}", f"messages:{T2}", f"threads:{T1}"} <= touched
    assert version > 0
    assert store.totals() == {"threads": 2, "messages": 2}


def test_a_reset_rebuilds_the_thread_but_keeps_user_decisions(store: Store) -> None:
    ingest(store, T1, ["a", "b", "c"])
    store.apply_user_changes([UserChange("thread", T1, {"title": "Mine", "pinned": True})], None,
                             None)  # fmt: skip
    ingest(store, T1, ["x"], reset=True)
    assert [m["text"] for m in store.messages(T1)] == ["x"]
    thread = store.thread(T1)
    assert thread is not None
    assert (thread["title"], thread["title_source"], thread["pinned"]) == ("Mine", "user", True)


def test_a_large_batch_over_rows_already_stored_replaces_them(store: Store) -> None:
    """A first backfill's big batches may go in by bulk copy; one that meets rows already
    stored (the same file read again from the start, a copy of it on another path) must
    replace them as any batch does."""
    ingest(store, T1, [f"old {n}" for n in range(60)])
    ingest(store, T1, [f"new {n}" for n in range(60)], path="/codex/sessions/copy.jsonl")
    ingest(store, T1, [f"later {n}" for n in range(50, 100)], start=50)
    ingest(store, T1, [f"more {n}" for n in range(100, 140)], start=100)
    texts = [m["text"] for m in store.messages(T1)]
    assert texts == (
        [f"new {n}" for n in range(50)]
        + [f"later {n}" for n in range(50, 100)]
        + [f"more {n}" for n in range(100, 140)]
    )
    assert hits(store, "old") == []
    assert len(hits(store, "later")) == 20
    assert store.totals() == {"threads": 1, "messages": 140}


def test_a_large_batch_waits_for_another_writer_of_its_thread(database_url: str) -> None:
    """A writer whose rows of a thread are not committed yet holds back another writer's
    batch of that thread, which then replaces them (never fails on rows it could not see)."""
    first = open_store(database_url, machine="test-machine")
    errors: list[BaseException] = []

    def write_second() -> None:
        path = "/codex/sessions/other.jsonl"
        second = open_store(database_url, machine="test-machine")  # a store per thread
        try:
            second.commit(
                IngestBatch(
                    source=SourceRow(path, "/codex", thread_id=T1, offset=1, size=1),
                    messages=[message(T1, n, f"second {n}") for n in range(40)],
                )
            )
        except BaseException as exc:
            errors.append(exc)
        finally:
            second.close()

    try:
        with first.grouped_commits(seconds=3600):
            ingest(first, T1, [f"first {n}" for n in range(40)])
            writer = threading.Thread(target=write_second)
            writer.start()
            if not first.in_process:
                wait_for_a_blocked_writer(database_url)
        writer.join()
        assert errors == []
        assert [m["text"] for m in first.messages(T1)] == [f"second {n}" for n in range(40)]
    finally:
        first.close()


def wait_for_a_blocked_writer(url: str) -> None:
    """Until a session of this PostgreSQL database waits on a lock (or fail after a minute)."""
    with psycopg.connect(url, autocommit=True) as conn:
        for _ in range(600):
            row = conn.execute(
                "SELECT count(*) FROM pg_stat_activity"
                " WHERE datname = current_database() AND wait_event_type = 'Lock'"
            ).fetchone()
            if row and row[0]:
                return
            threading.Event().wait(0.1)
    pytest.fail("the second writer never waited for the first")


def test_patches_merge_into_earlier_rows(store: Store) -> None:
    ingest(store, T1, ["ls"])
    store.commit(
        IngestBatch(
            source=SourceRow(f"/codex/sessions/rollout-{T1}.jsonl", "/codex", thread_id=T1,
                             offset=2000, size=2000),
            patches=[(0, {"exit_code": 0, "n": None}), (0, {"output": {"head": "a"}})],
        )
    )  # fmt: skip
    assert store.messages(T1)[0]["data"] == {"exit_code": 0, "output": {"head": "a"}}


def test_extras_and_quarantine_are_kept(store: Store) -> None:
    path = f"/codex/sessions/rollout-{T1}.jsonl"
    store.commit(
        IngestBatch(
            source=SourceRow(path, "/codex", thread_id=T1, offset=10, size=10),
            thread=thread_row(T1),
            extras=[ExtraRow(T1, 5, "new_type", '{"type":"new_type"}')],
            quarantine=[QuarantineRow(path, 0, 1, "not_json", b"\x00garbage")],
        )
    )
    status = store.status()
    assert status["files"] == 1
    assert status["threads"] == 1


def test_text_with_nul_characters_is_stored(store: Store) -> None:
    ingest(store, T1, ["before\x00after"])
    assert store.messages(T1)[0]["text"].startswith("before")
    assert store.messages(T1)[0]["text"].endswith("after")


# ------------------------------------------------------------------ sources


def test_sources_answer_what_ingest_asks(store: Store) -> None:
    ingest(store, T1, ["a"])
    path = f"/codex/sessions/rollout-{T1}.jsonl"
    head = store.source_head(path)
    assert head is not None
    assert head.state is None
    assert head.offset == 1000
    assert store.settled_files() == {(path, 1000, 1, 7)}
    assert store.tracked_paths() == {path}
    assert [s.path for s in store.sources_by_inode(1, 7)] == [path]
    assert [s.path for s in store.sources_for_thread(T1)] == [path]
    store.mark_source(path, "gone")
    assert store.tracked_paths() == set()
    store.insert_source(SourceRow("/codex/sessions/dup.jsonl", "/codex", status="duplicate"))
    assert [s.path for s in store.sources()] == ["/codex/sessions/dup.jsonl", path]


def test_a_moved_file_keeps_its_rows_and_is_archived(store: Store) -> None:
    ingest(store, T1, ["a"])
    old = f"/codex/sessions/rollout-{T1}.jsonl"
    new = SourceRow(f"/codex/archived_sessions/rollout-{T1}.jsonl", "/codex", thread_id=T1,
                    offset=1000, size=1000)  # fmt: skip
    version = store.move_source(old, new, archived=True)
    assert version == store.last_version()
    thread = store.thread(T1)
    assert thread is not None
    assert thread["archived"]
    assert thread["rollout_path"] == new.path
    assert store.source(old) is None
    assert store.source(new.path) is not None
    assert [m["text"] for m in store.messages(T1)] == ["a"]


# ------------------------------------------------------------------ commit log and versions


def test_versions_grow_and_the_log_says_what_changed(store: Store) -> None:
    first = ingest(store, T1, ["a"])
    second = store.announce(["units:*"])
    assert first is not None
    assert second > first
    assert store.last_version() == second
    log = store.commits_since(first)
    assert log == [(second, ["units:*"])]
    assert f"messages:{T1}" in store.commits_since(0)[0][1]
    assert 0 < store.oldest_version() <= first


def test_a_snapshot_sees_one_version(store: Store, database_url: str) -> None:
    ingest(store, T1, ["a"])
    other = open_store(database_url, machine="test-machine")
    try:
        with store.snapshot() as version:
            ingest(other, T1, ["b"], start=1)
            assert [m["text"] for m in store.messages(T1)] == ["a"]
            assert store.last_version() == version
        assert [m["text"] for m in store.messages(T1)] == ["a", "b"]
        assert store.last_version() > version
    finally:
        other.close()


def test_concurrent_writers_commit_in_version_order(database_url: str) -> None:
    """Two writers at once: every version a reader sees has every lower one before it."""
    open_store(database_url).close()
    errors: list[BaseException] = []

    def write(thread: str) -> None:
        store = open_store(database_url, machine="test-machine")
        try:
            for n in range(15):
                ingest(store, thread, [f"m{n}"], start=n, path=f"/codex/{thread}.jsonl")
        except BaseException as exc:
            errors.append(exc)
        finally:
            store.close()

    writers = [threading.Thread(target=write, args=(t,)) for t in (T1, T2)]
    for w in writers:
        w.start()
    for w in writers:
        w.join()
    assert errors == []
    reader = open_store(database_url, readonly=True)
    try:
        versions = [v for v, _ in reader.commits_since(0)]
        assert len(versions) == 30
        assert versions == sorted(set(versions))
        assert reader.totals() == {"threads": 2, "messages": 30}
    finally:
        reader.close()


# ------------------------------------------------------------------ user decisions


def test_user_decisions_apply_and_clear(store: Store) -> None:
    ingest(store, T1, ["a"])
    store.set_session_names({T1: ("From the index", "2026-01-01")})
    thread = store.thread(T1)
    assert thread is not None
    assert (thread["title"], thread["title_source"]) == (
        "From the index",
        "index",
    )
    store.apply_user_changes(
        [UserChange("thread", T1, {"title": "Mine", "archived": True, "pinned": True})], None, None
    )
    thread = store.thread(T1)
    assert thread is not None
    assert (thread["title"], thread["archived"], thread["pinned"]) == ("Mine", True, True)
    assert store.threads(ThreadFilter(include_archived=False)) == []
    store.apply_user_changes(
        [UserChange("thread", T1, {"title": None, "archived": False, "pinned": None})], None, None
    )
    thread = store.thread(T1)
    assert thread is not None
    assert (thread["title"], thread["archived"], thread["pinned"]) == (
        "From the index", False, False)  # fmt: skip


def test_projects_saved_renamed_and_hidden(store: Store) -> None:
    ingest(store, T1, ["a"])
    store.apply_user_changes(
        [UserChange("project", "mine", {"record": {"name": "Mine", "working_dir": "/w"}})],
        None,
        None,
    )
    store.apply_user_changes([UserChange("project", "p1", {"name": "App", "hidden": True})],
                             None, None)  # fmt: skip
    assert [p["id"] for p in store.projects()] == ["mine"]
    everything = {p["id"]: p for p in store.projects(include_hidden=True)}
    assert everything["p1"]["name"] == "App"
    assert everything["p1"]["thread_count"] == 1
    assert everything["p1"]["repo_url"] == "https://example.com/app.git"


def test_a_mutation_key_is_applied_once(store: Store) -> None:
    key = ("session-a", 7)
    change = [UserChange("thread", T1, {"pinned": True})]
    first = store.apply_user_changes(change, {"ok": 1}, key)
    again = store.apply_user_changes([UserChange("thread", T1, {"pinned": None})], {"ok": 2}, key)
    assert again == first == (store.last_version(), {"ok": 1})
    assert store.recorded_mutation(*key) == (*first, None)
    assert store.recorded_mutation("session-a", 8) is None
    assert len(store.commits_since(0)) == 1


def test_one_mutation_key_from_two_writers_at_once_is_applied_once(database_url: str) -> None:
    open_store(database_url).close()
    results: list[tuple[int, Any]] = []

    def mutate(n: int) -> None:
        store = open_store(database_url)
        try:
            change = [UserChange("thread", T1, {"title": f"t{n}"})]
            results.append(store.apply_user_changes(change, {"by": n}, ("shared", 1)))
        finally:
            store.close()

    workers = [threading.Thread(target=mutate, args=(n,)) for n in range(4)]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    assert len({(v, r["by"]) for v, r in results}) == 1
    reader = open_store(database_url, readonly=True)
    try:
        assert len(reader.commits_since(0)) == 1
    finally:
        reader.close()


# ------------------------------------------------------------------ devices

NOW = 1_800_000_000_000


def make_code(store: Store, code_hash: str, scopes: list[str], expires_at: int) -> None:
    record = {"name": "phone", "scopes": scopes, "expires_at": expires_at}
    store.apply_user_changes([UserChange("pairing", code_hash, {"record": record, "by": "cli"})],
                             None, None)  # fmt: skip


def new_device(device_id: str, name: str | None = None) -> NewDevice:
    return NewDevice(device_id, name, f"hash-of-{device_id}", "192.0.2.7", "phone-browser")


def test_a_pairing_code_makes_one_device_with_its_scopes(store: Store) -> None:
    make_code(store, "h1", ["read", "write"], NOW + 60_000)
    assert store.live_pairing_codes(NOW) == 1
    device = store.redeem_pairing("h1", NOW, new_device("d1"))
    assert device is not None
    assert device["id"] == "d1"
    assert device["name"] == "phone"
    assert device["scopes"] == ["read", "write"]
    assert device["last_ip"] == "192.0.2.7"
    assert device["revoked_at"] is None
    assert "secret_hash" not in device
    assert store.redeem_pairing("h1", NOW + 1, new_device("d2")) is None  # used up
    assert store.live_pairing_codes(NOW) == 0
    assert store.device("d1") == {**device, "secret_hash": "hash-of-d1"}
    assert store.device("d2") is None
    assert [d["id"] for d in store.devices()] == ["d1"]
    assert "secret_hash" not in store.devices()[0]
    assert "devices:d1" in store.commits_since(0)[-1][1]


def test_expired_and_unknown_codes_pair_nothing(store: Store) -> None:
    make_code(store, "old", ["read"], NOW - 1)
    assert store.redeem_pairing("old", NOW, new_device("d1")) is None
    assert store.redeem_pairing("never-made", NOW, new_device("d1")) is None
    assert store.devices() == []


def test_the_device_may_name_itself(store: Store) -> None:
    make_code(store, "h1", ["read"], NOW + 60_000)
    device = store.redeem_pairing("h1", NOW, new_device("d1", "Pixel 9"))
    assert device is not None
    assert device["name"] == "Pixel 9"


def test_devices_are_renamed_revoked_and_removed_with_an_audit_trail(store: Store) -> None:
    make_code(store, "h1", ["read", "admin"], NOW + 60_000)
    store.redeem_pairing("h1", NOW, new_device("d1"))
    store.apply_user_changes([UserChange("device", "d1", {"name": "tablet", "by": "cli"})],
                             None, None)  # fmt: skip
    store.apply_user_changes([UserChange("device", "d1", {"revoked_at": NOW + 5, "by": "cli"})],
                             None, None)  # fmt: skip
    store.apply_user_changes([UserChange("device", "d1", {"revoked_at": NOW + 9})], None, None)
    device = store.device("d1")
    assert device is not None
    assert device["name"] == "tablet"
    assert device["revoked_at"] == NOW + 5
    assert "devices:d1" in store.commits_since(0)[-1][1]
    store.apply_user_changes([UserChange("device", "d1", {"removed": True})], None, None)
    assert store.device("d1") is None
    events = [e["event"] for e in store.auth_events()]
    assert events == ["removed", "revoked", "revoked", "renamed", "paired", "pairing_created"]


def test_devices_are_seen_and_failures_logged(store: Store) -> None:
    make_code(store, "h1", ["read"], NOW + 60_000)
    store.redeem_pairing("h1", NOW, new_device("d1"))
    store.touch_device("d1", NOW + 100, "198.51.100.4", None)
    device = store.device("d1")
    assert device is not None
    assert (device["last_seen_at"], device["last_ip"]) == (NOW + 100, "198.51.100.4")
    assert device["user_agent"] == "phone-browser"  # kept when not given
    store.log_auth_event("failed", address="203.0.113.9", detail="wrong pairing code")
    assert store.auth_events(1) == [
        {"ts": store.auth_events(1)[0]["ts"], "event": "failed", "device_id": None,
         "address": "203.0.113.9", "detail": "wrong pairing code"}
    ]  # fmt: skip


def test_one_code_redeemed_by_two_writers_at_once_pairs_once(database_url: str) -> None:
    with open_store(database_url) as store:
        make_code(store, "shared", ["read"], NOW + 60_000)
    paired: list[dict[str, Any] | None] = []

    def redeem(n: int) -> None:
        with open_store(database_url) as store:
            paired.append(store.redeem_pairing("shared", NOW, new_device(f"d{n}")))

    workers = [threading.Thread(target=redeem, args=(n,)) for n in range(4)]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    assert len([p for p in paired if p is not None]) == 1
    with open_store(database_url) as store:
        assert len(store.devices()) == 1


# ------------------------------------------------------------------ reads


def test_threads_filter_and_order(store: Store) -> None:
    ingest(store, T1, ["a"], updated_at=2_000)
    ingest(store, T2, ["b"], path="/codex/t2.jsonl", updated_at=3_000, source="exec",
           project_id="p2")  # fmt: skip
    ingest(store, SUB, ["c"], path="/codex/sub.jsonl", updated_at=None, parent_thread_id=T1,
           source="subagent")  # fmt: skip
    assert [t["id"] for t in store.threads(ThreadFilter())] == [T2, T1, SUB]
    assert [t["id"] for t in store.threads(ThreadFilter(include_subagents=False))] == [T2, T1]
    assert [t["id"] for t in store.threads(ThreadFilter(project_id="p1"))] == [T1, SUB]
    assert [t["id"] for t in store.threads(ThreadFilter(source="exec", limit=1))] == [T2]
    assert store.thread_ids() == [T1, T2, SUB]
    assert store.thread_ids_starting("019e1625") == [T1, T2]
    assert store.thread(SUB) is not None
    assert store.thread("019e17") is None  # only a whole id names a thread


def test_the_machine_filter(store: Store) -> None:
    ingest(store, T1, ["needle here"], machine="laptop")
    ingest(store, T2, ["needle there"], path="/codex/t2.jsonl", machine="desktop")
    assert [t["id"] for t in store.threads(ThreadFilter(machine="desktop"))] == [T2]
    assert {h[0] for h in hits(store, "needle", SearchFilter(machine="laptop"))} == {T1}
    assert len(hits(store, "needle")) == 2


def test_pages_and_tails(store: Store) -> None:
    ingest(store, T1, [f"m{n}" for n in range(10)])
    page = store.messages_page(T1, after=2, until=6, limit=3)
    assert [m["idx"] for m in page] == [3, 4, 5]
    assert [m["idx"] for m in store.messages_page(T1, after=7, until=None, limit=100)] == [8, 9]
    assert [m["idx"] for m in store.messages_page(T1, after=-(2**53), until=2**53, limit=2)] == [
        0,
        1,
    ]
    assert [m["idx"] for m in store.messages_tail(T1, 3)] == [7, 8, 9]
    assert store.messages_tail(T1, 0) == []
    assert set(page[0]) >= {"idx", "turn_id", "ts", "role", "kind", "text", "data", "item_id"}


def test_settings_round_trip(store: Store) -> None:
    assert store.get_setting("k") is None
    store.put_setting("k", "v1")
    store.put_setting("k", "v2")
    assert store.get_setting("k") == "v2"


def test_skills_are_replaced_only_when_changed(store: Store, tmp_path: Any) -> None:
    from sessionbase.codex.skills import SkillRoot, discover_skills

    root = tmp_path / "skills" / "deploy"
    root.mkdir(parents=True)
    (root / "SKILL.md").write_text("---\nname: deploy\ndescription: Ship it.\n---\nbody\n")
    found, problems = discover_skills([SkillRoot("user", tmp_path / "skills")])
    assert store.replace_skills(found, problems, {}) is not None
    assert store.replace_skills(found, problems, {}) is None
    assert [s["name"] for s in store.skills()] == ["deploy"]
    assert store.skills()[0]["metadata"] == {}


# ------------------------------------------------------------------ search


def test_search_finds_code_aware_tokens(store: Store) -> None:
    ingest(store, T1, [
        "the flaky_websocket_test failed again",
        "call getUserName from src/app/cli.py with --verbose",
        "数据库连接失败 in production",
        "deploy went fine 🚀 today",
    ])  # fmt: skip
    assert hits(store, "flaky_websocket_test") == [(T1, 0)]
    assert hits(store, "websocket") == [(T1, 0)]
    assert hits(store, "getUserName") == [(T1, 1)]
    assert hits(store, "user name") == [(T1, 1)]
    assert hits(store, "src/app/cli.py") == [(T1, 1)]
    assert hits(store, "cli.py") == [(T1, 1)]
    assert hits(store, "--verbose") == [(T1, 1)]
    assert hits(store, "连接") == [(T1, 2)]
    assert hits(store, "🚀") == [(T1, 3)]
    assert hits(store, "deplo") == [(T1, 3)]  # the last word is a prefix
    assert hits(store, '"today fine"') == []  # a phrase keeps its order
    assert hits(store, '"went fine"') == [(T1, 3)]
    assert hits(store, "flaky missing") == []  # every term must match


def test_search_filters_apply_inside_the_query(store: Store) -> None:
    ingest(store, T1, ["needle one", "needle two"])
    ingest(store, T2, ["needle three"], path="/codex/t2.jsonl", project_id="p2")
    ingest(store, SUB, ["needle four"], path="/codex/sub.jsonl", parent_thread_id=T1)
    assert len(hits(store, "needle")) == 4
    assert hits(store, "needle", SearchFilter()) == [
        h for h in hits(store, "needle") if h[0] != SUB
    ]
    assert {h[0] for h in hits(store, "needle", SearchFilter(project_id="p2"))} == {T2}
    assert hits(store, "needle", SearchFilter(thread_id=T1)) in ([(T1, 0), (T1, 1)],
                                                                 [(T1, 1), (T1, 0)])  # fmt: skip
    since = 1_700_000_000_001
    assert hits(store, "needle", SearchFilter(thread_id=T1, since=since)) == [(T1, 1)]
    assert hits(store, "needle", SearchFilter(thread_id=T1, until=since)) == [(T1, 0)]
    assert hits(store, "needle", SearchFilter(role="assistant")) == []
    rows = store.search_messages(parse_query("needle three"), SearchFilter(), 5)  # type: ignore[arg-type]
    assert rows[0]["thread_title"] == "first message of 2"
    assert rows[0]["rank"] < 0


def test_title_search(store: Store) -> None:
    ingest(store, T1, ["a"])
    store.apply_user_changes([UserChange("thread", T1, {"title": "Fix the parseConfig bug"})],
                             None, None)  # fmt: skip
    query = parse_query("config")
    assert query is not None
    assert list(store.search_thread_titles(query, SearchFilter(), 10)) == [T1]
    missing = parse_query("nothing")
    assert missing is not None
    assert store.search_thread_titles(missing, SearchFilter(), 10) == {}


# ------------------------------------------------------------------ units and vectors


def test_units_for_semantic_search(store: Store) -> None:
    ingest(store, T1, ["q", "a1", "a2"])
    store.replace_units(T1, [(0, 0, "user", "h0", "q"), (1, 2, "assistant", "h1", "a1 a2")])
    assert [u["start_idx"] for u in store.units_of(T1)] == [0, 1]
    assert store.unit_at(T1, 2) is not None
    assert store.unit_at(T1, 2)["content_hash"] == "h1"
    assert sorted(store.unit_hashes()) == ["h0", "h1"]
    found = store.units_for_hashes(["h1"], SearchFilter())
    assert [(u["thread_id"], u["kind"], u["thread_title"]) for u in found] == [
        (T1, "message", "first message of 1")
    ]
    store.replace_units(T1, [(1, 2, "assistant", "h2", "changed")], from_idx=1)
    assert [u["content_hash"] for u in store.units_of(T1)] == ["h0", "h2"]
    assert f"units:{T1}" in store.commits_since(0)[-1][1]


def test_unit_hashes_of_the_most_recently_active_threads_first(store: Store) -> None:
    """What the refining model embeds first: the units of the threads active last (a text in
    two threads counts at the newer one)."""
    ingest(store, T1, ["old question"], last_message_at=1_700_000_000_000)
    ingest(store, T2, ["new question"], last_message_at=1_800_000_000_000,
           path=f"/codex/sessions/rollout-{T2}.jsonl")  # fmt: skip
    store.replace_units(T1, [(0, 0, "user", "a-old", "old"), (1, 1, "user", "m-both", "x")])
    store.replace_units(T2, [(0, 0, "user", "z-new", "new"), (1, 1, "user", "m-both", "x")])
    assert store.unit_hashes(newest_first=True) == ["m-both", "z-new", "a-old"]
    assert sorted(store.unit_hashes()) == ["a-old", "m-both", "z-new"]


def test_vectors_by_content_hash(store: Store) -> None:
    vectors = open_vectors(store.vector_location, "contract-model")
    try:
        matrix = np.eye(3, dtype=np.float32)
        labels = vectors.add(["a", "b", "c"], matrix)
        assert len(set(labels)) == 3
        assert vectors.count() == 3
        assert vectors.add(["b"], matrix[1:2]) == [labels[1]]
        assert vectors.missing(["a", "z", "z"]) == ["z"]
        assert vectors.hashes_for([labels[2]]) == {labels[2]: "c"}
        row = vectors.vector("b")
        assert row is not None
        assert row.tolist() == [[0.0, 1.0, 0.0]]
        batches = list(vectors.batches(size=2))
        assert [len(b[0]) for b in batches] == [2, 1]
        assert list(vectors.batches(after=max(labels))) == []
    finally:
        vectors.close()


# ------------------------------------------------------------------ opening


def test_reading_an_empty_database_says_how_to_fill_it(
    database_url: str, backend: str, request: pytest.FixtureRequest
) -> None:
    if backend == "postgres":  # a database never opened by sessionbase
        database_url = request.getfixturevalue("pg_databases").create()
    with pytest.raises(StoreError, match="sessionbase backfill"):
        open_store(database_url, readonly=True)


def test_a_newer_schema_is_refused(store: Store, database_url: str, backend: str) -> None:
    store.close()
    if backend == "sqlite":
        import sqlite3

        db = sqlite3.connect(database_url)
        db.execute("PRAGMA user_version = 9999")
        db.close()
    else:
        with psycopg.connect(database_url, autocommit=True) as conn:
            conn.execute("INSERT INTO schema_version VALUES (9999)")
    try:
        with pytest.raises(StoreError, match="newer than this sessionbase"):
            open_store(database_url)
    finally:
        if backend == "postgres":  # the run's database serves the tests after this one
            with psycopg.connect(database_url, autocommit=True) as conn:
                conn.execute("DELETE FROM schema_version WHERE version = 9999")
