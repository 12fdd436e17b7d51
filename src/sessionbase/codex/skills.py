"""Find Codex skills (``SKILL.md`` files) the way Codex's loader does, without a database.

Follows ``codex-rs/core-skills/src/loader.rs`` (reference §5): the roots of each scope, the
bounded BFS over them, frontmatter validation and Codex's error wording, so a mirror shows the
skills Codex loads and the reasons it rejects the others. Unlike Codex we also keep
``license``, ``allowed-tools`` and ``metadata``, and a bad file or directory never raises.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import stat
from collections import deque
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

import yaml
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from sessionbase.files import FileTooLarge, NotRegularFile, read_head, read_limited

SKILL_FILE = "SKILL.md"
SCOPES = ("repo", "user", "system", "admin")
MAX_NAME_LEN = 64
MAX_DESCRIPTION_LEN = 1024
MAX_SCAN_DEPTH = 6
MAX_DIRS_PER_ROOT = 2000
MISSING_FRONTMATTER = "missing YAML frontmatter delimited by ---"
PERMISSION_DENIED = "permission denied"
SYMLINKED_SKILL_FILE = "not loaded: SKILL.md is a symlink and Codex follows only symlinked dirs"
MAX_SKILL_FILE_BYTES = 1024 * 1024  # read of each SKILL.md, whose frontmatter comes first
MAX_MANIFEST_BYTES = 1024 * 1024
FRONTMATTER_BEYOND_LIMIT = (
    f"missing YAML frontmatter in the first {MAX_SKILL_FILE_BYTES >> 20} MiB of the file"
)

_RANK = {scope: rank for rank, scope in enumerate(SCOPES)}
_NULL_TAG = "tag:yaml.org,2002:null"
_TYPED_TAGS = frozenset(
    {"tag:yaml.org,2002:bool", "tag:yaml.org,2002:int", "tag:yaml.org,2002:float"}
)
# Aliases let a few lines of YAML expand to millions of values; cap what we copy out.
_MAX_METADATA_VALUES = 10_000
_MAX_METADATA_DEPTH = 64
# Integers beyond 64 bits stay text: JSON encoders such as orjson refuse them.
_I64_MIN, _I64_MAX = -(2**63), 2**63 - 1


@dataclass(frozen=True)
class Skill:
    """One loadable skill; ``id`` is stable across scans because it hashes the canonical path."""

    id: str
    scope: str
    name: str
    description: str
    short_description: str | None
    license: str | None
    allowed_tools: list[str] | None
    metadata: dict[str, object]
    path: str
    project_dir: str | None


@dataclass(frozen=True)
class SkillProblem:
    """A SKILL.md (or directory) Codex would reject or could not read, with Codex's wording."""

    path: str
    scope: str
    reason: str


@dataclass(frozen=True)
class SkillRoot:
    """A directory to scan; ``plugin`` namespaces its skill names as ``<plugin>:<name>``."""

    scope: str
    path: Path
    project_dir: str | None = None
    plugin: str | None = None

    def __post_init__(self) -> None:
        if self.scope not in _RANK:
            raise ValueError(f"unknown skill scope {self.scope!r}; expected one of {SCOPES}")


class _Invalid(Exception):
    """A frontmatter value Codex would refuse; the message is the problem's reason."""


def skill_roots(
    codex_home: Path,
    home: Path,
    project_dirs: Iterable[Path],
    admin_root: Path = Path("/etc/codex/skills"),
) -> list[SkillRoot]:
    """Every root Codex scans for these projects, in Codex's order, de-duplicated by path.

    User, system and admin roots are listed whether or not they exist (a watcher may want
    them); repo roots only where ``.codex/`` or ``.agents/skills`` exists, as in Codex. The
    order decides which root wins when two reach the same SKILL.md in ``discover_skills``.
    """
    chains = [(Path(os.path.abspath(p)), _dirs_from_project_root(p)) for p in project_dirs]
    codex_home_real = os.path.realpath(codex_home)
    roots: list[SkillRoot] = []
    for project, chain in chains:
        # Project config layers, highest precedence (nearest the project dir) first.
        for directory in reversed(chain):
            dot_codex = directory / ".codex"
            if os.path.isdir(dot_codex) and os.path.realpath(dot_codex) != codex_home_real:
                roots.append(SkillRoot("repo", dot_codex / "skills", str(project)))
    user_skills = codex_home / "skills"
    roots.append(SkillRoot("user", user_skills))
    roots.append(SkillRoot("user", home / ".agents" / "skills"))
    roots.append(SkillRoot("system", user_skills / ".system"))
    roots.append(SkillRoot("admin", admin_root))
    roots.extend(_plugin_roots(codex_home))
    for project, chain in chains:
        for directory in chain:
            agents = directory / ".agents" / "skills"
            if os.path.isdir(agents):
                roots.append(SkillRoot("repo", agents, str(project)))
    seen: set[Path] = set()
    unique = []
    for root in roots:
        if root.path not in seen:
            seen.add(root.path)
            unique.append(root)
    return unique


def discover_skills(roots: Iterable[SkillRoot]) -> tuple[list[Skill], list[SkillProblem]]:
    """Scan ``roots``; return skills sorted repo, user, system, admin then name, and problems.

    A SKILL.md reached twice (through symlinks or overlapping roots) counts once, for the first
    root that reached it. Problems under system scope are dropped, as Codex does. Never raises
    for file-system trouble.
    """
    skills: dict[str, Skill] = {}
    problems: dict[tuple[str, str], SkillProblem] = {}
    for root in roots:
        for found in _scan_root(root):
            if isinstance(found, Skill):
                skills.setdefault(found.path, found)
            elif root.scope != "system":
                problems.setdefault((found.path, found.reason), found)
    return (
        sorted(skills.values(), key=lambda s: (_RANK[s.scope], s.name, s.path)),
        sorted(problems.values(), key=lambda p: (_RANK[p.scope], p.path, p.reason)),
    )


def parse_skill_file(path: Path, root: SkillRoot) -> Skill | SkillProblem:
    """Read and validate one SKILL.md; any failure comes back as a ``SkillProblem``."""
    shown = os.path.abspath(path)
    canonical = os.path.realpath(path)
    try:
        # The frontmatter opens the file: a huge body is never read whole.
        raw, cut = read_head(canonical, MAX_SKILL_FILE_BYTES)
    except OSError as exc:
        return SkillProblem(shown, root.scope, f"failed to read file: {_os_error_text(exc)}")
    # Codex rejects non-UTF-8 files; we keep them, replacing the bad bytes.
    frontmatter = _frontmatter(raw.decode("utf-8", errors="replace"))
    if frontmatter is None:
        reason = FRONTMATTER_BEYOND_LIMIT if cut else MISSING_FRONTMATTER
        return SkillProblem(shown, root.scope, reason)
    try:
        return _build_skill(frontmatter, canonical, root)
    except _Invalid as exc:
        return SkillProblem(shown, root.scope, str(exc))


def _dirs_from_project_root(project_dir: Path) -> list[Path]:
    """The project's git root (nearest ancestor with ``.git``, else the dir itself) down to it."""
    project = Path(os.path.abspath(project_dir))
    ancestors = [project, *project.parents]
    for index, ancestor in enumerate(ancestors):
        if os.path.exists(ancestor / ".git"):
            return ancestors[index::-1]
    return [project]


def _plugin_roots(codex_home: Path) -> list[SkillRoot]:
    """``plugins/cache/<marketplace>/<plugin>/<version>/skills`` for every cached version."""
    roots = []
    for marketplace in _subdirs(codex_home / "plugins" / "cache"):
        for plugin in _subdirs(marketplace):
            for version in _subdirs(plugin):
                name = _plugin_manifest_name(version) or plugin.name
                roots.append(SkillRoot("user", version / "skills", plugin=name))
    return roots


def _subdirs(path: Path) -> list[Path]:
    try:
        with os.scandir(path) as entries:
            names = sorted(e.name for e in entries if not e.name.startswith(".") and e.is_dir())
    except OSError:
        return []
    return [path / name for name in names]


def _plugin_manifest_name(plugin_root: Path) -> str | None:
    """The ``name`` in ``.codex-plugin/plugin.json``, which Codex uses as the namespace."""
    try:
        manifest = json.loads(
            read_limited(plugin_root / ".codex-plugin" / "plugin.json", MAX_MANIFEST_BYTES)
        )
    except (OSError, ValueError):
        return None
    name = manifest.get("name") if isinstance(manifest, dict) else None
    return name if isinstance(name, str) and name.strip() else None


def _scan_root(root: SkillRoot) -> Iterator[Skill | SkillProblem]:
    """Codex's BFS: depth ≤ 6, ≤ 2000 directories, dot names skipped, loops cut by real path."""
    follow_links = root.scope != "system"  # system skills are written by Codex itself
    start = os.path.realpath(root.path)
    try:
        if not stat.S_ISDIR(os.stat(start).st_mode):
            return
    except PermissionError:
        yield SkillProblem(start, root.scope, PERMISSION_DENIED)
        return
    except OSError:
        return
    visited = {start}
    queue = deque([(start, 0)])
    truncated = False
    while queue:
        directory, depth = queue.popleft()
        try:
            with os.scandir(directory) as it:
                entries = sorted(it, key=lambda e: e.name)
        except PermissionError:
            yield SkillProblem(directory, root.scope, PERMISSION_DENIED)
            continue
        except (FileNotFoundError, NotADirectoryError):
            continue  # removed or replaced while we were scanning
        except OSError as exc:
            reason = f"failed to read directory: {_os_error_text(exc)}"
            yield SkillProblem(directory, root.scope, reason)
            continue
        for entry in entries:
            if entry.name.startswith("."):
                continue
            kind, child = _classify(entry, follow_links)
            if kind == "dir" and depth < MAX_SCAN_DEPTH and child not in visited:
                if len(visited) >= MAX_DIRS_PER_ROOT:
                    truncated = True
                else:
                    visited.add(child)
                    queue.append((child, depth + 1))
            elif kind == "file" and entry.name == SKILL_FILE:
                found = parse_skill_file(Path(entry.path), root)
                # A file that disappeared since the listing is gone, not broken.
                if isinstance(found, Skill) or os.path.lexists(entry.path):
                    yield found
            elif kind == "link" and entry.name == SKILL_FILE:
                yield SkillProblem(entry.path, root.scope, SYMLINKED_SKILL_FILE)
    if truncated:
        reason = f"skills scan truncated after {MAX_DIRS_PER_ROOT} directories"
        yield SkillProblem(start, root.scope, reason)


def _classify(entry: os.DirEntry[str], follow_links: bool) -> tuple[str | None, str]:
    """("dir", real path), ("file", path), ("link", path) or (None, path) for one entry.

    Like Codex, only symlinks to directories are followed: a symlink to a file (or a broken
    one) is a "link", never a skill.
    """
    try:
        if entry.is_symlink():
            if not follow_links:
                return None, entry.path
            try:
                if stat.S_ISDIR(os.stat(entry.path).st_mode):
                    return "dir", os.path.realpath(entry.path)
            except OSError:
                pass
            return "link", entry.path
        if entry.is_dir(follow_symlinks=False):
            return "dir", entry.path  # parent is already a real path
        if entry.is_file(follow_symlinks=False):
            return "file", entry.path
    except OSError:
        pass
    return None, entry.path


def _os_error_text(exc: OSError) -> str:
    """Rust's ``io::Error`` Display, which is what Codex prints (our own refusals as they are)."""
    if isinstance(exc, NotRegularFile | FileTooLarge):
        return str(exc)
    if exc.errno is not None and exc.strerror:
        return f"{exc.strerror} (os error {exc.errno})"
    return str(exc)


def _frontmatter(text: str) -> str | None:
    """Lines between a first ``---`` line and the next one, or None (Codex's rule, CRLF too)."""
    lines = [line.removesuffix("\r") for line in text.split("\n")]
    if lines[0].strip() != "---":
        return None
    for index in range(1, len(lines)):
        if lines[index].strip() == "---":
            return "\n".join(lines[1:index]) if index > 1 else None
    return None


def _build_skill(frontmatter: str, canonical: str, root: SkillRoot) -> Skill:
    fields, loader = _load_fields(frontmatter)
    meta_node = fields.get("metadata")
    meta_fields = _mapping_fields(meta_node, "metadata")
    name = _one_line(_text(fields, "name") or "") or _default_name(canonical)
    if root.plugin is not None:
        name = f"{root.plugin}:{name}"
    description = _one_line(_text(fields, "description") or "")
    short = _one_line(_text(meta_fields, "short-description") or "") or None
    # Same checks, order and wording as Codex's validate_len.
    _check_length(name, MAX_NAME_LEN, "name")
    _check_length(description, MAX_DESCRIPTION_LEN, "description")
    if short is not None:
        _check_length(short, MAX_DESCRIPTION_LEN, "metadata.short-description")
    return Skill(
        id=hashlib.sha1(os.fsencode(canonical), usedforsecurity=False).hexdigest()[:16],
        scope=root.scope,
        name=name,
        description=description,
        short_description=short,
        license=_one_line(_scalar(fields.get("license")) or "") or None,
        allowed_tools=_allowed_tools(fields.get("allowed-tools")),
        metadata=_json_safe_mapping(meta_node, loader) if meta_fields else {},
        path=canonical,
        project_dir=root.project_dir,
    )


def _default_name(canonical: str) -> str:
    """The parent directory's name; "skill" when it is empty or not UTF-8, as in Codex."""
    parent = _one_line(Path(canonical).parent.name)
    try:
        parent.encode("utf-8")
    except UnicodeEncodeError:  # surrogate escapes stand for undecodable bytes
        return "skill"
    return parent or "skill"


def _load_fields(source: str) -> tuple[dict[str, Node], yaml.SafeLoader]:
    """Compose (not construct) the YAML, so values keep their source text as serde_yaml does."""
    try:
        # The reader checks characters as soon as the loader is built, so build it in here.
        loader = yaml.SafeLoader(source)
        node = loader.get_single_node()
    except yaml.MarkedYAMLError as exc:
        raise _Invalid(f"invalid YAML: {_marked_text(exc)}") from exc
    except (yaml.YAMLError, RecursionError) as exc:
        detail = "recursion limit exceeded" if isinstance(exc, RecursionError) else str(exc)
        raise _Invalid(f"invalid YAML: {_one_line(detail)}") from exc
    if node is None or (isinstance(node, ScalarNode) and node.tag == _NULL_TAG):
        return {}, loader
    if not isinstance(node, MappingNode):
        raise _Invalid(f"invalid YAML: {_type_error(node, 'a mapping')}")
    keys = [k.value for k, _ in node.value if isinstance(k, ScalarNode)]
    for field in ("name", "description", "metadata"):
        if keys.count(field) > 1:
            raise _Invalid(f"invalid YAML: duplicate field `{field}`")
    return _entries(node), loader


def _entries(node: MappingNode) -> dict[str, Node]:
    return {k.value: v for k, v in node.value if isinstance(k, ScalarNode)}


def _mapping_fields(node: Node | None, field: str) -> dict[str, Node]:
    """A mapping's scalar-keyed entries; absent or null is empty, anything else an error."""
    if isinstance(node, MappingNode):
        return _entries(node)
    if node is None or (isinstance(node, ScalarNode) and node.tag == _NULL_TAG):
        return {}
    raise _Invalid(f"invalid YAML: {field}: {_type_error(node, 'a mapping')}")


def _text(fields: dict[str, Node], field: str) -> str | None:
    """serde_yaml's ``Option<String>``: null is None, any scalar is its text, else an error."""
    node = fields.get(field)
    if node is None or isinstance(node, ScalarNode):
        return _scalar(node)
    raise _Invalid(f"invalid YAML: {field}: {_type_error(node, 'a string')}")


def _scalar(node: Node | None) -> str | None:
    if isinstance(node, ScalarNode) and node.tag != _NULL_TAG:
        return str(node.value)
    return None


def _allowed_tools(node: Node | None) -> list[str] | None:
    """``allowed-tools`` as a list; a string splits on commas/whitespace outside parentheses."""
    if isinstance(node, SequenceNode):
        items = (_one_line(_scalar(item) or "") for item in node.value)
        return [item for item in items if item]
    text = _scalar(node)
    if text is None:
        return None
    tools, current, depth = [], "", 0
    for char in _one_line(text):
        if char == "(":
            depth += 1
        elif char == ")" and depth:
            depth -= 1
        if depth == 0 and (char == "," or char.isspace()):
            if current:
                tools.append(current)
            current = ""
        else:
            current += char
    return [*tools, current] if current else tools


def _json_safe_mapping(node: Node | None, loader: yaml.SafeLoader) -> dict[str, object]:
    if node is None:
        return {}
    budget = [_MAX_METADATA_VALUES]
    value = _json_safe(node, loader, budget, set(), 0)
    return value if isinstance(value, dict) else {}


def _json_safe(
    node: Node, loader: yaml.SafeLoader, budget: list[int], active: set[int], depth: int
) -> object:
    """Plain JSON values; odd scalars (dates, binary, NaN) keep their YAML text."""
    budget[0] -= 1
    if budget[0] < 0:
        raise _Invalid(f"invalid metadata: more than {_MAX_METADATA_VALUES} values")
    if isinstance(node, ScalarNode):
        if node.tag == _NULL_TAG:
            return None
        if node.tag in _TYPED_TAGS:
            try:
                value = loader.construct_object(node)
            except (yaml.YAMLError, ValueError):
                return str(node.value)
            if isinstance(value, bool) or (
                isinstance(value, int) and _I64_MIN <= value <= _I64_MAX
            ):
                return value
            if isinstance(value, float) and math.isfinite(value):
                return value
        return str(node.value)
    if id(node) in active or depth >= _MAX_METADATA_DEPTH:
        return None  # a recursive alias, or nesting no reader needs
    active.add(id(node))
    try:
        if isinstance(node, SequenceNode):
            return [_json_safe(item, loader, budget, active, depth + 1) for item in node.value]
        if isinstance(node, MappingNode):
            return {
                str(k.value): _json_safe(v, loader, budget, active, depth + 1)
                for k, v in node.value
                if isinstance(k, ScalarNode)
            }
        return None
    finally:
        active.discard(id(node))


def _check_length(value: str, limit: int, field: str) -> None:
    if not value:
        raise _Invalid(f"missing field `{field}`")
    if len(value) > limit:
        raise _Invalid(f"invalid {field}: exceeds maximum length of {limit} characters")


def _one_line(value: str) -> str:
    return " ".join(value.split())


def _type_error(node: Node, expected: str) -> str:
    kind = {ScalarNode: "string", SequenceNode: "sequence", MappingNode: "map"}.get(
        type(node), "value"
    )
    return f"invalid type: {kind}, expected {expected}{_at(node.start_mark)}"


def _marked_text(exc: yaml.MarkedYAMLError) -> str:
    parts = [p for p in (exc.context, exc.problem) if p]
    text = _one_line(": ".join(parts) or str(exc))
    return text + _at(exc.problem_mark or exc.context_mark)


def _at(mark: yaml.Mark | None) -> str:
    return f" at line {mark.line + 1} column {mark.column + 1}" if mark is not None else ""
