"""What a person (or a model) types for a thread or a project, turned into its id.

The command line and the MCP tools take a thread by its whole id or by a prefix of at least
``MIN_ID_PREFIX`` characters that starts exactly one thread id, and a project by its id, id
prefix, name or working dir. The query functions take whole ids only (see
``MutationContext.require_thread``): a prefix that names one thread today may name two tomorrow.
"""

from __future__ import annotations

import os

from sessionbase.errors import FunctionError
from sessionbase.store import Store

MIN_ID_PREFIX = 4
"""The shortest start of a thread id taken for the whole id: a shorter one would name too many
threads to be of use."""

SHOWN_CANDIDATES = 3


class NameNotFound(FunctionError):
    """Nothing answers to the name given, or more than one thing does (``ambiguous``): the
    message says which."""

    def __init__(self, message: str, *, ambiguous: bool = False) -> None:
        super().__init__(message, status=404)
        self.ambiguous = ambiguous


def thread_id_for(store: Store, given: str) -> str:
    """The id of the thread ``given`` names: its whole id (in any case) or a prefix of at least
    ``MIN_ID_PREFIX`` characters that starts exactly one thread id. Raises NameNotFound."""
    thread = store.thread(given)
    if thread is not None:
        return str(thread["id"])
    if len(given) < MIN_ID_PREFIX:
        raise NameNotFound(
            f"{given!r} is too short: give at least {MIN_ID_PREFIX} characters of the thread id"
        )
    candidates = store.thread_ids_starting(given, SHOWN_CANDIDATES + 1)
    if len(candidates) == 1:
        return candidates[0]
    if candidates:
        more = ", …" if len(candidates) > SHOWN_CANDIDATES else ""
        shown = ", ".join(candidates[:SHOWN_CANDIDATES])
        raise NameNotFound(
            f"{given!r} starts several thread ids ({shown}{more}): give more of it", ambiguous=True
        )
    raise NameNotFound(f"no thread matches {given!r}")


def project_id_for(store: Store, given: str) -> str:
    """The id of the project ``given`` names: its id, its working dir (``~`` allowed), its name
    (any case) or a prefix of at least 4 characters of its id, tried in that order. Raises
    NameNotFound when none or several match."""
    projects = store.projects(include_hidden=True)
    path = os.path.abspath(os.path.expanduser(given))
    for matches in (
        lambda p: p["id"] == given,
        lambda p: p["working_dir"] in (given, path),
        lambda p: p["name"].lower() == given.lower(),
        lambda p: len(given) >= MIN_ID_PREFIX and p["id"].startswith(given.lower()),
    ):
        found = [p for p in projects if matches(p)]
        if len(found) == 1:
            return str(found[0]["id"])
        if found:
            which = ", ".join(f"{p['id']} ({p['working_dir']})" for p in found[:5])
            raise NameNotFound(f"{given!r} is several projects: {which}", ambiguous=True)
    raise NameNotFound(f"no project matches {given!r}")
