"""Search as a live query against a real ``sessionbase serve``: results follow the files.

A subscription to ``search:messages`` for a word nobody has written yet answers ``[]``; once
Codex appends a user message containing the word, the subscription receives a result with it.
"""

from __future__ import annotations

import asyncio
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import AsyncGenerator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

import orjson
import pytest

from sessionbase.client import Client
from tests.builders.codex import Rollout
from tests.support.server import ServerProcess

pytestmark = pytest.mark.integration

ARRIVAL_TIMEOUT = 10.0  # seconds; inotify makes it milliseconds on an idle machine


@dataclass
class Live:
    server: ServerProcess
    rollout: Rollout
    path: Path

    def append_user_message(self, text: str) -> None:
        before = len(self.rollout.lines)
        turn = self.rollout.turn()
        self.rollout.user(text)
        self.rollout.end_turn(turn)
        with self.path.open("ab") as fh:
            fh.write(b"".join(line + b"\n" for line in self.rollout.lines[before:]))


@pytest.fixture
def live(tmp_path: Path, database_option: str) -> Iterator[Live]:
    """A server on each backend in turn, following a home with one thread."""
    codex_home = tmp_path / "codex-home"
    (codex_home / "sessions").mkdir(parents=True)
    r = Rollout(cwd=str(tmp_path / "work"))
    turn = r.turn()
    r.user("Set up the websocket server")
    r.assistant("The websocket server listens on port 8080.")
    r.end_turn(turn)
    path = r.write(codex_home)
    extra = ("--database", database_option) if database_option else ()
    with ServerProcess(tmp_path / "data", codex_home, extra=extra) as server:
        yield Live(server, r, path)


async def _next_matching(
    updates: AsyncGenerator[Any, None], wanted: str, deadline: float
) -> tuple[list[dict[str, Any]], float]:
    """The first result holding a hit whose snippet contains ``wanted``; with its arrival time."""
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            raise AssertionError(f"no result with {wanted!r} within {ARRIVAL_TIMEOUT} s")
        result = await asyncio.wait_for(anext(updates), left)
        if any(wanted in hit["snippet"] for hit in result):
            return result, time.monotonic()


def test_text_search_subscription_sees_a_new_message(live: Live) -> None:
    word = f"zyzzyva{uuid.uuid4().hex[:10]}"

    async def body() -> None:
        async with Client(live.server.url) as client:
            updates = cast(
                AsyncGenerator[Any, None],
                client.subscribe("search:messages", {"q": word, "mode": "text"}),
            )
            assert await asyncio.wait_for(anext(updates), ARRIVAL_TIMEOUT) == []
            # a message that merely resembles the word does not match
            live.append_user_message(f"Is {word[:-1]} a typo?")
            live.append_user_message(f"Please rename the {word} handler in src/server.py")
            appended = time.monotonic()
            result, arrived = await _next_matching(
                updates, f"<mark>{word}</mark>", appended + ARRIVAL_TIMEOUT
            )
            print(f"search result arrived {arrived - appended:.3f} s after the append")
            (hit,) = result
            assert hit["threadId"] == live.rollout.thread_id
            assert (hit["role"], hit["kind"]) == ("user", "message")
            assert (
                hit["snippet"] == f"Please rename the <mark>{word}</mark> handler in src/server.py"
            )
            # the same subscription keeps following: a second message joins the result
            live.append_user_message(f"Also log every {word} call")
            result, _ = await _next_matching(
                updates, "Also log", time.monotonic() + ARRIVAL_TIMEOUT
            )
            assert len(result) == 2
            assert {h["threadId"] for h in result} == {live.rollout.thread_id}
            await updates.aclose()

    asyncio.run(body())


def _query(url: str, path: str, args: dict[str, Any]) -> tuple[int, Any]:
    request = urllib.request.Request(
        f"{url}/v1/query/{path}",
        data=orjson.dumps(args),
        headers={"Content-Type": "application/json"},
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, orjson.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, orjson.loads(exc.read())


def test_semantic_search_sees_a_new_message_within_seconds(live: Live) -> None:
    """The server embeds in the background: a new message is found by meaning within seconds,
    and refined by the transformer right after.

    (Polled, not subscribed: a subscription can miss the new unit, see
    ``test_a_units_commit_is_announced_once_its_vectors_are_searchable`` in the unit tests.)
    """
    args = {"q": "database connection pool exhausted under load", "mode": "semantic"}
    deadline = time.monotonic() + 60  # the first embedding loads the model
    while True:
        status, body = _query(live.server.url, "search:messages", args)
        if status == 200 and body:
            break  # (vectors are stored a moment before the units they belong to)
        assert status == 200 or "no embeddings yet" in body["error"]["message"], body
        assert time.monotonic() < deadline, live.server.log()
        time.sleep(0.1)
    assert {h["idx"] for h in body} == {0, 1}
    assert all(h["threadId"] == live.rollout.thread_id for h in body)

    live.append_user_message("Postgres keeps running out of pooled connections when traffic spikes")
    appended = time.monotonic()
    while True:
        status, body = _query(live.server.url, "search:messages", args)
        assert status == 200, body
        if body and "pooled connections" in body[0]["snippet"]:
            break  # found by the static model at once, first once the transformer refined it
        assert time.monotonic() - appended < ARRIVAL_TIMEOUT, (body, live.server.log())
        time.sleep(0.1)
    print(f"semantic result found {time.monotonic() - appended:.3f} s after the append")
    assert "pooled connections" in body[0]["snippet"], body
    assert body[0]["idx"] == 2
