"""Skill discovery on real directory trees: roots, BFS limits, symlinks, frontmatter rules.

File-system failures are produced for real: broken and looping symlinks, a FIFO, a directory
where a file is expected, and permission denied (as root, by forking a child that drops to
``nobody``, since root bypasses permission bits). The one race, a file vanishing between
listing and reading, is injected by deleting it inside a wrapped ``os.open``: the deletion is
real, only its timing is arranged.
"""

from __future__ import annotations

import hashlib
import json
import os
import pickle
import shutil
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TypeVar

import orjson
import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from sessionbase.codex.skills import (
    MAX_DIRS_PER_ROOT,
    MISSING_FRONTMATTER,
    PERMISSION_DENIED,
    SYMLINKED_SKILL_FILE,
    Skill,
    SkillProblem,
    SkillRoot,
    discover_skills,
    parse_skill_file,
    skill_roots,
)

T = TypeVar("T")
NOBODY = 65534


def write_skill(
    directory: Path,
    name: str | None = None,
    description: str | None = "Does a thing.",
    **extra: str,
) -> Path:
    """Write ``directory/SKILL.md`` with simple frontmatter; ``extra`` lines go in verbatim."""
    lines = ["---"]
    if name is not None:
        lines.append(f"name: {name}")
    if description is not None:
        lines.append(f"description: {description}")
    lines += [f"{key.replace('_', '-')}: {value}" for key, value in extra.items()]
    lines += ["---", "", "# Body", ""]
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / "SKILL.md"
    path.write_text("\n".join(lines), encoding="utf-8")
    return path


def write_raw(directory: Path, content: str | bytes) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / "SKILL.md"
    if isinstance(content, str):
        path.write_bytes(content.encode("utf-8"))
    else:
        path.write_bytes(content)
    return path


def parse(path: Path, scope: str = "user", plugin: str | None = None) -> Skill | SkillProblem:
    return parse_skill_file(path, SkillRoot(scope, path.parent.parent, plugin=plugin))


def parsed_skill(path: Path, **kwargs: str) -> Skill:
    found = parse(path, **kwargs)
    assert isinstance(found, Skill), found
    return found


def problem_reason(path: Path, **kwargs: str) -> str:
    found = parse(path, **kwargs)
    assert isinstance(found, SkillProblem), found
    return found.reason


def names(skills: list[Skill]) -> list[str]:
    return [s.name for s in skills]


# --- frontmatter -------------------------------------------------------------------------


def test_full_frontmatter_is_kept(tmp_path: Path) -> None:
    path = write_raw(
        tmp_path / "skills" / "pdf",
        "---\n"
        "name: pdf-tools\n"
        "description: Work with PDF files.\n"
        "license: Apache-2.0\n"
        "allowed-tools: Read, Grep Bash(git add:*)\n"
        "metadata:\n"
        "  short-description: PDFs\n"
        "  version: 3\n"
        "  tags: [docs, 1.5, true, null]\n"
        "---\n\nBody\n",
    )
    skill = parsed_skill(path)
    assert skill.name == "pdf-tools"
    assert skill.description == "Work with PDF files."
    assert skill.short_description == "PDFs"
    assert skill.license == "Apache-2.0"
    assert skill.allowed_tools == ["Read", "Grep", "Bash(git add:*)"]
    assert skill.metadata == {
        "short-description": "PDFs",
        "version": 3,
        "tags": ["docs", 1.5, True, None],
    }
    assert skill.scope == "user"
    assert skill.project_dir is None
    assert skill.path == os.path.realpath(path)


def test_id_is_sha1_prefix_of_canonical_path(tmp_path: Path) -> None:
    real = write_skill(tmp_path / "real" / "s", name="s")
    (tmp_path / "link").symlink_to(tmp_path / "real", target_is_directory=True)
    via_link = parsed_skill(tmp_path / "link" / "s" / "SKILL.md")
    expected = hashlib.sha1(str(real.resolve()).encode()).hexdigest()[:16]
    assert via_link.id == expected
    assert via_link.path == str(real.resolve())
    assert parsed_skill(real).id == expected


def test_allowed_tools_as_yaml_list(tmp_path: Path) -> None:
    path = write_skill(tmp_path / "s" / "x", allowed_tools="[Read, 'Bash(ls  -l)', '', null]")
    assert parsed_skill(path).allowed_tools == ["Read", "Bash(ls -l)"]


def test_allowed_tools_absent_is_none_and_empty_string_is_empty(tmp_path: Path) -> None:
    assert parsed_skill(write_skill(tmp_path / "s" / "a")).allowed_tools is None
    assert parsed_skill(write_skill(tmp_path / "s" / "b", allowed_tools='""')).allowed_tools == []


def test_extra_fields_never_sink_a_skill(tmp_path: Path) -> None:
    # Codex ignores these keys, so odd values must not turn the skill into a problem.
    path = write_skill(
        tmp_path / "s" / "x",
        license="[a, b]",
        allowed_tools="{a: 1}",
        created="2024-13-45",
        obj="!!python/object:os.system ls",
    )
    skill = parsed_skill(path)
    assert skill.license is None
    assert skill.allowed_tools is None


def test_name_defaults_to_parent_directory(tmp_path: Path) -> None:
    assert parsed_skill(write_skill(tmp_path / "s" / "my-skill")).name == "my-skill"


def test_non_utf8_directory_name_defaults_to_skill(tmp_path: Path) -> None:
    directory = Path(os.fsdecode(bytes(tmp_path / "s") + b"/caf\xe9"))
    assert parsed_skill(write_skill(directory)).name == "skill"


def test_blank_name_also_defaults_to_parent_directory(tmp_path: Path) -> None:
    assert parsed_skill(write_skill(tmp_path / "s" / "dir", name='"  "')).name == "dir"


def test_values_are_collapsed_to_one_line(tmp_path: Path) -> None:
    path = write_raw(
        tmp_path / "s" / "x",
        "---\nname: '  spaced\tname '\ndescription: |\n  first line\n\n    second   line\n"
        "metadata:\n  short-description: >\n    folded\n    text\n---\n",
    )
    skill = parsed_skill(path)
    assert skill.name == "spaced name"
    assert skill.description == "first line second line"
    assert skill.short_description == "folded text"


def test_scalars_keep_their_source_text_like_serde_yaml(tmp_path: Path) -> None:
    skill = parsed_skill(write_skill(tmp_path / "s" / "x", name="1e3", description="yes"))
    assert (skill.name, skill.description) == ("1e3", "yes")


def test_name_of_64_chars_is_fine_and_65_is_not(tmp_path: Path) -> None:
    assert parsed_skill(write_skill(tmp_path / "s" / "a", name="n" * 64)).name == "n" * 64
    assert (
        problem_reason(write_skill(tmp_path / "s" / "b", name="n" * 65))
        == "invalid name: exceeds maximum length of 64 characters"
    )


def test_lengths_count_characters_not_bytes(tmp_path: Path) -> None:
    skill = parsed_skill(write_skill(tmp_path / "s" / "x", name="é" * 64, description="ü" * 1024))
    assert len(skill.name.encode()) == 128


def test_missing_description(tmp_path: Path) -> None:
    path = write_skill(tmp_path / "s" / "x", name="x", description=None)
    assert problem_reason(path) == "missing field `description`"


@pytest.mark.parametrize("value", ["", "null", "'   '", "~"])
def test_empty_description_counts_as_missing(tmp_path: Path, value: str) -> None:
    path = write_skill(tmp_path / "s" / "x", description=value)
    assert problem_reason(path) == "missing field `description`"


def test_description_limit(tmp_path: Path) -> None:
    assert parsed_skill(write_skill(tmp_path / "s" / "a", description="d" * 1024))
    assert (
        problem_reason(write_skill(tmp_path / "s" / "b", description="d" * 1025))
        == "invalid description: exceeds maximum length of 1024 characters"
    )


def test_short_description_limit(tmp_path: Path) -> None:
    path = write_raw(
        tmp_path / "s" / "x",
        f"---\ndescription: d\nmetadata:\n  short-description: {'s' * 1025}\n---\n",
    )
    assert problem_reason(path) == (
        "invalid metadata.short-description: exceeds maximum length of 1024 characters"
    )


def test_name_is_checked_before_description(tmp_path: Path) -> None:
    path = write_skill(tmp_path / "s" / "x", name="n" * 65, description=None)
    assert problem_reason(path).startswith("invalid name")


def test_invalid_yaml_reports_where(tmp_path: Path) -> None:
    reason = problem_reason(write_raw(tmp_path / "s" / "x", "---\nname: a: b\n---\n"))
    assert reason == "invalid YAML: mapping values are not allowed here at line 1 column 8"


@pytest.mark.parametrize(
    ("frontmatter", "expected"),
    [
        ("name: [a]\ndescription: d", "invalid YAML: name: invalid type: sequence"),
        ("description: {a: 1}", "invalid YAML: description: invalid type: map"),
        ("description: d\nmetadata: text", "invalid YAML: metadata: invalid type: string"),
        ("- a\n- b", "invalid YAML: invalid type: sequence, expected a mapping"),
        ("description: d\nname: a\nname: b", "invalid YAML: duplicate field `name`"),
        ("description: [" * 3000, "invalid YAML: "),
    ],
)
def test_yaml_shape_errors(tmp_path: Path, frontmatter: str, expected: str) -> None:
    reason = problem_reason(write_raw(tmp_path / "s" / "x", f"---\n{frontmatter}\n---\n"))
    assert reason.startswith(expected)


@pytest.mark.parametrize(
    "content",
    [
        "# Just markdown\n",
        "",
        "---\nname: x\ndescription: never closed\n",
        "---\n---\nbody\n",
        "\n---\nname: x\ndescription: d\n---\n",
    ],
)
def test_missing_frontmatter(tmp_path: Path, content: str) -> None:
    assert problem_reason(write_raw(tmp_path / "s" / "x", content)) == MISSING_FRONTMATTER


def test_frontmatter_ends_at_the_first_closing_line(tmp_path: Path) -> None:
    path = write_raw(tmp_path / "s" / "x", "---\ndescription: d\n---\nname: body\n---\n")
    assert parsed_skill(path).name == "x"


def test_comment_only_frontmatter_lacks_description(tmp_path: Path) -> None:
    path = write_raw(tmp_path / "s" / "x", "---\n# nothing\n---\n")
    assert problem_reason(path) == "missing field `description`"


def test_crlf_line_endings(tmp_path: Path) -> None:
    path = write_raw(
        tmp_path / "s" / "x",
        "---\r\nname: crlf\r\ndescription: Windows\r\n  file\r\n---  \r\nbody\r\n",
    )
    skill = parsed_skill(path)
    assert (skill.name, skill.description) == ("crlf", "Windows file")


def test_bom_is_rejected_like_codex(tmp_path: Path) -> None:
    # Codex reads the text as-is and Rust's trim() keeps U+FEFF, so the first line is not
    # `---`: Codex reports missing frontmatter, and so do we.
    path = write_raw(tmp_path / "s" / "x", b"\xef\xbb\xbf---\nname: bom\ndescription: d\n---\n")
    assert problem_reason(path) == MISSING_FRONTMATTER


def test_non_utf8_bytes_are_replaced(tmp_path: Path) -> None:
    path = write_raw(tmp_path / "s" / "x", b"---\nname: caf\xe9\ndescription: ok \xff\n---\n")
    skill = parsed_skill(path)
    assert skill.name == "caf\ufffd"
    assert skill.description == "ok \ufffd"


def test_metadata_is_json_safe(tmp_path: Path) -> None:
    path = write_raw(
        tmp_path / "s" / "x",
        "---\ndescription: d\nmetadata:\n"
        "  when: 2024-01-02\n"
        "  bad-date: 2024-13-45\n"
        "  nan: .nan\n"
        "  hex: 0x1F\n"
        "  huge: " + "9" * 5000 + "\n"
        "  i64: 9223372036854775807\n"
        "  u64: 9223372036854775808\n"
        "  blob: !!binary aGVsbG8=\n"
        "  ? [complex, key]\n"
        "  : dropped\n"
        "  1: one\n"
        "  self: &loop [a, *loop]\n"
        "---\n",
    )
    metadata = parsed_skill(path).metadata
    json.dumps(metadata, allow_nan=False)
    orjson.dumps(metadata)  # what the store uses
    assert metadata["when"] == "2024-01-02"
    assert metadata["bad-date"] == "2024-13-45"
    assert metadata["nan"] == ".nan"
    assert metadata["hex"] == 31
    assert metadata["huge"] == "9" * 5000
    assert metadata["i64"] == 2**63 - 1
    assert metadata["u64"] == "9223372036854775808"
    assert metadata["blob"] == "aGVsbG8="
    assert metadata["1"] == "one"
    assert metadata["self"] == ["a", None]
    assert "dropped" not in metadata.values()


def test_metadata_alias_bomb_is_a_problem_not_a_hang(tmp_path: Path) -> None:
    levels = ["  a0: &a0 [x, x, x, x, x, x, x, x, x, x]"]
    levels += [f"  a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 10)}]" for i in range(1, 9)]
    path = write_raw(
        tmp_path / "s" / "x", "---\ndescription: d\nmetadata:\n" + "\n".join(levels) + "\n---\n"
    )
    assert problem_reason(path).startswith("invalid metadata: more than")


def test_plugin_names_are_namespaced_and_length_includes_namespace(tmp_path: Path) -> None:
    ok = write_skill(tmp_path / "s" / "a", name="search")
    assert parsed_skill(ok, plugin="gh").name == "gh:search"
    long = write_skill(tmp_path / "s" / "b", name="n" * 62)
    assert problem_reason(long, plugin="gh") == (
        "invalid name: exceeds maximum length of 64 characters"
    )


def test_unreadable_paths_are_problems_not_exceptions(tmp_path: Path) -> None:
    root = SkillRoot("user", tmp_path)
    missing = parse_skill_file(tmp_path / "nope" / "SKILL.md", root)
    assert isinstance(missing, SkillProblem)
    assert missing.reason == "failed to read file: No such file or directory (os error 2)"
    (tmp_path / "dir" / "SKILL.md").mkdir(parents=True)
    is_dir = parse_skill_file(tmp_path / "dir" / "SKILL.md", root)
    assert isinstance(is_dir, SkillProblem)
    assert is_dir.reason == "failed to read file: Is a directory (os error 21)"


@settings(
    max_examples=150,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(body=st.text(), raw=st.binary(max_size=64))
def test_arbitrary_content_never_raises(tmp_path: Path, body: str, raw: bytes) -> None:
    directory = tmp_path / "s" / "fuzz"
    for content in (
        f"---\n{body}\n---\n",
        f"---\ndescription: {body}\n---\n",
        f"---\ndescription: d\nmetadata:\n  k: {body}\n---\n",
        raw,
    ):
        found = parse(write_raw(directory, content))
        assert isinstance(found, Skill | SkillProblem)
        if isinstance(found, Skill):
            orjson.dumps(found.metadata)


# --- roots --------------------------------------------------------------------------------


def test_skill_roots_layout_and_order(tmp_path: Path) -> None:
    codex_home, home = tmp_path / "codex", tmp_path / "home"
    repo = tmp_path / "repo"
    project = repo / "pkg" / "app"
    (repo / ".git").mkdir(parents=True)
    project.mkdir(parents=True)
    for directory in (repo, repo / "pkg", project):
        (directory / ".agents" / "skills").mkdir(parents=True)
    (repo / ".codex").mkdir()
    (project / ".codex").mkdir()
    (tmp_path / ".agents" / "skills").mkdir(parents=True)  # above the git root: not a root
    plugin = codex_home / "plugins" / "cache" / "market" / "gh" / "1.0.0"
    (plugin / ".codex-plugin").mkdir(parents=True)
    (plugin / ".codex-plugin" / "plugin.json").write_text('{"name": "github"}')
    bare = codex_home / "plugins" / "cache" / "market" / "lint" / "0.1"
    bare.mkdir(parents=True)
    (codex_home / "plugins" / "cache" / "market" / ".staging").mkdir()

    roots = skill_roots(codex_home, home, [project], admin_root=tmp_path / "etc")

    p = str(project)
    assert roots == [
        SkillRoot("repo", project / ".codex" / "skills", p),
        SkillRoot("repo", repo / ".codex" / "skills", p),
        SkillRoot("user", codex_home / "skills"),
        SkillRoot("user", home / ".agents" / "skills"),
        SkillRoot("system", codex_home / "skills" / ".system"),
        SkillRoot("admin", tmp_path / "etc"),
        SkillRoot("user", plugin / "skills", plugin="github"),
        SkillRoot("user", bare / "skills", plugin="lint"),
        SkillRoot("repo", repo / ".agents" / "skills", p),
        SkillRoot("repo", repo / "pkg" / ".agents" / "skills", p),
        SkillRoot("repo", project / ".agents" / "skills", p),
    ]


def test_without_git_the_project_dir_is_the_only_repo_dir(tmp_path: Path) -> None:
    project = tmp_path / "a" / "b"
    (project / ".agents" / "skills").mkdir(parents=True)
    (tmp_path / "a" / ".agents" / "skills").mkdir(parents=True)
    roots = skill_roots(tmp_path / "codex", tmp_path / "home", [project], tmp_path / "etc")
    repo = [r.path for r in roots if r.scope == "repo"]
    assert repo == [project / ".agents" / "skills"]


def test_git_file_marks_a_root_too(tmp_path: Path) -> None:
    (tmp_path / "wt").mkdir()
    (tmp_path / "wt" / ".git").write_text("gitdir: elsewhere\n")
    (tmp_path / "wt" / ".agents" / "skills").mkdir(parents=True)
    (tmp_path / "wt" / "sub").mkdir()
    roots = skill_roots(tmp_path / "c", tmp_path / "h", [tmp_path / "wt" / "sub"], tmp_path / "e")
    assert (
        SkillRoot("repo", tmp_path / "wt" / ".agents" / "skills", str(tmp_path / "wt" / "sub"))
        in roots
    )


def test_codex_home_is_not_a_project_layer_and_roots_are_deduped(tmp_path: Path) -> None:
    home = tmp_path / "home"
    codex_home = home / ".codex"
    (codex_home / "skills").mkdir(parents=True)
    (home / ".agents" / "skills").mkdir(parents=True)
    roots = skill_roots(codex_home, home, [home, home], tmp_path / "etc")
    # ~/.codex is CODEX_HOME, and ~/.agents/skills is already a user root: no repo roots.
    assert [r.scope for r in roots] == ["user", "user", "system", "admin"]


# --- discovery ----------------------------------------------------------------------------


def test_bfs_depth_limit(tmp_path: Path) -> None:
    root = tmp_path / "skills"
    write_skill(root / "1" / "2" / "3" / "4" / "5" / "6", name="deep-ok")
    write_skill(root / "1" / "2" / "3" / "4" / "5" / "6" / "7", name="too-deep")
    write_skill(root, name="at-root")
    skills, problems = discover_skills([SkillRoot("user", root)])
    assert names(skills) == ["at-root", "deep-ok"]
    assert problems == []


def test_directory_limit_truncates_and_says_so(tmp_path: Path) -> None:
    root = tmp_path / "skills"
    for i in range(MAX_DIRS_PER_ROOT + 5):
        (root / f"d{i:05d}").mkdir(parents=True)
    write_skill(root / "d00000", name="early")
    write_skill(root / f"d{MAX_DIRS_PER_ROOT + 4:05d}", name="late")
    skills, problems = discover_skills([SkillRoot("user", root)])
    assert names(skills) == ["early"]
    assert problems == [
        SkillProblem(str(root), "user", "skills scan truncated after 2000 directories")
    ]


def test_dot_names_are_skipped_but_system_root_is_its_own_root(tmp_path: Path) -> None:
    user = tmp_path / "codex" / "skills"
    write_skill(user / "visible", name="visible")
    write_skill(user / ".hidden", name="hidden")
    write_skill(user / ".system" / "skill-creator", name="skill-creator")
    write_skill(user / ".system" / ".cache" / "x", name="hidden-in-system")
    skills, _ = discover_skills([SkillRoot("user", user), SkillRoot("system", user / ".system")])
    assert [(s.scope, s.name) for s in skills] == [("user", "visible"), ("system", "skill-creator")]


def test_skill_file_name_must_match_exactly(tmp_path: Path) -> None:
    root = tmp_path / "skills"
    write_skill(root / "a", name="a").rename(root / "a" / "skill.md")
    write_skill(root / "b", name="b").rename(root / "b" / "SKILL.md.bak")
    assert discover_skills([SkillRoot("user", root)]) == ([], [])


def test_symlinked_dirs_are_followed_except_in_system_scope(tmp_path: Path) -> None:
    target = tmp_path / "elsewhere"
    write_skill(target / "linked", name="linked")
    for scope in ("user", "system"):
        root = tmp_path / scope
        root.mkdir()
        (root / "link").symlink_to(target, target_is_directory=True)
    skills, _ = discover_skills([SkillRoot("user", tmp_path / "user")])
    assert names(skills) == ["linked"]
    assert skills[0].path == str((target / "linked" / "SKILL.md").resolve())
    assert discover_skills([SkillRoot("system", tmp_path / "system")]) == ([], [])


def test_symlinked_root_is_resolved(tmp_path: Path) -> None:
    write_skill(tmp_path / "real" / "s", name="s")
    (tmp_path / "root").symlink_to(tmp_path / "real", target_is_directory=True)
    skills, _ = discover_skills([SkillRoot("system", tmp_path / "root")])
    assert names(skills) == ["s"]


def test_symlink_loops_terminate(tmp_path: Path) -> None:
    root = tmp_path / "skills"
    write_skill(root / "a" / "b", name="inside")
    (root / "a" / "b" / "up").symlink_to(root, target_is_directory=True)
    (root / "a" / "self").symlink_to(root / "a", target_is_directory=True)
    (root / "knot").symlink_to(root / "knot")  # ELOOP: neither a dir nor a file
    skills, problems = discover_skills([SkillRoot("user", root)])
    assert names(skills) == ["inside"]
    assert problems == []


def test_dedupe_through_symlink_keeps_first_root(tmp_path: Path) -> None:
    shared = write_skill(tmp_path / "repo" / ".agents" / "skills" / "shared", name="shared")
    user = tmp_path / "user"
    user.mkdir()
    (user / "shared").symlink_to(shared.parent, target_is_directory=True)
    repo_root = SkillRoot("repo", tmp_path / "repo" / ".agents" / "skills", str(tmp_path / "repo"))
    skills, _ = discover_skills([repo_root, SkillRoot("user", user)])
    assert [(s.scope, s.name, s.project_dir) for s in skills] == [
        ("repo", "shared", str(tmp_path / "repo"))
    ]
    skills, _ = discover_skills([SkillRoot("user", user), repo_root])
    assert [(s.scope, s.project_dir) for s in skills] == [("user", None)]


def test_symlinked_skill_file_is_reported_not_loaded(tmp_path: Path) -> None:
    # Codex follows symlinked directories only; a symlink named SKILL.md is skipped.
    real = write_skill(tmp_path / "store" / "x", name="via-file-link")
    (tmp_path / "skills" / "x").mkdir(parents=True)
    link = tmp_path / "skills" / "x" / "SKILL.md"
    link.symlink_to(real)
    skills, problems = discover_skills([SkillRoot("user", tmp_path / "skills")])
    assert skills == []
    assert problems == [SkillProblem(str(link), "user", SYMLINKED_SKILL_FILE)]
    assert discover_skills([SkillRoot("system", tmp_path / "skills")]) == ([], [])


def test_same_name_in_different_roots_both_load(tmp_path: Path) -> None:
    write_skill(tmp_path / "one" / "x", name="same")
    write_skill(tmp_path / "two" / "x", name="same")
    skills, _ = discover_skills(
        [SkillRoot("user", tmp_path / "one"), SkillRoot("user", tmp_path / "two")]
    )
    assert names(skills) == ["same", "same"]
    assert skills[0].path < skills[1].path


def test_sorted_by_scope_then_name(tmp_path: Path) -> None:
    for scope, skill_names in {
        "admin": ["a-admin"],
        "system": ["z-system", "b-system"],
        "user": ["y-user"],
        "repo": ["x-repo", "c-repo"],
    }.items():
        for name in skill_names:
            write_skill(tmp_path / scope / name, name=name)
    roots = [SkillRoot(s, tmp_path / s) for s in ("admin", "system", "user", "repo")]
    skills, _ = discover_skills(roots)
    assert names(skills) == ["c-repo", "x-repo", "y-user", "b-system", "z-system", "a-admin"]


def test_problems_collected_per_path_and_hidden_for_system(tmp_path: Path) -> None:
    for scope in ("user", "system"):
        write_skill(tmp_path / scope / "bad", name="n" * 70)
        write_raw(tmp_path / scope / "nofm", "plain text")
        write_skill(tmp_path / scope / "good", name=f"good-{scope}")
    skills, problems = discover_skills(
        [SkillRoot("system", tmp_path / "system"), SkillRoot("user", tmp_path / "user")]
    )
    assert names(skills) == ["good-user", "good-system"]
    assert [(p.scope, Path(p.path).parent.name, p.reason) for p in problems] == [
        ("user", "bad", "invalid name: exceeds maximum length of 64 characters"),
        ("user", "nofm", MISSING_FRONTMATTER),
    ]


def test_missing_and_file_roots_are_ignored(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("x")
    roots = [SkillRoot("user", tmp_path / "missing"), SkillRoot("admin", tmp_path / "file")]
    assert discover_skills(roots) == ([], [])


def test_unknown_scope_is_rejected() -> None:
    with pytest.raises(ValueError, match="unknown skill scope"):
        SkillRoot("project", Path("/x"))


def test_plugin_root_discovery_end_to_end(tmp_path: Path) -> None:
    codex_home = tmp_path / "codex"
    version = codex_home / "plugins" / "cache" / "openai" / "gh" / "abc123"
    (version / ".codex-plugin").mkdir(parents=True)
    (version / ".codex-plugin" / "plugin.json").write_text('{"name": "github"}')
    write_skill(version / "skills" / "review")
    skills, _ = discover_skills(skill_roots(codex_home, tmp_path / "h", [], tmp_path / "etc"))
    assert [(s.scope, s.name) for s in skills] == [("user", "github:review")]


def test_repo_skills_carry_their_project(tmp_path: Path) -> None:
    project = tmp_path / "proj"
    (project / ".git").mkdir(parents=True)
    write_skill(project / ".agents" / "skills" / "a", name="agents-skill")
    write_skill(project / ".codex" / "skills" / "b", name="codex-skill")
    roots = skill_roots(tmp_path / "codex", tmp_path / "home", [project], tmp_path / "etc")
    skills, _ = discover_skills(roots)
    assert [(s.scope, s.name, s.project_dir) for s in skills] == [
        ("repo", "agents-skill", str(project)),
        ("repo", "codex-skill", str(project)),
    ]


# --- unreadable things --------------------------------------------------------------------


def test_broken_and_looping_skill_file_links_are_problems(tmp_path: Path) -> None:
    (tmp_path / "skills" / "x").mkdir(parents=True)
    (tmp_path / "skills" / "x" / "SKILL.md").symlink_to(tmp_path / "gone.md")
    (tmp_path / "skills" / "y").mkdir()
    (tmp_path / "skills" / "y" / "SKILL.md").symlink_to(tmp_path / "skills" / "y" / "SKILL.md")
    skills, problems = discover_skills([SkillRoot("user", tmp_path / "skills")])
    assert skills == []
    assert [(Path(p.path).parent.name, p.reason) for p in problems] == [
        ("x", SYMLINKED_SKILL_FILE),
        ("y", SYMLINKED_SKILL_FILE),
    ]


def test_directory_named_skill_md_is_just_a_directory(tmp_path: Path) -> None:
    # Codex only parses *files* named SKILL.md; a directory of that name is scanned like any.
    write_skill(tmp_path / "skills" / "odd" / "SKILL.md" / "inner", name="inner")
    skills, problems = discover_skills([SkillRoot("user", tmp_path / "skills")])
    assert names(skills) == ["inner"]
    assert problems == []


def test_fifo_named_skill_md_is_ignored_without_blocking(tmp_path: Path) -> None:
    (tmp_path / "skills" / "pipe").mkdir(parents=True)
    os.mkfifo(tmp_path / "skills" / "pipe" / "SKILL.md")
    assert discover_skills([SkillRoot("user", tmp_path / "skills")]) == ([], [])


def test_file_vanishing_between_listing_and_reading_is_skipped(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    doomed = write_skill(tmp_path / "skills" / "doomed", name="doomed")
    write_skill(tmp_path / "skills" / "stays", name="stays")
    real_open = os.open

    def open_after_delete(path: str, flags: int, *args: int) -> int:
        if path == str(doomed):
            os.unlink(path)
        return real_open(path, flags, *args)

    monkeypatch.setattr(os, "open", open_after_delete)
    skills, problems = discover_skills([SkillRoot("user", tmp_path / "skills")])
    assert names(skills) == ["stays"]
    assert problems == []


@pytest.fixture
def shared_tmp() -> Iterator[Path]:
    """A temp dir ``nobody`` can traverse (pytest's tmp_path parents are private to root)."""
    path = Path(tempfile.mkdtemp(prefix="sessionbase-skills-"))
    path.chmod(0o755)
    try:
        yield path
    finally:
        for dirpath, dirnames, filenames in os.walk(path):
            for name in dirnames + filenames:
                full = os.path.join(dirpath, name)
                if not os.path.islink(full):
                    os.chmod(full, 0o755)
        shutil.rmtree(path)


def run_unprivileged(fn: Callable[[], T]) -> T:
    """Run ``fn`` without root's permission bypass: directly, or in a child as ``nobody``."""
    if os.geteuid() != 0:
        return fn()
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # child: never return into pytest
        try:
            os.close(read_end)
            try:
                os.setgroups([])
                os.setgid(NOBODY)
                os.setuid(NOBODY)
            except OSError as exc:
                payload = pickle.dumps(("skip", f"cannot drop privileges: {exc}"))
            else:
                try:
                    payload = pickle.dumps(("ok", fn()))
                except BaseException as exc:  # reported to the parent below
                    payload = pickle.dumps(("error", repr(exc)))
            with os.fdopen(write_end, "wb") as pipe:
                pipe.write(payload)
        finally:
            os._exit(0)
    os.close(write_end)
    with os.fdopen(read_end, "rb") as pipe:
        data = pipe.read()
    os.waitpid(pid, 0)
    status, value = pickle.loads(data)
    if status == "skip":
        pytest.skip(value)
    if status != "ok":
        pytest.fail(f"unprivileged child failed: {value}")
    result: T = value
    return result


def test_permission_denied_directory_and_file(shared_tmp: Path) -> None:
    root = shared_tmp / "skills"
    write_skill(root / "fine", name="fine")
    write_skill(root / "locked" / "inside", name="inside")
    secret = write_skill(root / "secret", name="secret")
    (root / "locked").chmod(0o000)
    secret.chmod(0o000)

    skills, problems = run_unprivileged(lambda: discover_skills([SkillRoot("user", root)]))

    assert names(skills) == ["fine"]
    assert problems == [
        SkillProblem(str(root / "locked"), "user", PERMISSION_DENIED),
        SkillProblem(str(secret), "user", "failed to read file: Permission denied (os error 13)"),
    ]


def test_permission_denied_in_system_scope_is_silent(shared_tmp: Path) -> None:
    root = shared_tmp / "system"
    write_skill(root / "locked" / "x", name="x")
    (root / "locked").chmod(0o000)
    result = run_unprivileged(lambda: discover_skills([SkillRoot("system", root)]))
    assert result == ([], [])
