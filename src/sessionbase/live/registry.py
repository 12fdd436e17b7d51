"""Function registry: queries and mutations under Convex paths, with validated arguments.

Arguments are pydantic models that accept camelCase names (as Convex clients send them) and
refuse unknown fields; a bad argument becomes a FunctionError with a readable message.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, ValidationError
from pydantic.alias_generators import to_camel

from sessionbase.errors import FunctionError

Kind = Literal["query", "mutation", "action"]


class Args(BaseModel):
    """Base of every argument model: camelCase on the wire, nothing unexpected."""

    model_config = ConfigDict(
        alias_generator=to_camel, populate_by_name=True, extra="forbid", frozen=True
    )


@dataclass(frozen=True)
class Function:
    path: str
    kind: Kind
    args: type[Args]
    handler: Callable[..., Any]
    doc: str

    def parse(self, raw: Any) -> Args:
        """Validate raw arguments; raises FunctionError that says what is wrong."""
        if raw is None:
            raw = {}
        if not isinstance(raw, dict):
            raise FunctionError(f"{self.path}: arguments must be an object")
        try:
            return self.args.model_validate(raw)
        except ValidationError as exc:
            problems = "; ".join(
                f"{'.'.join(str(p) for p in err['loc']) or 'arguments'}: {err['msg']}"
                for err in exc.errors()
            )
            raise FunctionError(f"{self.path}: invalid arguments: {problems}") from None


class Registry:
    """All functions by path."""

    def __init__(self) -> None:
        self._functions: dict[str, Function] = {}

    def register(
        self, path: str, kind: Kind, args: type[Args]
    ) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
        def decorate(handler: Callable[..., Any]) -> Callable[..., Any]:
            if path in self._functions:
                raise ValueError(f"function {path} registered twice")
            doc = (handler.__doc__ or "").strip()
            self._functions[path] = Function(path, kind, args, handler, doc)
            return handler

        return decorate

    def query(
        self, path: str, args: type[Args]
    ) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
        return self.register(path, "query", args)

    def mutation(
        self, path: str, args: type[Args]
    ) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
        return self.register(path, "mutation", args)

    def get(self, path: str, kind: Kind | None = None) -> Function:
        fn = self._functions.get(path)
        if fn is None or (kind is not None and fn.kind != kind):
            what = kind or "function"
            raise FunctionError(f"no {what} named {path!r}", status=404)
        return fn

    def __iter__(self) -> Any:
        return iter(sorted(self._functions.values(), key=lambda f: f.path))
