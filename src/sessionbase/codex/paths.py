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

    location: str
    """The path as text: a full pass looks at thousands of files and builds a ``Path`` only
    for the few that changed."""
    codex_home: Path
    archived: bool

    @property
    def path(self) -> Path:
        return Path(self.location)


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


def no_rollouts_hint(codex_homes: tuple[Path, ...]) -> str:
    """What to tell someone whose Codex homes hold no rollout at all: where we looked."""
    looked = ", ".join(
        str(home / sub) for home in codex_homes for sub in (SESSIONS_DIR, ARCHIVED_DIR)
    )
    return (
        f"no Codex sessions found (looked in {looked}). Codex writes them under its home"
        " directory ($CODEX_HOME, ~/.codex by default) once it has run; if yours is"
        " elsewhere, give it with --codex-home."
    )


def find_rollouts(codex_home: Path) -> list[RolloutFile]:
    """Every rollout under sessions/ and archived_sessions/, oldest name first.

    Unreadable directories and symlink loops are skipped, never fatal. A plain ``.jsonl``
    shadows its compressed ``.jsonl.zst`` sibling, as in Codex. Only symlinked directories
    cost a stat: a loop needs a symlink, and readdir already gives every entry's inode.
    """
    found: list[tuple[str, str, bool]] = []
    for sub in (SESSIONS_DIR, ARCHIVED_DIR):
        try:
            top = os.stat(codex_home / sub)
        except OSError:
            continue
        seen_dirs = {(top.st_dev, top.st_ino)}
        stack = [(os.path.join(codex_home, sub), top.st_dev)]
        while stack:
            directory, dev = stack.pop()
            try:
                with os.scandir(directory) as scan:
                    entries = list(scan)
            except OSError:
                continue
            names = {e.name for e in entries}
            for entry in entries:
                try:
                    if entry.is_dir():
                        if entry.is_symlink():
                            target = entry.stat()
                            key, child_dev = (target.st_dev, target.st_ino), target.st_dev
                        else:
                            key, child_dev = (dev, entry.inode()), dev
                        if key not in seen_dirs:
                            seen_dirs.add(key)
                            stack.append((entry.path, child_dev))
                        continue
                except OSError:
                    pass  # a symlink loop or the like: the tailer reports it as a file error
                name = entry.name
                if not is_rollout_name(name):
                    continue
                if name.endswith(".zst") and name[: -len(".zst")] in names:
                    continue
                found.append((name, entry.path, sub == ARCHIVED_DIR))
    found.sort()
    return [RolloutFile(location, codex_home, archived) for _, location, archived in found]
