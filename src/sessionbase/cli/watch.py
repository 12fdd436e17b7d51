"""``sessionbase watch``: a live query's results, printed as they change."""

from __future__ import annotations

import asyncio
from typing import Any

import click
import orjson

from sessionbase.cli._group import cli
from sessionbase.cli._output import emit_json, fail
from sessionbase.errors import SessionbaseError


def _parse_args(pairs: tuple[str, ...]) -> dict[str, Any]:
    """``'{"limit": 5}'`` or ``limit=5 source=cli``: values are JSON when they parse as JSON."""
    if len(pairs) == 1 and pairs[0].lstrip().startswith("{"):
        try:
            value = orjson.loads(pairs[0])
        except orjson.JSONDecodeError as exc:
            raise click.BadParameter(f"not valid JSON: {exc}") from exc
        if not isinstance(value, dict):
            raise click.BadParameter("arguments must be a JSON object")
        return value
    args: dict[str, Any] = {}
    for pair in pairs:
        key, sep, raw = pair.partition("=")
        if not sep or not key:
            raise click.BadParameter(f"expected key=value, got {pair!r}")
        try:
            args[key] = orjson.loads(raw)
        except orjson.JSONDecodeError:
            args[key] = raw
    return args


@cli.command()
@click.argument("function")
@click.argument("args", nargs=-1)
@click.option("--url", default="http://127.0.0.1:7788", show_default=True,
              help="The running `sessionbase serve`.")  # fmt: skip
@click.option("--once", is_flag=True, help="Print the current result and exit.")
def watch(function: str, args: tuple[str, ...], url: str, once: bool) -> None:
    """Print a query's result, then every new result as it changes.

    \b
    Examples:
      sessionbase watch threads:recent limit=5
      sessionbase watch messages:tail '{"threadId": "019e…", "n": 3}'
    """
    from sessionbase.client import Client

    parsed = _parse_args(args)

    async def run() -> None:
        async with Client(url) as client:
            async for value in client.subscribe(function, parsed):
                emit_json(value)
                if once:
                    return

    try:
        asyncio.run(run())
    except SessionbaseError as exc:
        raise fail(exc) from exc
    except OSError as exc:
        raise click.ClickException(f"cannot reach {url}: {exc}") from exc
    except KeyboardInterrupt:
        pass
