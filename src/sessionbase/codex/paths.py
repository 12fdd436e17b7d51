"""Where Codex keeps its files, and what a rollout file name says."""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

SESSIONS_DIR = "sessions"
ARCHIVED_DIR = "archived_sessions"
SESSION_INDEX = "session_index.jsonl"

_UUID = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")
_ROLLOUT_SUFFIXES = (".jsonl", ".jsonl.zst", ".json")


@dataclass(frozen=True)
class RolloutFile:
    """A rollout found on disk; ``archived`` when it lives under archived_sessions/."""

    path: Path
    codex_home: Path
    archived: bool


def is_rollout_name(name: str) -> bool:
    """True for the names Codex gives rollouts in every generation (.json, .jsonl, .jsonl.zst)."""
    return name.startswith("rollout-") and name.endswith(_ROLLOUT_SUFFIXES)


def thread_id_from_name(name: str) -> str | None:
    """The UUID at the end of a rollout file name, the fallback thread id."""
    for suffix in _ROLLOUT_SUFFIXES:
        if name.endswith(suffix):
            name = name[: -len(suffix)]
            break
    found = _UUID.findall(name)
    return found[-1].lower() if found else None


def is_archived(path: Path, codex_home: Path) -> bool:
    try:
        return path.relative_to(codex_home).parts[0] == ARCHIVED_DIR
    except (ValueError, IndexError):
        return False


def find_rollouts(codex_home: Path) -> list[RolloutFile]:
    """Every rollout under sessions/ and archived_sessions/, oldest name first.

    Unreadable directories and symlink loops are skipped, never fatal. A plain ``.jsonl``
    shadows its compressed ``.jsonl.zst`` sibling, as in Codex.
    """
    found: list[RolloutFile] = []
    for sub in (SESSIONS_DIR, ARCHIVED_DIR):
        root = codex_home / sub
        seen_dirs: set[tuple[int, int]] = set()
        stack = [root]
        while stack:
            directory = stack.pop()
            try:
                st = directory.stat()
                if (st.st_dev, st.st_ino) in seen_dirs:
                    continue
                seen_dirs.add((st.st_dev, st.st_ino))
                with os.scandir(directory) as scan:
                    entries = list(scan)  # DirEntry.is_dir() needs no stat on most filesystems
            except OSError:
                continue
            names = {e.name for e in entries}
            for entry in entries:
                try:
                    if entry.is_dir():
                        stack.append(Path(entry.path))
                        continue
                except OSError:
                    pass  # a symlink loop or the like: the tailer reports it as a file error
                name = entry.name
                if not is_rollout_name(name):
                    continue
                if name.endswith(".zst") and name[: -len(".zst")] in names:
                    continue
                found.append(RolloutFile(Path(entry.path), codex_home, sub == ARCHIVED_DIR))
    found.sort(key=lambda f: (f.path.name, str(f.path)))
    return found
