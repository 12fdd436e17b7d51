"""How sessionbase words counts for people: ``counted(1, "file")`` is "1 file",
``counted(2_048, "line")`` is "2,048 lines". Used by the CLI's output and serve's log."""

from __future__ import annotations


def counted(n: int, noun: str) -> str:
    """``n`` with thousands separators and ``noun``, plural unless ``n`` is 1."""
    return f"{n:,} {noun}{'' if n == 1 else 's'}"
