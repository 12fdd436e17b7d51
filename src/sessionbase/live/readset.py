"""Read sets and write sets as ``table:key`` strings, and the overlap test between them.

A query run records what it read (``messages:<thread id>``, or ``threads:*`` for a scan); a
commit records what it wrote (``threads:<id>``, ``messages:<thread id>``, ``skills:*``). A
subscription is re-run only when a commit's writes overlap its reads.
"""

from __future__ import annotations

from collections.abc import Iterable


def _table(key: str) -> str:
    return key.partition(":")[0]


class ReadSet:
    """What one query run read. Cheap to test against a commit's touched keys."""

    __slots__ = ("keys", "tables")

    def __init__(self) -> None:
        self.keys: set[str] = set()
        self.tables: set[str] = set()

    def add(self, table: str, key: str = "*") -> None:
        if key == "*":
            self.tables.add(table)
        else:
            self.keys.add(f"{table}:{key}")

    def overlaps(self, touched: Iterable[str]) -> bool:
        for key in touched:
            table, _, rest = key.partition(":")
            if table in self.tables or key in self.keys:
                return True
            if rest == "*" and any(_table(k) == table for k in self.keys):
                return True
        return False

    def __repr__(self) -> str:
        return f"ReadSet({sorted(self.tables)} + {sorted(self.keys)})"
