"""Each backend assigned to a ``Store``-typed name: mypy reports any method a backend lacks
or types differently from the protocol. Nothing imports this module at run time."""

from __future__ import annotations

from pathlib import Path

from sessionbase.store.interface import Store
from sessionbase.store.sqlite import SQLiteStore


def _sqlite(path: Path) -> Store:
    store: Store = SQLiteStore(path)
    return store
