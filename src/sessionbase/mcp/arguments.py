"""What each MCP tool takes: pydantic models whose fields carry the descriptions a model reads,
turned into plain JSON schemas, and validated strictly (``"5"`` is not 5; ``5.0`` is)."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, ValidationError

from sessionbase.errors import FunctionError
from sessionbase.mcp import render
from sessionbase.store.rows import MessageKind


def _whole_float(value: Any) -> Any:
    """``10.0`` is 10: some clients send every JSON number as a float."""
    return int(value) if isinstance(value, float) and value.is_integer() else value


Whole = Annotated[int, BeforeValidator(_whole_float)]


class ToolInputError(FunctionError):
    """Arguments a tool refuses; the message names each problem."""


class ToolArgs(BaseModel):
    """Base of every tool's arguments: nothing unexpected, nothing coerced."""

    model_config = ConfigDict(extra="forbid", frozen=True, strict=True, populate_by_name=True)


def _cap(default: int, most: int) -> Any:
    return Field(
        default=default,
        ge=2000,
        le=most,
        description="Most characters this result may take (it says what was left out and how"
        f" to get it). Default {default}.",
    )


Thread = Field(
    min_length=1,
    max_length=200,
    description="The thread's id, or at least its first 4 characters (search_sessions and"
    " recent_threads give ids).",
)
Project = Field(
    default=None,
    min_length=1,
    max_length=4096,
    description="Only this project: its name, id or working directory (list_projects shows them).",
)


class SearchArgs(ToolArgs):
    query: str = Field(
        min_length=1,
        max_length=2000,
        description="Words, identifiers, file paths, an error message, or a question in plain"
        ' words. "Quotes" make an exact phrase.',
    )
    mode: Literal["hybrid", "text", "semantic"] = Field(
        default="hybrid",
        description="hybrid (default): exact words and meaning together. text: exact words only"
        " (best for identifiers, paths, error messages). semantic: meaning only.",
    )
    project: str | None = Project
    since: str | None = Field(
        default=None,
        max_length=40,
        description="Only messages from this moment on: a date (2026-05-01), a UTC time"
        " (2026-05-01T10:00) or an age (7d, 12h, 30m).",
    )
    kind: MessageKind | None = Field(
        default=None,
        description="Only items of this kind: message (what the user or assistant said),"
        " reason (reasoning summaries), cmd (shell commands), patch (file edits), tool (other"
        " tool calls), search (web searches), plan, error.",
    )
    limit: Whole = Field(default=10, ge=1, le=50, description="Most hits to return (1-50).")
    max_chars: Whole = _cap(8000, 50_000)


class ReadArgs(ToolArgs):
    thread: str = Thread
    start: Whole = Field(
        default=0,
        ge=0,
        alias="from",
        description="Position (#) of the first item to show: 0 for the start, a search hit's"
        " position to read around it, or the `from` the previous page ended with.",
    )
    limit: Whole = Field(default=50, ge=1, le=500, description="Most items to show (1-500).")
    kinds: list[MessageKind] | None = Field(
        default=None,
        min_length=1,
        description='Only items of these kinds, e.g. ["message"] for the conversation alone.'
        " Kinds: message, reason, cmd, patch, tool, search, plan, error. Default: all.",
    )
    tool_output_chars: Whole = Field(
        default=300,
        ge=0,
        le=20_000,
        description="How much of each command's or tool's output to show: its last characters,"
        " where errors are (a patch shows its first). 0 folds outputs away. Default 300.",
    )
    max_chars: Whole = _cap(16_000, 100_000)


class RecentArgs(ToolArgs):
    project: str | None = Project
    limit: Whole = Field(default=20, ge=1, le=100, description="Most threads to list (1-100).")
    max_chars: Whole = _cap(8000, 50_000)


class SimilarArgs(ToolArgs):
    thread: str = Thread
    limit: Whole = Field(default=10, ge=1, le=30, description="Most threads to list (1-30).")
    max_chars: Whole = _cap(8000, 50_000)


class ProjectsArgs(ToolArgs):
    max_chars: Whole = _cap(8000, 50_000)


def input_schema(model: type[ToolArgs]) -> dict[str, Any]:
    """The arguments' JSON schema, plain enough for every client: no titles, and an optional
    argument shown with its own type rather than ``anyOf [type, null]``."""
    schema: dict[str, Any] = _plain(model.model_json_schema(by_alias=True))
    schema["additionalProperties"] = False
    return schema


def parse(model: type[ToolArgs], tool: str, raw: dict[str, Any] | None) -> Any:
    """Validated arguments; ToolInputError naming every problem otherwise."""
    try:
        return model.model_validate(raw or {})
    except ValidationError as exc:
        problems = "; ".join(_problem(err) for err in exc.errors())
        raise ToolInputError(f"invalid arguments for {tool}: {problems}") from None


def _plain(node: Any) -> Any:
    if isinstance(node, list):
        return [_plain(item) for item in node]
    if not isinstance(node, dict):
        return node
    options = node.get("anyOf")
    if isinstance(options, list) and {"type": "null"} in options and len(options) == 2:
        (kept,) = (o for o in options if o != {"type": "null"})
        node = {**{k: v for k, v in node.items() if k != "anyOf"}, **kept}
        if node.get("default", ...) is None:
            del node["default"]
    return {k: _plain(v) for k, v in node.items() if k != "title"}


def _problem(err: Any) -> str:
    where = ".".join(str(part) for part in err["loc"]) or "arguments"
    given = "" if err["type"] == "missing" else f" (got {render.one_line(repr(err['input']), 40)})"
    return f"{where}: {err['msg']}{given}"
