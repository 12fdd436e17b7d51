"""Connections to PostgreSQL: one pool per database per process, and driver errors translated.

Every ``PostgresStore`` of a process borrows its connection from the pool of its URL, so the
live engine's per-thread stores, the embedder and HTTP readers share a handful of server
connections. A connection that broke (the server restarted, the network dropped) is handed
back to the pool, which discards it; the next call borrows a fresh one.
"""

from __future__ import annotations

import atexit
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import psycopg
from psycopg_pool import ConnectionPool

from sessionbase.errors import StoreError, StoreUnavailable

POOL_MAX = 16
CONNECT_TIMEOUT = 10  # seconds: a server that does not answer at all is unavailable
BORROW_TIMEOUT = 30.0

Connection = psycopg.Connection[Any]
Cursor = psycopg.Cursor[Any]

_pools: dict[str, ConnectionPool[Connection]] = {}
_pools_lock = threading.Lock()


def is_postgres_url(database: str) -> bool:
    return database.startswith(("postgresql://", "postgres://"))


def pool_for(url: str) -> ConnectionPool[Connection]:
    """The process's pool for ``url`` (opened on first use, closed at exit)."""
    with _pools_lock:
        pool = _pools.get(url)
        if pool is None:
            # One connection first: a server that refuses or does not answer is reported at
            # once, not after the pool has retried for BORROW_TIMEOUT.
            connect(url).close()
            pool = ConnectionPool(
                url,
                min_size=1,
                max_size=POOL_MAX,
                kwargs={
                    "autocommit": True,
                    "connect_timeout": CONNECT_TIMEOUT,
                    "application_name": "sessionbase",
                },
                check=ConnectionPool.check_connection,
                name="sessionbase",
                open=False,
            )
            try:
                pool.open(wait=False)
            except psycopg.Error as exc:
                raise StoreUnavailable(f"cannot connect to {redacted(url)}: {exc}") from exc
            _pools[url] = pool
        return pool


def connect(url: str, purpose: str = "sessionbase") -> Connection:
    """A connection of its own, outside the pool (for LISTEN and session locks), named
    ``purpose`` in ``pg_stat_activity``."""
    try:
        return psycopg.connect(
            url, autocommit=True, connect_timeout=CONNECT_TIMEOUT, application_name=purpose
        )
    except psycopg.Error as exc:
        raise StoreUnavailable(f"cannot connect to {redacted(url)}: {one_line(exc)}") from exc


@atexit.register
def _close_pools() -> None:
    with _pools_lock:
        pools = list(_pools.values())
        _pools.clear()
    for pool in pools:
        pool.close(timeout=1.0)


def redacted(url: str) -> str:
    """The URL without its password, for messages."""
    scheme, sep, rest = url.partition("://")
    if "@" not in rest:
        return url
    credentials, at, host = rest.rpartition("@")
    user = credentials.split(":", 1)[0]
    return f"{scheme}{sep}{user}{at}{host}"


def one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split()) or type(exc).__name__


class Borrowed:
    """One store's connection: borrowed on first use, replaced when it breaks."""

    def __init__(self, url: str) -> None:
        self.url = url
        self._pool = pool_for(url)
        self._conn: Connection | None = None

    def get(self) -> Connection:
        conn = self._conn
        if conn is None or conn.closed or conn.broken:
            if conn is not None:
                self.release()
            try:
                conn = self._pool.getconn(timeout=BORROW_TIMEOUT)
            except Exception as exc:  # PoolTimeout, or the pool failing to connect
                raise StoreUnavailable(
                    f"cannot reach the database {redacted(self.url)}: {one_line(exc)}"
                ) from exc
            self._conn = conn
        return conn

    @property
    def in_transaction(self) -> bool:
        conn = self._conn
        return (
            conn is not None
            and not conn.closed
            and conn.info.transaction_status != psycopg.pq.TransactionStatus.IDLE
        )

    def release(self) -> None:
        conn, self._conn = self._conn, None
        if conn is None:
            return
        try:
            if not conn.closed and not conn.broken and self.in_transaction_of(conn):
                conn.rollback()
        except psycopg.Error:
            pass
        try:
            self._pool.putconn(conn)
        except Exception:  # the pool closed first (at exit): just drop the connection
            conn.close()

    @staticmethod
    def in_transaction_of(conn: Connection) -> bool:
        return conn.info.transaction_status != psycopg.pq.TransactionStatus.IDLE

    @contextmanager
    def errors(self, doing: str) -> Iterator[None]:
        """Translate driver errors met while ``doing`` something into StoreError (or
        StoreUnavailable when the server could not be reached); a broken connection goes
        back to the pool, a failed transaction is rolled back."""
        try:
            yield
        except psycopg.OperationalError as exc:
            conn = self._conn
            if conn is not None and (conn.closed or conn.broken):
                self.release()
                raise StoreUnavailable(f"{doing}: lost the database ({one_line(exc)})") from exc
            self.rollback()
            raise StoreError(f"{doing}: {one_line(exc)}") from exc
        except psycopg.Error as exc:
            self.rollback()
            raise StoreError(f"{doing}: {one_line(exc)}") from exc
        except StoreError:
            self.rollback()
            raise

    def rollback(self) -> None:
        conn = self._conn
        if conn is None or conn.closed or conn.broken:
            return
        try:
            if self.in_transaction_of(conn):
                conn.execute("ROLLBACK")
        except psycopg.Error:
            self.release()


def fail(doing: str, exc: Exception) -> StoreError:
    return StoreError(f"{doing}: {one_line(exc)}")
