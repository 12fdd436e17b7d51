"""Function registry: queries and mutations under Convex paths, with validated arguments.

Arguments are pydantic models that accept camelCase names (as Convex clients send them),
refuse unknown fields and validate strictly: ``limit: true`` or ``limit: "5"`` is refused,
not coerced. A bad argument becomes a FunctionError with a readable message.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, ValidationError
from pydantic.alias_generators import to_camel

from sessionbase.auth.scopes import Scope
from sessionbase.errors import FunctionError

Kind = Literal["query", "mutation", "action"]
MAX_WHOLE = 2**53
"""The largest integer any argument takes: every whole number a JavaScript client can send
exactly, and far inside SQLite's 64 bits."""


def _whole_float(value: Any) -> Any:
    """A float without a fraction is a whole number: Convex's JavaScript clients have only
    float64 numbers, and its Python client sends floats for Convex numbers."""
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


Whole = Annotated[int, BeforeValidator(_whole_float), Field(ge=-MAX_WHOLE, le=MAX_WHOLE)]
"""An integer argument: a JSON integer, ``$integer`` or a float without a fraction; never a
boolean, a string or a number beyond ``MAX_WHOLE``."""


class Args(BaseModel):
    """Base of every argument model: camelCase on the wire, nothing unexpected, no coercion."""

    model_config = ConfigDict(
        alias_generator=to_camel,
        populate_by_name=True,
        extra="forbid",
        frozen=True,
        strict=True,
    )


@dataclass(frozen=True)
class Function:
    path: str
    kind: Kind
    args: type[Args]
    handler: Callable[..., Any]
    doc: str
    scope: Scope
    """What a caller must hold to call it; the engine checks it on every call."""
    log_as: Callable[[Any], Any] | None = None
    """What the mutation log keeps of a result, when not all of it (a secret shown once)."""

    def parse(self, raw: Any) -> Args:
        """Validate raw arguments; raises FunctionError that says what is wrong."""
        if raw is None:
            raw = {}
        if not isinstance(raw, dict):
            raise FunctionError(f"{self.path}: arguments must be an object")
        try:
            return self.args.model_validate(raw)
        except ValidationError as exc:
            problems = "; ".join(_problem(err) for err in exc.errors())
            raise FunctionError(f"{self.path}: invalid arguments: {problems}") from None


def _problem(err: Any) -> str:
    where = ".".join(to_camel(p) if isinstance(p, str) else str(p) for p in err["loc"])
    given = "" if err["type"] == "missing" else f" (got {_shown(err.get('input'))})"
    return f"{where or 'arguments'}: {err['msg']}{given}"


def _shown(value: Any) -> str:
    text = repr(value) if not isinstance(value, bool) else str(value).lower()
    return text if len(text) <= 40 else text[:39] + "…"


class Registry:
    """All functions by path."""

    def __init__(self) -> None:
        self._functions: dict[str, Function] = {}

    def register(
        self,
        path: str,
        kind: Kind,
        args: type[Args],
        *,
        scope: Scope,
        log_as: Callable[[Any], Any] | None = None,
    ) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
        """Register a handler under ``path``; every function names the scope it needs."""

        def decorate(handler: Callable[..., Any]) -> Callable[..., Any]:
            if path in self._functions:
                raise ValueError(f"function {path} registered twice")
            doc = (handler.__doc__ or "").strip()
            self._functions[path] = Function(path, kind, args, handler, doc, scope, log_as)
            return handler

        return decorate

    def query(
        self, path: str, args: type[Args], *, scope: Scope
    ) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
        return self.register(path, "query", args, scope=scope)

    def mutation(
        self,
        path: str,
        args: type[Args],
        *,
        scope: Scope,
        log_as: Callable[[Any], Any] | None = None,
    ) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
        return self.register(path, "mutation", args, scope=scope, log_as=log_as)

    def get(self, path: str, kind: Kind | None = None) -> Function:
        fn = self._functions.get(path)
        if fn is None or (kind is not None and fn.kind != kind):
            what = kind or "function"
            raise FunctionError(f"no {what} named {path!r}", status=404)
        return fn

    def __iter__(self) -> Any:
        return iter(sorted(self._functions.values(), key=lambda f: f.path))
