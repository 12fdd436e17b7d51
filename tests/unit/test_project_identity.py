"""Project identity: one project per repository, across machines and however the remote is
written; a working dir per machine; older SQLite mirrors move their projects over."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from sessionbase.store import open_store, tokens
from sessionbase.store.projects import project_id, repository_key


@pytest.mark.parametrize(
    "url",
    [
        "git@github.com:Acme/app.git",
        "https://github.com/acme/app",
        "https://user:token@github.com/acme/app.git/",
        "ssh://git@github.com:22/acme/app.git",
    ],
)
def test_every_way_of_writing_a_remote_names_one_repository(url: str) -> None:
    assert repository_key(url) == "github.com/acme/app"
    assert project_id("laptop", "/a", url) == project_id("desktop", "/b", url)


def test_a_clone_on_this_disk_is_its_origin_whatever_the_rollout_says(tmp_path: Path) -> None:
    clone = tmp_path / "app"
    (clone / ".git").mkdir(parents=True)
    (clone / ".git" / "config").write_text(
        '[core]\n\tbare = false\n[remote "origin"]\n\turl = git@github.com:acme/app.git\n'
    )
    theirs = project_id("desktop", "/work/app", "https://github.com/acme/app")
    assert project_id("laptop", str(clone), None) == theirs
    assert project_id("laptop", str(clone), "https://elsewhere/x") == theirs
    bare = tmp_path / "local-only"
    (bare / ".git").mkdir(parents=True)  # a repository without a remote: this machine's
    assert project_id("laptop", str(bare), "https://github.com/acme/app") == project_id(
        "laptop", str(bare)
    )


def test_without_a_repository_a_project_is_a_directory_on_a_machine() -> None:
    assert project_id("laptop", "/src/app") != project_id("desktop", "/src/app")
    assert project_id("laptop", "/src/app") == project_id("laptop", "/src/app")


def test_an_older_mirror_moves_repository_projects_to_their_new_id(tmp_path: Path) -> None:
    database = tmp_path / "sessionbase.db"
    open_store(database).close()
    old = project_id("laptop", "/src/app")
    new = project_id("laptop", "/src/app", "git@github.com:acme/app.git")
    db = sqlite3.connect(database)
    db.create_function("sb_parts", 1, tokens.parts)  # the thread title's index reads it
    db.executescript(f"""
        DROP TABLE project_dirs;
        INSERT INTO projects (id, name, working_dir, repo_url, machine)
          VALUES ('{old}', 'app', '/src/app', 'git@github.com:acme/app.git', 'laptop');
        INSERT INTO threads (id, project_id, machine) VALUES ('t1', '{old}', 'laptop');
        INSERT INTO user_metadata (entity, id, key, value, updated_at)
          VALUES ('project', '{old}', 'name', '"My app"', 1);
        PRAGMA user_version = 9;
    """)
    db.close()
    with open_store(database) as store:
        projects = store.projects()
        assert [p["id"] for p in projects] == [new]
        assert projects[0]["working_dirs"] == {"laptop": "/src/app"}
        thread = store.thread("t1")
        assert thread is not None
        assert thread["project_id"] == new
    db = sqlite3.connect(database)
    assert db.execute("SELECT id FROM user_metadata WHERE entity = 'project'").fetchall() == [
        (new,)
    ]
    db.close()
