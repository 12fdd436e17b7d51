"""Storage: the ``Store`` protocol every caller is typed to, and ``open_store`` to get one.

Backends live in private modules of this package; nothing outside it imports them (an
import-linter contract in pyproject.toml keeps it so).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Protocol
from urllib.parse import unquote, urlsplit

from sessionbase.errors import ConfigError, StoreError
from sessionbase.store import decisions
from sessionbase.store.base import UserChange
from sessionbase.store.interface import Store

if TYPE_CHECKING:
    from sessionbase.store.vectors import VectorTable

__all__ = [
    "Listener",
    "Store",
    "backend_name",
    "is_postgres",
    "listen_for_commits",
    "open_store",
    "open_vectors",
    "salvage_user_changes",
    "set_aside",
    "set_aside_vectors",
    "shown",
    "user_decisions_file",
    "vector_location",
]

SQLITE_SCHEME = "sqlite"
POSTGRES_SCHEMES = ("postgresql", "postgres")


def is_postgres(database: str | Path) -> bool:
    """Whether ``database`` names a PostgreSQL database (a ``postgresql://`` URL)."""
    return isinstance(database, str) and urlsplit(database).scheme in POSTGRES_SCHEMES


def open_store(
    database: str | Path,
    *,
    readonly: bool = False,
    cache_mb: int = 8,
    machine: str | None = None,
) -> Store:
    """Open the database that ``database`` names, creating and migrating it unless
    ``readonly``: a file path, ``sqlite:///absolute/path/to/file.db``, or
    ``postgresql://user@host:port/dbname`` (any libpq URL).

    ``cache_mb`` sizes this connection's page cache where the backend keeps one (the ingest
    writer asks for more than readers). ``machine`` scopes what the store says about files
    where several machines share the database (default: this host's name). Raises
    ConfigError for a URL it cannot use and StoreError when the database cannot be opened
    (StoreUnavailable when its server does not answer); the caller closes the store.
    """
    store: Store
    if is_postgres(database):
        from sessionbase.store.postgres import PostgresStore

        store = PostgresStore(str(database), readonly=readonly, machine=machine)
    else:
        from sessionbase.store.sqlite import SQLiteStore

        store = SQLiteStore(sqlite_path(database), readonly=readonly, cache_mb=cache_mb)
    if not readonly:
        try:  # a new database gets the user's decisions back; else their file is kept current
            decisions.restore_or_save(store)
        except BaseException:
            store.close()
            raise
    return store


def user_decisions_file(database: str | Path) -> Path | None:
    """``Store.user_decisions_file`` without opening the database (it may be damaged)."""
    if is_postgres(database):
        return None
    from sessionbase.store import _sqlite_health

    return _sqlite_health.decisions_file(sqlite_path(database))


def set_aside(database: str | Path) -> list[Path]:
    """Move a damaged database out of the way, never deleting it: a SQLite file and its
    ``-wal`` and ``-shm`` files are renamed ``NAME.damaged-STAMP``. Returns the new names.
    The next writing open starts a new database. Raises StoreError for a database server."""
    if is_postgres(database):
        raise StoreError("a PostgreSQL database is repaired by its server, not set aside")
    from sessionbase.store import _sqlite_health

    try:
        return _sqlite_health.set_aside(sqlite_path(database), "damaged")
    except OSError as exc:
        raise StoreError(f"cannot set {database} aside: {exc.strerror}") from exc


def salvage_user_changes(database: str | Path) -> list[UserChange] | None:
    """The user decisions a damaged database still yields (as many as can be read), or None."""
    if is_postgres(database):
        return None
    from sessionbase.store import _sqlite_health

    rows = _sqlite_health.salvage_user_changes(sqlite_path(database))
    return None if rows is None else decisions.grouped(rows)


def set_aside_vectors(location: str, model: str) -> list[Path]:
    """Move a damaged vector store aside (as ``set_aside``): the next open starts an empty
    one, and embedding fills it again."""
    if is_postgres(location):
        raise StoreError("vectors in PostgreSQL are repaired by its server, not set aside")
    from sessionbase.store import _sqlite_health
    from sessionbase.store._sqlite_vectors import vectors_file

    try:
        return _sqlite_health.set_aside(vectors_file(Path(location), model), "damaged")
    except OSError as exc:
        raise StoreError(f"cannot set the vectors in {location} aside: {exc.strerror}") from exc


class Listener(Protocol):
    """A listening thread: its state for health checks, and close when done."""

    def state(self) -> dict[str, object]: ...

    def close(self) -> None: ...


def listen_for_commits(database: str | Path, wake: Callable[[], None]) -> Listener:
    """Call ``wake`` (on a thread of its own) soon after any other process commits: on
    PostgreSQL on each ``NOTIFY`` and after every reconnection; on a SQLite file, which the
    CLI writes to while ``serve`` runs, within ``_sqlite_listener.POLL_SECONDS``. This
    process's own commits are told by ``Store.on_commit``."""
    if not is_postgres(database):
        from sessionbase.store._sqlite_listener import CommitPoller

        return CommitPoller(sqlite_path(database), wake)
    from sessionbase.store._pg_listener import CommitListener

    return CommitListener(str(database), wake)


def shown(database: str | Path) -> str:
    """The database as it may be printed: a URL without its password."""
    text = str(database)
    scheme, sep, rest = text.partition("://")
    credentials, at, host = rest.rpartition("@")
    if not sep or not at or ":" not in credentials:
        return text
    return f"{scheme}{sep}{credentials.split(':', 1)[0]}:***{at}{host}"


def backend_name(database: str | Path) -> str:
    """``postgresql`` or ``sqlite``."""
    return "postgresql" if is_postgres(database) else "sqlite"


def vector_location(database: str | Path) -> str:
    """Where the embeddings of ``database`` live (``Store.vector_location`` without opening
    it): the directory of a SQLite file, or the PostgreSQL URL."""
    if is_postgres(database):
        return str(database)
    return str(sqlite_path(database).parent)


def open_vectors(location: str, model: str) -> VectorTable:
    """The vectors of one embedding model at a ``vector_location``; thread-safe."""
    if is_postgres(location):
        from sessionbase.store._pg_vectors import PgVectors

        return PgVectors(location, model)
    from sessionbase.store._sqlite_vectors import SQLiteVectors

    return SQLiteVectors(Path(location), model)


def sqlite_path(database: str | Path) -> Path:
    """The file a path or ``sqlite:`` URL names; ConfigError for any other URL."""
    if isinstance(database, Path) or "://" not in database:
        return Path(database)
    url = urlsplit(database)
    if url.scheme != SQLITE_SCHEME:
        raise ConfigError(
            f"unsupported database URL {database!r}: give a file path, sqlite:///PATH or "
            "postgresql://USER@HOST:PORT/DB"
        )
    if url.netloc or not url.path or url.query or url.fragment:
        raise ConfigError(
            f"database URL {database!r} names no local file: write sqlite:///absolute/path"
        )
    return Path(unquote(url.path))
