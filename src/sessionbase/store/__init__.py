"""Storage: the ``Store`` protocol every caller is typed to, and ``open_store`` to get one.

Backends live in private modules of this package; nothing outside it imports them (an
import-linter contract in pyproject.toml keeps it so).
"""

from __future__ import annotations

from pathlib import Path
from urllib.parse import unquote, urlsplit

from sessionbase.errors import ConfigError
from sessionbase.store.interface import Store

__all__ = ["Store", "open_store"]

SQLITE_SCHEME = "sqlite"


def open_store(database: str | Path, *, readonly: bool = False, cache_mb: int = 8) -> Store:
    """Open the database that ``database`` names, creating and migrating it unless
    ``readonly``: a file path, or a URL, ``sqlite:///absolute/path/to/file.db``.

    ``cache_mb`` sizes this connection's page cache where the backend keeps one (the ingest
    writer asks for more than readers). Raises ConfigError for a URL it cannot use and
    StoreError when the database cannot be opened; the caller closes the store.
    """
    from sessionbase.store.sqlite import SQLiteStore

    return SQLiteStore(sqlite_path(database), readonly=readonly, cache_mb=cache_mb)


def sqlite_path(database: str | Path) -> Path:
    """The file a path or ``sqlite:`` URL names; ConfigError for any other URL."""
    if isinstance(database, Path) or "://" not in database:
        return Path(database)
    url = urlsplit(database)
    if url.scheme != SQLITE_SCHEME:
        raise ConfigError(
            f"unsupported database URL {database!r}: give a file path or sqlite:///PATH"
        )
    if url.netloc or not url.path or url.query or url.fragment:
        raise ConfigError(
            f"database URL {database!r} names no local file: write sqlite:///absolute/path"
        )
    return Path(unquote(url.path))
