"""Shared fixtures: a scrubbed environment, a Codex home, and the CLI against a temp data dir."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest
from click.testing import CliRunner

from sessionbase import config
from sessionbase.cli import cli
from sessionbase.config import Settings
from sessionbase.store import Store, open_store
from tests.support.postgres import TestDatabases, find_user

REPO = Path(__file__).resolve().parent.parent
CORPUS = REPO.parent / "shared" / "corpus" / "codex"


@pytest.fixture(autouse=True)
def _clean_environ(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in list(os.environ):
        if name == "SESSIONBASE_REQUIRE_INTEGRATION":
            continue
        if name.startswith("SESSIONBASE_") or name == "CODEX_HOME":
            monkeypatch.delenv(name, raising=False)


def integration_required() -> bool:
    return os.environ.get("SESSIONBASE_REQUIRE_INTEGRATION") == "1"


@pytest.fixture(scope="session")
def pg_databases() -> Iterator[TestDatabases]:
    """This run's databases on the shared PostgreSQL (skip, or fail under
    SESSIONBASE_REQUIRE_INTEGRATION=1, when it is not reachable)."""
    user, reason = find_user()
    if user is None:
        if integration_required():
            pytest.fail(f"SESSIONBASE_REQUIRE_INTEGRATION=1 but {reason}", pytrace=False)
        pytest.skip(str(reason))
    databases = TestDatabases(user)
    yield databases
    databases.close()


@pytest.fixture(scope="session")
def _pg_run_database(pg_databases: TestDatabases) -> str:
    return pg_databases.create()


@pytest.fixture
def pg_url(pg_databases: TestDatabases, _pg_run_database: str) -> str:
    """The run's PostgreSQL database, emptied for this test."""
    from sessionbase.search import semantic

    pg_databases.empty(_pg_run_database)
    semantic.forget(_pg_run_database)  # its in-memory ANN index described the old rows
    return _pg_run_database


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.integration)])
def backend(request: pytest.FixtureRequest) -> str:
    """Each backend in turn: a test taking it runs on SQLite and on PostgreSQL."""
    return str(request.param)


@pytest.fixture
def database_url(backend: str, tmp_path: Path, request: pytest.FixtureRequest) -> str:
    """A fresh database of the backend under test."""
    if backend == "postgres":
        return str(request.getfixturevalue("pg_url"))
    return str(tmp_path / "data" / "sessionbase.db")


@pytest.fixture(scope="session")
def _pg_spare_databases() -> list[str]:
    return []  # made as tests ask for them, emptied to be handed out again


@pytest.fixture
def fresh_database(backend: str, request: pytest.FixtureRequest) -> Callable[[], str]:
    """Factory: another empty database of the backend under test, for a second mirror to be
    compared with the first. "" on SQLite (the database of whatever data dir it is given); on
    PostgreSQL one more of this run's databases, emptied (creating one per test is slower)."""
    if backend != "postgres":
        return lambda: ""
    from sessionbase.search import semantic

    databases: TestDatabases = request.getfixturevalue("pg_databases")
    spares: list[str] = request.getfixturevalue("_pg_spare_databases")
    handed = 0

    def make() -> str:
        nonlocal handed
        if handed == len(spares):
            spares.append(databases.create())
        url = spares[handed]
        handed += 1
        databases.empty(url)
        semantic.forget(url)
        return url

    return make


@pytest.fixture
def database_option(backend: str, request: pytest.FixtureRequest) -> str:
    """``--database`` for a data dir of the backend under test: "" on SQLite (the data dir's
    own file, as when the option is not given), an empty database on PostgreSQL."""
    return str(request.getfixturevalue("pg_url")) if backend == "postgres" else ""


@pytest.fixture
def store(database_url: str) -> Iterator[Store]:
    """A writable store on each backend (the same contract for both)."""
    opened = open_store(database_url, machine="test-machine")
    yield opened
    opened.close()


@pytest.fixture
def codex_home(tmp_path: Path) -> Path:
    home = tmp_path / "codex-home"
    (home / "sessions").mkdir(parents=True)
    return home


@pytest.fixture
def settings(tmp_path: Path, codex_home: Path) -> Settings:
    return config.load(
        environ={},
        overrides={
            "data_dir": tmp_path / "data",
            "codex_homes": (codex_home,),
            "home": tmp_path / "user-home",
            "machine": "test-machine",
        },
    )


@pytest.fixture
def backend_settings(settings: Settings, backend: str, database_url: str) -> Settings:
    """``settings`` on each backend in turn. A module runs every test on both by overriding
    ``settings`` with it::

        @pytest.fixture
        def settings(backend_settings: Settings) -> Settings:
            return backend_settings
    """
    if backend == "sqlite":
        return settings
    return settings.with_overrides(database=database_url)


class Cli:
    """Runs `sessionbase --data-dir … --codex-home … <args>` in-process."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.runner = CliRunner()

    def base_args(self) -> list[str]:
        """The global options naming this test's data dir, database and Codex homes."""
        base = ["--data-dir", str(self.settings.data_dir)]
        if self.settings.database:
            base += ["--database", self.settings.database]
        for home in self.settings.codex_homes:
            base += ["--codex-home", str(home)]
        return base

    def __call__(self, *args: str, ok: bool = True) -> str:
        result = self.runner.invoke(cli, [*self.base_args(), *args], catch_exceptions=False)
        if ok:
            assert result.exit_code == 0, result.output
        return result.output

    def json(self, *args: str) -> Any:
        return orjson.loads(self(*args, "--json"))


@pytest.fixture
def run_cli(settings: Settings) -> Cli:
    return Cli(settings)
