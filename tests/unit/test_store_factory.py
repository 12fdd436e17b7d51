"""``open_store``: the one way to open a database, by file path or URL."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import quote

import pytest

from sessionbase.errors import ConfigError, StoreError
from sessionbase.store import open_store
from sessionbase.store.base import Entity, UserChange


def test_a_path_and_its_sqlite_url_open_the_same_database(tmp_path: Path) -> None:
    path = tmp_path / "a dir" / "sessionbase.db"
    with open_store(path) as writer:
        version, _ = writer.apply_user_changes(
            [UserChange(Entity.THREAD, "t1", {"title": "x"})], None, None
        )
    with open_store(f"sqlite://{quote(str(path))}", readonly=True) as reader:
        assert reader.last_version() == version
        assert reader.data_dir == path.parent
    with open_store(str(path), readonly=True) as reader:
        assert reader.last_version() == version


@pytest.mark.parametrize(
    ("url", "says"),
    [
        ("mysql://localhost/db", "unsupported database URL"),
        ("sqlite://host/file.db", "names no local file"),
        ("sqlite://", "names no local file"),
        ("sqlite:///tmp/x.db?mode=ro", "names no local file"),
    ],
)
def test_a_url_it_cannot_use_is_a_config_error(url: str, says: str) -> None:
    with pytest.raises(ConfigError, match=says):
        open_store(url)


def test_reading_a_missing_database_says_how_to_make_one(tmp_path: Path) -> None:
    with pytest.raises(StoreError, match="sessionbase backfill"):
        open_store(tmp_path / "none.db", readonly=True)
    assert not (tmp_path / "none.db").exists()
