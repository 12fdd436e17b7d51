"""Files mirrored by request (``sessionbase import FILE``): a capture saved anywhere.

Codex's own rollouts are found by their names under the Codex homes; a ``codex exec --json``
capture or a copied session can live anywhere under any name. ``import`` checks that such a
file is in a format sessionbase reads and records its path in the data dir
(``imports/files.json``); from then on every pass mirrors it like a rollout and ``serve`` keeps
it current as it grows (it watches that registry too, so an import while it runs is picked up
at once).
"""

from __future__ import annotations

import fcntl
import os
from pathlib import Path
from typing import Any

import orjson

from sessionbase.codex import rollout
from sessionbase.codex.rollout import Generation
from sessionbase.config import Settings
from sessionbase.errors import SourceError
from sessionbase.files import NotRegularFile, read_limited
from sessionbase.ingest.lock import claimed_state
from sessionbase.ingest.reader import open_rollout
from sessionbase.store import open_store

REGISTRY_DIR = "imports"
REGISTRY = "files.json"
MAX_REGISTRY_BYTES = 16 * 1024 * 1024


def registry_dir(data_dir: Path) -> Path:
    return data_dir / REGISTRY_DIR


def imported_files(data_dir: Path) -> list[str]:
    """The registered paths, in the order they were imported. Raises ``SourceError`` when
    the registry cannot be read."""
    path = registry_dir(data_dir) / REGISTRY
    try:
        raw = read_limited(path, MAX_REGISTRY_BYTES)
    except FileNotFoundError:
        return []
    except OSError as exc:
        raise SourceError(f"cannot read the list of imported files {path}: {exc}") from exc
    try:
        files = orjson.loads(raw).get("files")
    except (orjson.JSONDecodeError, AttributeError):
        files = None
    if not isinstance(files, list) or not all(isinstance(f, str) for f in files):
        raise SourceError(f"the list of imported files {path} is damaged; import them again")
    return list(files)


def register(data_dir: Path, paths: list[str]) -> list[str]:
    """Add ``paths`` to the registry (those not there yet); returns the ones added."""
    directory = registry_dir(data_dir)
    directory.mkdir(parents=True, exist_ok=True)
    with open(directory / ".lock", "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # two imports at once both land
        try:
            known = imported_files(data_dir)
        except SourceError:
            known = []  # rewritten whole below
        added = [p for p in dict.fromkeys(paths) if p not in known]
        if added:
            temp = directory / f".{REGISTRY}.{os.getpid()}"
            temp.write_bytes(orjson.dumps({"files": known + added}, option=orjson.OPT_INDENT_2))
            os.replace(temp, directory / REGISTRY)  # readers see the old list or the new one
    return added


def check_capture(path: Path, max_line_bytes: int) -> Generation:
    """The format of a file given to ``import``; raises ``SourceError`` saying what is wrong
    with it (missing, a directory, not a format sessionbase reads)."""
    if not path.exists():
        raise SourceError(f"{path}: no such file")
    if path.is_dir():
        raise SourceError(f"{path}: is a directory; give the capture files themselves")
    try:
        generation = _detect(path, max_line_bytes)
    except NotRegularFile as exc:
        raise SourceError(f"{path}: {exc}") from exc
    except OSError as exc:
        raise SourceError(f"{path}: cannot read: {exc.strerror or exc}") from exc
    except Exception as exc:  # a .zst that does not decompress, say
        raise SourceError(f"{path}: cannot read: {exc}") from exc
    if generation is None:
        raise SourceError(f"{path}: is empty; import it once it has its first line")
    if generation is Generation.UNKNOWN:
        raise SourceError(
            f"{path}: not a recognized format (expected a Codex rollout or a"
            " `codex exec --json` capture: JSON lines such as session_meta or thread.started)"
        )
    return generation


def _detect(path: Path, max_line_bytes: int) -> Generation | None:
    """From the first non-blank line (the whole document for ``.json``); None if empty."""
    if path.name.endswith(".json"):
        raw = read_limited(path, max_line_bytes)
        if not raw.strip():
            return None
        try:
            document = orjson.loads(raw)
        except orjson.JSONDecodeError:
            return Generation.UNKNOWN
        recognized = isinstance(document, dict) and isinstance(document.get("session"), dict)
        return Generation.TS_JSON if recognized else Generation.UNKNOWN
    with open_rollout(path) as fh:
        while line := fh.readline(max_line_bytes + 1):
            if line.isspace():
                continue
            try:
                first = rollout.loads(line)
            except ValueError:
                return Generation.UNKNOWN
            return rollout.detect_generation(path, first if isinstance(first, dict) else None)
    return None


def claim_holder(settings: Settings) -> dict[str, Any]:
    """Who holds the ingest claim on this machine's Codex homes in a shared database
    (``lock.claimed_state``); a holder gone meanwhile counts as a backfill or import."""
    with open_store(settings.database_url, readonly=True, machine=settings.machine) as store:
        homes = [str(home) for home in settings.codex_homes]
        state = claimed_state(settings.machine, homes, store.ingesters(), store.replicas())
    return state or {"state": "importing"}
