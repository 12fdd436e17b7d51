"""The real PostgreSQL on 127.0.0.1:5432 for tests: a database of this test run's own.

``TestDatabases`` creates uniquely named databases (``sbtest_<pid>_<random>``) and drops them
at the end of the run; databases left by a run that died (its pid no longer alive on this
machine) are dropped at the start of the next. The server is shared by everyone on the machine
and by CI: tests never stop, restart or signal it (fault tests start a private instance,
``tests.support.pg_instance``).
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterator

import psycopg

HOST = "127.0.0.1"
PORT = 5432
USERS = ("postgres", "root")
PREFIX = "sbtest_"


def admin_url(database: str = "postgres", user: str | None = None) -> str:
    return f"postgresql://{user or USERS[0]}@{HOST}:{PORT}/{database}"


def find_user() -> tuple[str | None, str | None]:
    """(a user that can create databases, None) or (None, why none can)."""
    reasons = []
    for user in USERS:
        try:
            with psycopg.connect(admin_url("postgres", user), connect_timeout=3) as conn:
                conn.execute("SELECT 1")
            return user, None
        except psycopg.Error as exc:
            reasons.append(f"{user}: {' '.join(str(exc).split())}")
    return None, f"PostgreSQL on {HOST}:{PORT} is not reachable ({'; '.join(reasons)})"


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class TestDatabases:
    """Databases of one test run on the shared server."""

    __test__ = False  # not a test class, whatever its name

    def __init__(self, user: str) -> None:
        self.user = user
        self.created: list[str] = []
        self._admin = psycopg.connect(admin_url("postgres", user), autocommit=True)
        self._drop_abandoned()

    def _drop_abandoned(self) -> None:
        rows = self._admin.execute(
            "SELECT datname FROM pg_database WHERE datname LIKE %s", (PREFIX + "%",)
        ).fetchall()
        for (name,) in rows:
            pid = name[len(PREFIX) :].split("_", 1)[0]
            if pid.isdigit() and not _pid_alive(int(pid)):
                self._admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

    def create(self) -> str:
        """A new empty database; returns its URL."""
        name = f"{PREFIX}{os.getpid()}_{secrets.token_hex(4)}"
        self._admin.execute(f'CREATE DATABASE "{name}"')
        self.created.append(name)
        return self.url(name)

    def url(self, name: str) -> str:
        return f"postgresql://{self.user}@{HOST}:{PORT}/{name}"

    def empty(self, url: str) -> None:
        """Every table of the database emptied and its sequences restarted, its schema (and
        schema version) kept. DELETE, not TRUNCATE: a test's few rows go in milliseconds,
        where TRUNCATE makes every table a new file (a quarter of a second, each test)."""
        with psycopg.connect(url, autocommit=True) as conn:
            present = [
                r[0]
                for r in conn.execute(
                    "SELECT tablename FROM pg_tables WHERE schemaname = 'public'"
                    " AND tablename != 'schema_version'"
                )
            ]
            sequences = [
                r[0]
                for r in conn.execute(
                    "SELECT sequencename FROM pg_sequences WHERE schemaname = 'public'"
                )
            ]
            with conn.transaction():
                for table in present:
                    conn.execute(f'DELETE FROM "{table}"')
                for sequence in sequences:
                    conn.execute(f'ALTER SEQUENCE "{sequence}" RESTART')

    def drop(self, url: str) -> None:
        name = url.rsplit("/", 1)[1]
        self._admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        if name in self.created:
            self.created.remove(name)

    def close(self) -> None:
        for name in list(self.created):
            self._admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        self.created.clear()
        self._admin.close()

    def __iter__(self) -> Iterator[str]:
        return iter(self.url(n) for n in self.created)
