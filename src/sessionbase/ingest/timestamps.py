"""Codex timestamps (RFC 3339 UTC, millisecond precision) as integer milliseconds, and the
moments people type (``2026-05-01``, ``7d``)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

AGES_MS = {"d": 86_400_000, "h": 3_600_000, "m": 60_000}


def to_ms(value: Any) -> int | None:
    """Milliseconds since the epoch for an RFC 3339 string or unix seconds; None if unusable."""
    if isinstance(value, str) and value:
        try:
            parsed = datetime.fromisoformat(value)
        except ValueError:
            return None
        if parsed.tzinfo is None:
            parsed = parsed.replace(tzinfo=UTC)
        return int(parsed.timestamp() * 1000)
    if isinstance(value, int | float) and not isinstance(value, bool) and value > 0:
        # unix seconds (Codex's task_started.started_at) vs. already milliseconds
        return int(value * 1000) if value < 1e11 else int(value)
    return None


def uuid7_ms(value: str | None) -> int | None:
    """The creation time a version 7 UUID carries (its first 48 bits, in ms); None for any
    other id. Codex session ids are UUIDv7, so this dates a file that holds no timestamp."""
    if not value or len(value) != 36 or value[14:15] != "7":
        return None
    try:
        return int(value[:8] + value[9:13], 16)
    except ValueError:
        return None


def iso(ms: int | None) -> str | None:
    """The RFC 3339 form used in JSON output: ``2026-06-05T04:58:20.653Z``."""
    if ms is None:
        return None
    moment = datetime.fromtimestamp(ms / 1000, tz=UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{ms % 1000:03d}Z"


def moment_ms(value: str, now_ms: int) -> int:
    """A moment as a person types it, in ms since the epoch: a date (``2026-05-01``), a date and
    time (``2026-05-01T10:00``, UTC unless it says otherwise), or an age before ``now_ms``
    (``7d``, ``12h``, ``30m``). Raises ValueError for anything else."""
    value = value.strip()
    if value[-1:] in AGES_MS and value[:-1].isdigit():
        return now_ms - int(value[:-1]) * AGES_MS[value[-1]]
    ms = to_ms(value)
    if ms is None:
        raise ValueError(f"not a date, time or relative age like 7d: {value!r}")
    return ms
