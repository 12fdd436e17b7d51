"""Shared Transition texts: connections in the same state share one string, and nothing else.

A fan-out hands the same text to every connection whose Transition would be byte-identical.
These tests pin that the text always says exactly what the asking connection would have
built itself: its own query ids, versions, removals and results, whatever was asked before.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import orjson
import pytest
from hypothesis import given, settings, strategies as st

from sessionbase.live.engine import Engine
from sessionbase.protocol.codec import decode_u64
from sessionbase.protocol.messages import Changes, Version
from sessionbase.server.sync import TransitionCache


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
