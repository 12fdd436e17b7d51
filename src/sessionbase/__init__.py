"""sessionbase: a live, queryable mirror of Codex sessions.

The public API is what ``__all__`` names; everything else may change.
"""

from __future__ import annotations

from importlib import import_module
from typing import Any

__all__ = ["Client", "Settings", "backfill", "create_app", "load_settings"]

_EXPORTS = {
    "Client": ("sessionbase.client", "Client"),
    "Settings": ("sessionbase.config", "Settings"),
    "load_settings": ("sessionbase.config", "load"),
    "backfill": ("sessionbase.ingest.mirror", "backfill"),
    "create_app": ("sessionbase.server", "create_app"),
}


def __getattr__(name: str) -> Any:
    """Import lazily, so ``import sessionbase`` stays cheap for the CLI."""
    try:
        module, attribute = _EXPORTS[name]
    except KeyError:
        raise AttributeError(f"module 'sessionbase' has no attribute {name!r}") from None
    return getattr(import_module(module), attribute)
