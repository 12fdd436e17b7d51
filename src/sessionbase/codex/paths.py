"""Where Codex keeps its files, and what a rollout file name says."""

from __future__ import annotations

import os
import re
import stat
from dataclasses import dataclass, field
from pathlib import Path

from sessionbase.files import kind_of

SESSIONS_DIR = "sessions"
ARCHIVED_DIR = "archived_sessions"
SESSION_INDEX = "session_index.jsonl"

_UUID = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")
_ROLLOUT_SUFFIXES = (".jsonl", ".jsonl.zst", ".json")


@dataclass(frozen=True)
class RolloutFile:
    """A rollout found on disk; ``archived`` when it lives under archived_sessions/. An
    imported file belongs to no home (``codex_home`` None)."""

    location: str
    """The path as text: a full pass looks at thousands of files and builds a ``Path`` only
    for the few that changed."""
    codex_home: Path | None
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


def is_archived(path: Path, codex_home: Path | None) -> bool:
    if codex_home is None:
        return False
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


NOT_FOLLOWED = "a symbolic link: not followed below sessions/ and archived_sessions/"
NOT_A_ROLLOUT_NAME = (
    "not named like a rollout (rollout-*.jsonl, .jsonl.zst or .json); to mirror a"
    " `codex exec --json` capture or a copied session, use `sessionbase import FILE`"
)


@dataclass(frozen=True)
class PathProblem:
    """A path that was not mirrored, and why (in words a person can act on)."""

    path: str
    reason: str


@dataclass
class HomeScan:
    """What one walk of a Codex home's session folders found."""

    rollouts: list[RolloutFile] = field(default_factory=list)
    directories: list[str] = field(default_factory=list)
    """Every directory walked, the roots included: what a watch must cover."""
    unreadable: list[PathProblem] = field(default_factory=list)
    unrecognized: list[PathProblem] = field(default_factory=list)

    def extend(self, other: HomeScan) -> None:
        self.rollouts.extend(other.rollouts)
        self.directories.extend(other.directories)
        self.unreadable.extend(other.unreadable)
        self.unrecognized.extend(other.unrecognized)


def scan_home(codex_home: Path) -> HomeScan:
    """Every rollout under ``sessions/`` and ``archived_sessions/``, oldest name first, with
    the directories walked and what could not be read or was not recognized.

    The roots are opened as paths, so a home or a ``sessions`` folder that is a symlink works,
    as in Codex. Below them no symlink is followed, to a directory or to a file: Codex lists
    only real directories and files there, and a link could lead anywhere (``/`` included).
    An unreadable directory is reported and skipped; the walk goes on. A plain ``.jsonl``
    shadows its compressed ``.jsonl.zst`` sibling, as in Codex.
    """
    scan = HomeScan()
    for sub in (SESSIONS_DIR, ARCHIVED_DIR):
        root = codex_home / sub
        try:
            top = os.stat(root)
        except FileNotFoundError:
            continue
        except OSError as exc:
            scan.unreadable.append(PathProblem(str(root), _os_reason(exc)))
            continue
        if not stat.S_ISDIR(top.st_mode):
            scan.unrecognized.append(
                PathProblem(str(root), f"not a directory ({kind_of(top.st_mode)})")
            )
            continue
        scan.extend(scan_tree(str(root), codex_home, archived=sub == ARCHIVED_DIR, root=top))
    scan.rollouts.sort(key=lambda f: (os.path.basename(f.location), f.location))
    return scan


def scan_tree(
    directory: str, codex_home: Path, *, archived: bool, root: os.stat_result | None = None
) -> HomeScan:
    """``scan_home`` for one directory under a session root (a new day's folder, say); it must
    be a real directory, not a symlink to one, unless its ``root`` stat is given."""
    scan = HomeScan()
    if root is None:
        try:
            root = os.lstat(directory)
        except OSError:
            return scan  # gone already
        if not stat.S_ISDIR(root.st_mode):
            return scan
    # Real directories only, yet a bind mount can still make a loop: cut it by inode.
    seen = {(root.st_dev, root.st_ino)}
    stack = [directory]
    while stack:
        current = stack.pop()
        try:
            with os.scandir(current) as listing:
                entries = list(listing)
        except FileNotFoundError:
            continue  # removed while we walked
        except OSError as exc:
            scan.unreadable.append(PathProblem(current, _os_reason(exc)))
            continue
        scan.directories.append(current)
        names = {e.name for e in entries}
        for entry in entries:
            name = entry.name
            try:
                if entry.is_symlink():
                    scan.unrecognized.append(PathProblem(entry.path, NOT_FOLLOWED))
                    continue
                if entry.is_dir(follow_symlinks=False):
                    child = entry.stat(follow_symlinks=False)
                    if (child.st_dev, child.st_ino) not in seen:
                        seen.add((child.st_dev, child.st_ino))
                        stack.append(entry.path)
                    continue
                regular = entry.is_file(follow_symlinks=False)
                mode = 0 if regular else entry.stat(follow_symlinks=False).st_mode
            except FileNotFoundError:
                continue
            except OSError as exc:
                scan.unreadable.append(PathProblem(entry.path, _os_reason(exc)))
                continue
            if is_rollout_name(name):
                if name.endswith(".zst") and name[: -len(".zst")] in names:
                    continue
                # A rollout name that is a FIFO or a device still goes to the tailer, which
                # records why it cannot be read.
                scan.rollouts.append(RolloutFile(entry.path, codex_home, archived))
            elif regular:
                scan.unrecognized.append(PathProblem(entry.path, NOT_A_ROLLOUT_NAME))
            else:
                reason = f"not a regular file ({kind_of(mode)})"
                scan.unrecognized.append(PathProblem(entry.path, reason))
    return scan


def _os_reason(exc: OSError) -> str:
    return exc.strerror or str(exc)
