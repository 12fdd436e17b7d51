"""Project identity, the same for every backend and every machine.

A project is its repository: the laptop's ``~/src/app`` and the desktop's ``/work/app``
clones of one repository are one project, with a working dir per machine. The repository is
the ``origin`` remote of the work tree on this machine's disk; for a working dir that is not
on this disk (a rollout from another machine), the ``git.repository_url`` Codex recorded.
Without a repository, a project is a working dir on one machine.
"""

from __future__ import annotations

import configparser
import hashlib
import re
from pathlib import Path

_SCP_LIKE = re.compile(r"^(?:[\w.-]+@)?([\w.-]+):(?!//)(.+)$")  # git@host:owner/repo


def repository_key(url: str) -> str:
    """The repository a remote URL names, however it is written: ``host/path`` in lower case,
    without scheme, user, port, ``.git`` or slashes at the ends (the https, ssh and scp-like
    forms of one repository give one key)."""
    text = url.strip()
    scp = _SCP_LIKE.match(text)
    if scp and "://" not in text:
        host, path = scp.group(1), scp.group(2)
    else:
        rest = text.split("://", 1)[-1]
        authority, _, path = rest.partition("/")
        host = authority.rsplit("@", 1)[-1].split(":", 1)[0]
    path = path.strip("/")
    if path.endswith(".git"):
        path = path[:-4]
    return f"{host}/{path}".lower().rstrip("/")


def origin_url(root: str) -> str | None:
    """The ``origin`` remote of the git work tree at ``root`` on this disk, if any."""
    git = Path(root) / ".git"
    try:
        if git.is_file():  # a linked work tree: "gitdir: <dir>"
            gitdir = Path(git.read_text().split(":", 1)[1].strip())
            common = gitdir / "commondir"
            git = (gitdir / common.read_text().strip()) if common.exists() else gitdir
        config = configparser.ConfigParser(strict=False, interpolation=None)
        config.read(git / "config", encoding="utf-8")
        url = config.get('remote "origin"', "url", fallback=None)
    except (OSError, ValueError, IndexError, configparser.Error):
        return None
    return url or None


def is_work_tree(root: str) -> bool:
    try:
        return (Path(root) / ".git").exists()
    except OSError:
        return False


def project_id(machine: str, root: str, recorded_url: str | None = None) -> str:
    """Stable id of the project at ``root`` (the repository root found on this disk, or the
    working dir itself): its repository's, else the root's on this machine. The repository is
    read from the work tree when it is on this disk (``recorded_url``, from the rollout, is
    used only when it is not), so every thread run in one clone has one project."""
    url = origin_url(root) if is_work_tree(root) else recorded_url
    if url:
        return hashlib.sha1(f"repo\0{repository_key(url)}".encode()).hexdigest()[:16]
    return hashlib.sha1(f"{machine}\0{root}".encode()).hexdigest()[:16]
