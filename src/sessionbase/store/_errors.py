"""The store boundary: where a database driver's errors become ``StoreError``.

Every backend applies ``translate_errors`` to its class once, naming its driver's base error
and a function that words it; every public method (inherited ones included), the
constructor, and the context managers and generators the methods return then raise
``StoreError`` for what the driver raises, chained to it. Callers above the store see one
error type whatever the backend, so the server can answer 503 and the CLI one line, never a
driver traceback.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from types import FunctionType, TracebackType
from typing import Any, TypeVar

from sessionbase.errors import StoreError

C = TypeVar("C", bound=type)
Translate = Callable[[Any, BaseException], StoreError]
"""(the store instance, the driver's error) → the StoreError to raise instead."""


def translate_errors(driver_error: type[BaseException], translate: Translate) -> Callable[[C], C]:
    """A class decorator: ``driver_error`` raised by any public method of the class, by its
    ``__init__``, inside a context manager one of them returns, or while iterating a generator
    one of them returns, becomes ``translate(instance, error)`` raised from it."""

    def decorate(cls: C) -> C:
        for name in dir(cls):
            if name.startswith("_") and name != "__init__":
                continue
            method = inspect.getattr_static(cls, name)
            if isinstance(method, FunctionType):
                setattr(cls, name, _translating(method, driver_error, translate))
        return cls

    return decorate


def _translating(
    method: Callable[..., Any], driver_error: type[BaseException], translate: Translate
) -> Callable[..., Any]:
    @functools.wraps(method)
    def call(self: Any, *args: Any, **kwargs: Any) -> Any:
        try:
            result = method(self, *args, **kwargs)
        except driver_error as exc:
            raise translate(self, exc) from exc
        if isinstance(result, AbstractContextManager) and result is not self:
            return _TranslatingContext(result, self, driver_error, translate)
        if inspect.isgenerator(result):
            return _translating_iteration(result, self, driver_error, translate)
        return result

    return call


def _translating_iteration(
    inner: Iterator[Any], store: Any, driver_error: type[BaseException], translate: Translate
) -> Iterator[Any]:
    """A generator method's items, its driver errors raised as StoreError while iterating."""
    try:
        yield from inner
    except driver_error as exc:
        raise translate(store, exc) from exc


class _TranslatingContext(AbstractContextManager[Any]):
    """A context manager whose enter and exit raise StoreError for the driver's errors."""

    def __init__(
        self,
        inner: AbstractContextManager[Any],
        store: Any,
        driver_error: type[BaseException],
        translate: Translate,
    ) -> None:
        self._inner = inner
        self._store = store
        self._driver_error = driver_error
        self._translate = translate

    def __enter__(self) -> Any:
        try:
            return self._inner.__enter__()
        except self._driver_error as exc:
            raise self._translate(self._store, exc) from exc

    def __exit__(
        self,
        kind: type[BaseException] | None,
        value: BaseException | None,
        traceback: TracebackType | None,
    ) -> bool | None:
        try:
            return self._inner.__exit__(kind, value, traceback)
        except self._driver_error as exc:
            raise self._translate(self._store, exc) from exc
