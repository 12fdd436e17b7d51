"""Shared Transition texts: connections in the same state share one string, and nothing else.

A fan-out hands the same text to every connection whose Transition would be byte-identical.
These tests pin that the text always says exactly what the asking connection would have
built itself: its own query ids, versions, removals and results, whatever was asked before.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any, cast

import orjson
import pytest
from hypothesis import given, settings, strategies as st
from starlette.websockets import WebSocket

from sessionbase.live.engine import Engine, Subscription
from sessionbase.protocol.codec import decode_u64
from sessionbase.protocol.messages import Changes, Version
from sessionbase.server.sync import SyncSession, TransitionCache


@pytest.fixture(scope="module")
def engine(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Engine]:
    engine = Engine(tmp_path_factory.mktemp("sync") / "unused.db")
    yield engine
    for pool in (engine._reader, engine._writer, engine._http_readers):
        pool.shutdown(wait=True)


def decoded(text: str) -> tuple[Version, Version, tuple[int, ...], Changes]:
    """The inputs a Transition text was made from, read back from the text."""
    t: dict[str, Any] = orjson.loads(text)
    assert t["type"] == "Transition"

    def version(v: dict[str, Any]) -> Version:
        return (v["querySet"], v["identity"], decode_u64(v["ts"]))

    removed, changes = [], []
    for mod in t["modifications"]:
        if mod["type"] == "QueryRemoved":
            removed.append(mod["queryId"])
        elif mod["type"] == "QueryFailed":
            changes.append((mod["queryId"], mod["errorMessage"], "null", mod["journal"]))
        else:
            assert mod["type"] == "QueryUpdated"
            value = orjson.dumps(mod["value"]).decode()
            changes.append((mod["queryId"], None, value, mod["journal"]))
    return version(t["startVersion"]), version(t["endVersion"]), tuple(removed), tuple(changes)


RESULTS = ["null", '{"a":1}', '[{"text":"one"}]', '[{"text":"two"}]']
versions = st.tuples(st.integers(0, 2), st.integers(0, 1), st.sampled_from([0, 1, 2**62]))
change = st.tuples(
    st.integers(0, 5), st.one_of(st.none(), st.sampled_from(["boom", "bad args"])),
    st.sampled_from(RESULTS), st.one_of(st.none(), st.sampled_from(["17", '1|"x'])),
)  # fmt: skip
inputs = st.tuples(
    versions,
    versions,
    st.lists(st.integers(0, 5), max_size=2).map(tuple),
    st.lists(change, max_size=3, unique_by=lambda c: c[0]).map(tuple),
)


def normal(args: tuple[Version, Version, tuple[int, ...], Changes]) -> tuple[Any, ...]:
    """What a text can say about its inputs: a failed query carries no result."""
    start, end, removed, changes = args
    return start, end, removed, tuple((q, e, "null" if e else v, j) for q, e, v, j in changes)


@settings(max_examples=300, deadline=None)
@given(st.lists(inputs, min_size=1, max_size=12))
def test_each_connection_gets_its_own_transition(engine: Engine, asks: list[Any]) -> None:
    cache = TransitionCache(engine)
    for args in asks + asks[::-1]:
        assert decoded(cache.get(*args)) == normal(args)


def test_identical_transitions_share_one_string(engine: Engine) -> None:
    engine.version = 7
    cache = TransitionCache(engine)
    result = orjson.dumps([{"text": "x" * 100}]).decode()
    args = ((1, 0, 5), (1, 0, 7), (), ((0, None, result, None),))
    first = cache.get(*args)
    equal = orjson.dumps([{"text": "x" * 100}]).decode()  # another string, same contents
    again = cache.get((1, 0, 5), (1, 0, 7), (), ((0, None, equal, None),))
    assert again is first
    assert cache.hits == 1
    # one field apart: another text, never the shared one
    for other in [
        ((1, 0, 5), (1, 0, 7), (), ((3, None, result, None),)),  # another query id
        ((1, 0, 4), (1, 0, 7), (), ((0, None, result, None),)),  # from another version
        ((1, 0, 5), (2, 0, 7), (), ((0, None, result, None),)),  # to another query set
        ((1, 0, 5), (1, 1, 7), (), ((0, None, result, None),)),  # another identity
        ((1, 0, 5), (1, 0, 7), (2,), ((0, None, result, None),)),  # with a removal
        ((1, 0, 5), (1, 0, 7), (), ((0, "failed", result, None),)),  # failed instead
        ((1, 0, 5), (1, 0, 7), (), ((0, None, result, "41"),)),  # with a journal
    ]:
        text = cache.get(*other)
        assert text != first
        assert decoded(text) == normal(other)


def test_texts_are_dropped_when_the_engine_moves(engine: Engine) -> None:
    engine.version = 1
    cache = TransitionCache(engine)
    args: tuple[Version, Version, tuple[int, ...], Changes] = ((1, 0, 0), (1, 0, 1), (), ())
    cache.get(*args)
    assert len(cache.texts) == 1
    engine.version = 2
    cache.get((1, 0, 1), (1, 0, 2), (), ())
    assert len(cache.texts) == 1
    for i in range(TransitionCache.MAX_ENTRIES + 10):
        text = cache.get((1, 0, i), (1, 0, 2), (), ())
        assert decoded(text)[0] == (1, 0, i)
    assert len(cache.texts) == TransitionCache.MAX_ENTRIES


def test_a_connection_moves_only_once_all_its_queries_hold_at_one_version(
    tmp_path: Path,
) -> None:
    """The fair scheduler may re-run a connection's queries in different ticks: it moves
    to a version only when every one of them holds there (Convex's one-snapshot rule)."""
    engine = Engine(tmp_path / "unused.db")
    try:
        session = SyncSession(cast(WebSocket, None), engine)
        session.session_id = "s"
        fresh, waiting = (
            Subscription(("a", "{}"), None, None),
            Subscription(("b", "{}"), None, None),
        )
        for sub, value in ((fresh, '"new"'), (waiting, '"old"')):
            sub.ready, sub.value_json, sub.changed_at = True, value, 1
        engine.version = 30
        fresh.computed_at = fresh.valid_at = 30  # re-ran at 30
        waiting.computed_at, waiting.valid_at = 10, 20  # a commit at 30 made it due again
        session.queries = {0: fresh, 1: waiting}
        assert session._transition() is None
        waiting.computed_at = waiting.valid_at = 30  # its turn came
        text = session._transition()
        assert text is not None
        start, end, _, changes = decoded(text)
        assert (start[2], end[2]) == (0, 30)
        assert [(q, v) for q, _, v, _ in changes] == [(0, '"new"'), (1, '"old"')]
    finally:
        for pool in (engine._reader, engine._writer, engine._http_readers):
            pool.shutdown(wait=True)
