"""The order and the lanes of live re-runs (``live.scheduler``), on plain items with known
costs: nothing here runs a query or a clock."""

from __future__ import annotations

from dataclasses import dataclass

from sessionbase.live.scheduler import (
    BUDGET_SECONDS,
    HEAVY_SECONDS,
    SLICE_SECONDS,
    UNKNOWN_COST,
    FairQueue,
    Invalidations,
    next_batch,
    split,
)


@dataclass(eq=False)
class Item:
    name: str
    seconds: float | None
    valid_at: int = 10
    ready: bool = True
    watched_by: tuple[str, ...] = ()


def owned(owners: dict[Item, tuple[str, ...]]) -> list[Item]:
    """The items, each watched by its connections."""
    for item, watchers in owners.items():
        item.watched_by = watchers
    return list(owners)


CHEAP = SLICE_SECONDS / 10
SLOW = HEAVY_SECONDS * 5


def drain(queue: FairQueue[Item]) -> list[str]:
    """Pop and charge every affordable item (each costs what it cost last time)."""
    ran = []
    while (item := queue.pop()) is not None:
        ran.append(item.name)
        queue.charge(item.seconds if item.seconds is not None else UNKNOWN_COST)
    return ran


# ------------------------------------------------------------------ the foreground's order


def test_one_cheap_query_goes_before_a_neighbours_many() -> None:
    tails = [Item(f"tail {i}", CHEAP * 2) for i in range(100)]
    mine = Item("mine", CHEAP)
    owners = {**{t: ("greedy",) for t in tails}, mine: ("modest",)}
    assert FairQueue(owned(owners), {}).pop() is mine


def test_connections_take_turns_by_the_time_they_have_used() -> None:
    a = [Item(f"a{i}", 0.001) for i in range(3)]
    b = [Item(f"b{i}", 0.003) for i in range(3)]
    owners = {**{i: ("A",) for i in a}, **{i: ("B",) for i in b}}
    assert drain(FairQueue(owned(owners), {})) == ["a0", "b0", "a1", "a2", "b1", "b2"]


def test_within_a_connection_first_runs_then_the_longest_waiting_then_the_cheapest() -> None:
    fresh_slow = Item("fresh slow", 0.004, valid_at=20)
    fresh_fast = Item("fresh fast", 0.001, valid_at=20)
    waiting = Item("waiting", 0.009, valid_at=5)
    never_run = Item("never run", None, valid_at=0, ready=False)
    items = [fresh_slow, fresh_fast, waiting, never_run]
    queue = FairQueue(owned({i: ("one",) for i in items}), {})
    assert drain(queue) == ["never run", "waiting", "fresh fast", "fresh slow"]


def test_a_connection_stops_at_its_budget_and_the_rest_waits() -> None:
    each = BUDGET_SECONDS * 0.3
    items = [Item(f"query {i}", each) for i in range(20)]
    mine = Item("mine", CHEAP)
    owners = {**{s: ("greedy",) for s in items}, mine: ("modest",)}
    queue = FairQueue(owned(owners), {})
    ran = drain(queue)
    assert ran[0] == "mine"
    assert len(ran) - 1 == 4  # runs while under its budget: 0, 0.3, 0.6, 0.9 of it
    assert not queue.affordable
    assert len(queue.deferred) == 16
    assert queue.charged["greedy"] >= BUDGET_SECONDS
    # The budget lasts the period: the same spending runs nothing more for it, except a
    # query that never ran (new subscriptions are not held back).
    new = Item("new", None, valid_at=0, ready=False)
    again = FairQueue([*queue.deferred, *owned({new: ("greedy",)})], queue.charged)
    assert again.pop() is new
    again.charge(0.01)
    assert again.pop() is None


def test_a_shared_query_runs_on_the_account_of_its_least_busy_watcher() -> None:
    shared = Item("shared", CHEAP)
    queue = FairQueue(owned({shared: ("greedy", "modest")}), {"greedy": 0.04})
    assert queue.pop() is shared
    queue.charge(0.0005)
    assert queue.charged == {"modest": 0.0005}


def test_items_nobody_owns_are_each_their_own_account() -> None:
    items = [Item(f"lone {i}", BUDGET_SECONDS * 0.9) for i in range(4)]
    assert len(drain(FairQueue(items, {}))) == 4  # each alone stays within a budget


# ------------------------------------------------------------------ the two lanes


def test_a_connection_with_any_slow_or_new_query_runs_all_of_them_in_the_background() -> None:
    tail, search = Item("tail", CHEAP), Item("search", SLOW)
    other_tail, new = Item("other tail", CHEAP), Item("new", None, valid_at=0, ready=False)
    owners = {tail: ("app",), search: ("app",), other_tail: ("viewer",), new: ("fresh",)}
    light, heavy = split(owned(owners), {})
    assert light == [other_tail]
    assert heavy == {"app": [tail, search], "fresh": [new]}  # each in one snapshot


def test_a_query_shared_with_a_light_connection_stays_in_the_foreground() -> None:
    shared, search = Item("shared tail", CHEAP), Item("search", SLOW)
    owners = {shared: ("greedy", "modest"), search: ("greedy",)}
    light, heavy = split(owned(owners), {})
    assert light == [shared]
    assert heavy == {"greedy": [search]}


def test_the_background_serves_the_least_busy_connection_within_its_budget() -> None:
    searches = [Item(f"search {i}", BUDGET_SECONDS * 0.3) for i in range(10)]
    page = [Item("page search", SLOW)]
    batches = {"greedy": list(searches), "page": list(page)}
    spent = {"greedy": 0.02}
    owner, batch = next_batch(batches, spent, set()) or (None, [])
    assert (owner, batch) == ("page", page)  # it has used less
    spent["page"] = SLOW
    owner, batch = next_batch(batches, spent, set()) or (None, [])
    assert owner == "greedy"
    assert len(batch) == 4  # 0.02 s and three of them stay under its budget; the fourth crosses
    spent["greedy"] += sum(i.seconds or 0 for i in batch)
    assert next_batch(batches, spent, set()) is None  # the rest waits for a new budget
    assert len(batches["greedy"]) == 6


def test_first_runs_go_past_a_budget_one_batch_of_one_at_a_time() -> None:
    new = [Item(f"new {i}", None, valid_at=0, ready=False) for i in range(3)]
    batches = {"fresh": list(new)}
    spent = {"fresh": BUDGET_SECONDS * 2}
    assert next_batch(batches, spent, set()) == ("fresh", [new[0]])
    assert next_batch(batches, spent, set()) == ("fresh", [new[1]])


def test_the_background_skips_what_it_is_running_already() -> None:
    a, b = Item("a", SLOW), Item("b", SLOW)
    batches = {"one": [a, b]}
    assert next_batch(batches, {}, {a}) == ("one", [b])


# ------------------------------------------------------------------ late results


def test_a_late_result_learns_what_was_written_after_its_snapshot() -> None:
    seen = Invalidations(kept=3)
    seen.record(10, 20, frozenset({"messages:t1"}))
    seen.record(20, 30, frozenset({"threads:t2"}))
    assert seen.since(30, 30) == set()
    assert seen.since(20, 30) == {"threads:t2"}
    assert seen.since(10, 30) == {"messages:t1", "threads:t2"}
    assert seen.since(5, 30) is None  # older than what is remembered: anything
    seen.record(30, 40, None)  # the commit log was cut: anything
    assert seen.since(30, 40) is None
