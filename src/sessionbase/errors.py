"""The whole exception tree of sessionbase.

SessionbaseError
├── ConfigError       bad settings: a missing CODEX_HOME, an unreadable config file
├── FormatError       one bad input line, fully located (returned, not raised, by parsers)
├── SourceError       a file given to sessionbase cannot be mirrored (missing, a directory,
│                     not a format it reads)
├── StoreError        the database failed or is not ours to open (e.g. a newer schema)
│   ├── StoreUnavailable  the database server cannot be reached right now (try again later)
│   ├── DatabaseDamaged   the database file is damaged or empty: rebuild it from the rollouts
│   ├── IngestLocked      another process already ingests into this data dir
│   └── IngestBusy        another process ingests these Codex homes (of this machine)
├── ProtocolError     a client broke the wire protocol; closes that one connection
├── FunctionError     a query or mutation refused its input (unknown function, bad argument,
│                     missing thread): the caller's fault, never a 500
└── AuthError         a request without a valid credential (401)
    ├── ScopeError    a valid credential without the scope the call needs (403)
    └── RateLimited   too many attempts from one address, or from everyone (429)
"""

from __future__ import annotations

from pathlib import Path


class SessionbaseError(Exception):
    """Base class: every error sessionbase raises on purpose."""


class ConfigError(SessionbaseError):
    """Settings that cannot work: the message says which and how to fix it."""


class FormatError(SessionbaseError):
    """One input line that could not be used; the rest of the file still is."""

    def __init__(self, path: Path | str, offset: int, lineno: int, reason: str) -> None:
        super().__init__(f"{path}:{lineno} (byte {offset}): {reason}")
        self.path = str(path)
        self.offset = offset
        self.lineno = lineno
        self.reason = reason


class SourceError(SessionbaseError):
    """A file the user asked to mirror that cannot be: the message says which and why."""


class StoreError(SessionbaseError):
    """The database refused an operation or cannot be opened."""


class StoreUnavailable(StoreError):
    """The database server did not answer (down, restarting, unreachable): nothing was
    written, and the same call may succeed later."""


class DatabaseDamaged(StoreError):
    """The database file is damaged (or empty): what it mirrored can be rebuilt from the
    rollouts, which ``sessionbase doctor --repair`` does."""


class IngestLocked(StoreError):
    """Another process holds the data dir's ingest lock (one writer per data dir)."""


class IngestBusy(StoreError):
    """Another process already ingests these Codex homes into this database."""


class ProtocolError(SessionbaseError):
    """A client sent something the protocol does not allow."""


class FunctionError(SessionbaseError):
    """A function call that cannot be served as asked; the message tells the caller why."""

    def __init__(self, message: str, *, status: int = 400) -> None:
        super().__init__(message)
        self.status = status


class AuthError(SessionbaseError):
    """Missing or insufficient credentials."""


class ScopeError(AuthError):
    """The caller is known but was not granted the scope this needs."""


class RateLimited(AuthError):
    """Too many attempts: wait ``retry_after`` seconds."""

    def __init__(self, message: str, *, retry_after: float) -> None:
        super().__init__(message)
        self.retry_after = retry_after
