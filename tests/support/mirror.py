"""Settings for a throwaway data dir over one Codex home, and a one-shot full sync."""

from __future__ import annotations

from pathlib import Path

from sessionbase import config
from sessionbase.config import Settings
from sessionbase.ingest.mirror import Mirror, SyncReport


def settings_for(tmp_path: Path, name: str, codex_home: Path, **overrides: object) -> Settings:
    """Data dir ``tmp_path/name`` mirroring ``codex_home``, isolated from the user's setup."""
    return config.load(
        environ={},
        overrides={
            "data_dir": tmp_path / name,
            "codex_homes": (codex_home,),
            "home": tmp_path / "user-home",
            "machine": "test-machine",
            **overrides,
        },
    )


def sync(settings: Settings) -> SyncReport:
    with Mirror(settings) as mirror:
        return mirror.sync()
