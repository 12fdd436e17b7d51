"""Projects from session metadata: one per repository (across machines, see
``store.projects``), or per working dir outside a repository.

The repository root is found on this machine's disk (nearest ancestor of ``cwd`` holding
``.git``); when ``cwd`` is not here (a rollout copied from another machine), ``cwd`` itself is
the project. Lookups are cached per ``cwd``.
"""

from __future__ import annotations

from pathlib import Path, PurePosixPath
from typing import Any

from sessionbase.store.base import ProjectRow
from sessionbase.store.projects import project_id
from sessionbase.store.rows import ThreadFields


def repo_root(cwd: str) -> str:
    """The git work tree containing ``cwd`` on this disk, else ``cwd`` itself."""
    try:
        start = Path(cwd)
        for candidate in (start, *start.parents):
            if (candidate / ".git").exists():
                return str(candidate)
    except OSError:
        pass
    return cwd


class ProjectResolver:
    """Maps a thread's ``cwd`` and ``git`` metadata to its project row."""

    def __init__(self, machine: str) -> None:
        self.machine = machine
        self._roots: dict[str, str] = {}
        self._ids: dict[tuple[str, str | None], str] = {}

    def id_for(self, root: str, recorded_url: str | None) -> str:
        key = (root, recorded_url)
        found = self._ids.get(key)
        if found is None:
            found = self._ids[key] = project_id(self.machine, root, recorded_url)
        return found

    def root_for(self, cwd: str) -> str:
        root = self._roots.get(cwd)
        if root is None:
            root = self._roots[cwd] = repo_root(cwd)
        return root

    def resolve(self, cwd: Any, git: Any, thread: ThreadFields) -> ProjectRow | None:
        if not isinstance(cwd, str) or not cwd:
            return None
        root = self.root_for(cwd)
        info = git if isinstance(git, dict) else {}
        return ProjectRow(
            id=self.id_for(root, _str(info.get("repository_url"))),
            name=PurePosixPath(root).name or root,
            working_dir=root,
            repo_url=_str(info.get("repository_url")),
            repo_branch=_str(info.get("branch")),
            repo_commit=_str(info.get("commit_hash")),
            machine=self.machine,
            created_at=thread.get("created_at"),
            updated_at=thread.get("updated_at"),
        )


def _str(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None
