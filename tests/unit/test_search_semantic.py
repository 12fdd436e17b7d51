"""Semantic and hybrid search after ``backfill`` (which embeds), and the ANN index's recall.

The corpus is backfilled once per module and backend with the bundled model. Every data dir
(or PostgreSQL database) is configured with one shared ``LocalEmbedder`` (``semantic.configure``),
so the model loads once per module however many a test makes. Everything but the vector files of
a SQLite data dir runs on both backends.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import orjson
import pytest

from sessionbase import config
from sessionbase.config import Settings
from sessionbase.search import hybrid, semantic
from sessionbase.search.ann import AnnIndex
from sessionbase.search.embedder import LocalEmbedder, Vectors
from sessionbase.search.fulltext import Hit
from sessionbase.search.semantic import SemanticIndex
from sessionbase.search.transformer import TransformerEmbedder
from sessionbase.search.units import build_units
from sessionbase.store import Store, open_store, open_vectors
from sessionbase.store.base import SearchFilter
from sessionbase.store.vectors import VectorTable
from tests.builders.codex import DEFAULT_START, Rollout
from tests.conftest import Cli
from tests.unit.test_functions import Api

DAY = timedelta(days=1)


@pytest.fixture(scope="module")
def embedder() -> LocalEmbedder:
    return LocalEmbedder()


@pytest.fixture(scope="module")
def scrubbed_environ() -> Iterator[None]:
    with pytest.MonkeyPatch.context() as mp:
        for name in list(os.environ):
            if name.startswith("SESSIONBASE_") or name == "CODEX_HOME":
                mp.delenv(name)
        yield


def make_settings(root: Path, embedder: LocalEmbedder, database: str = "") -> Settings:
    """A data dir at ``root`` over a Codex home of its own, on ``database`` ("": the data
    dir's SQLite file)."""
    codex_home = root / "codex-home"
    (codex_home / "sessions").mkdir(parents=True, exist_ok=True)
    settings = config.load(
        environ={},
        overrides={
            "data_dir": root / "data",
            "codex_homes": (codex_home,),
            "home": root / "user-home",
            "machine": "test-machine",
            "database": database,
        },
    )
    semantic.configure(location(settings), embedder)
    return settings


def location(settings: Settings) -> str:
    """Where the vectors of ``settings``'s database live (its ``vector_location``)."""
    return settings.database or str(settings.data_dir)


def write_topics(codex_home: Path) -> dict[str, Rollout]:
    ws = Rollout(cwd="/w/chat")
    turn = ws.turn()
    ws.user("The websocket reconnect test is flaky on CI, it times out about one run in five")
    ws.reasoning("The reconnect loop sleeps a fixed 100 ms; the test races it")
    ws.shell("pytest tests/test_reconnect.py -x", "FAILED test_reconnect - TimeoutError", 1)
    ws.assistant("Added exponential backoff to the reconnect loop and gave the test a fake clock, "
                 "so it no longer races the timer.")  # fmt: skip
    ws.end_turn(turn)

    pg = Rollout(start=DEFAULT_START + DAY, cwd="/w/shop")
    turn = pg.turn()
    pg.user("Adding a NOT NULL column to the orders table fails on the production Postgres "
            "database with a lock timeout")  # fmt: skip
    pg.shell("alembic upgrade head", "sqlalchemy.exc.OperationalError: lock timeout", 1)
    pg.assistant("Split the migration in three: add the column as nullable, backfill it in "
                 "batches of 10k rows, then add the NOT NULL constraint.")  # fmt: skip
    pg.end_turn(turn)

    docker = Rollout(start=DEFAULT_START + 2 * DAY, cwd="/w/shop", source="vscode")
    turn = docker.turn()
    docker.user("Our Docker image is 2 GB, please make it much smaller")
    docker.shell("docker build -t shop .", "Successfully built 2.1GB", 0)
    docker.assistant("Switched to a multi-stage build on python:3.12-slim and left the compilers "
                     "out of the final stage: the image is now 180 MB.")  # fmt: skip
    docker.end_turn(turn)

    react = Rollout(start=DEFAULT_START + 3 * DAY, cwd="/w/web")
    turn = react.turn()
    react.user("The profile component re-renders forever since I added a useEffect hook")
    react.assistant("The effect set state that was in its own dependency array; I memoized the "
                    "fetch callback with useCallback so the effect runs once.")  # fmt: skip
    react.end_turn(turn)

    shape = Rollout(start=DEFAULT_START + 4 * DAY, cwd="/w/web")
    turn = shape.turn()
    shape.user("First question about the lint setup")  # 0
    shape.reasoning("Look at the config")  # 1
    shape.shell("npx eslint .", "3 problems", 1)  # 2
    shape.apply_patch("eslint.config.js")  # 3
    shape.assistant("Fixed the three lint problems.")  # 4
    shape.end_turn(turn)
    turn = shape.turn()
    shape.user("Second question: and prettier?")  # 5
    shape.assistant("Checking prettier.", phase="commentary")  # 6
    shape.assistant("Prettier is configured too.")  # 7
    shape.end_turn(turn)
    turn = shape.turn()
    shape.user("Third question, left unanswered")  # 8
    shape.end_turn(turn)

    built = {"ws": ws, "pg": pg, "docker": docker, "react": react, "shape": shape}
    for rollout in built.values():
        rollout.write(codex_home)
    return built


@dataclass
class Corpus:
    settings: Settings
    cli: Cli
    rollouts: dict[str, Rollout]
    first_backfill: dict[str, Any]

    def tid(self, name: str) -> str:
        return self.rollouts[name].thread_id

    def store(self) -> Store:
        return open_store(self.settings.database_url, readonly=True)


@pytest.fixture(
    scope="module", params=["sqlite", pytest.param("postgres", marks=pytest.mark.integration)]
)
def corpus(
    tmp_path_factory: pytest.TempPathFactory,
    embedder: LocalEmbedder,
    scrubbed_environ: None,
    request: pytest.FixtureRequest,
) -> Corpus:
    """The topics backfilled on each backend in turn (PostgreSQL in a database of its own)."""
    database = ""
    if request.param == "postgres":
        database = request.getfixturevalue("pg_databases").create()
    settings = make_settings(tmp_path_factory.mktemp("semantic"), embedder, database)
    rollouts = write_topics(settings.codex_homes[0])
    cli = Cli(settings)
    report = orjson.loads(cli("backfill", "--json"))
    assert report["errors"] == []
    return Corpus(settings, cli, rollouts, report)


@pytest.fixture(scope="module")
def api(corpus: Corpus) -> Iterator[Api]:
    client = Api(corpus.settings)
    try:
        yield client
    finally:
        client.close()


def cli_search(corpus: Corpus, query: str, mode: str, *options: str) -> list[dict[str, Any]]:
    output = corpus.cli("search", "--mode", mode, "--json", *options, "--", query)
    hits: list[dict[str, Any]] = orjson.loads(output)
    return hits


def all_units(store: Store) -> list[dict[str, Any]]:
    return [u for tid in store.thread_ids() for u in store.units_of(tid)]


def vector_count(settings: Settings) -> int:
    store = open_vectors(location(settings), LocalEmbedder.name)
    try:
        return store.count()
    finally:
        store.close()


# ------------------------------------------------------------------ units and embedding


def test_backfill_embeds_every_unit_once(corpus: Corpus) -> None:
    store = corpus.store()
    try:
        units = all_units(store)
    finally:
        store.close()
    distinct = {u["content_hash"] for u in units}
    assert len(units) == 2 * 4 + 5  # four one-turn topics, and the shaped thread's five
    assert corpus.first_backfill["units_embedded"] == len(distinct)
    assert corpus.first_backfill["units_refined"] == len(distinct)  # a small history: all
    assert corpus.first_backfill["units_to_refine"] == 0
    status = orjson.loads(corpus.cli("status", "--json"))
    assert status["refining_model"] == TransformerEmbedder().name
    assert status["units_refined"] == status["units"] == len(units)
    assert vector_count(corpus.settings) == len(distinct)
    if corpus.settings.database:
        return  # the vectors are in the database: no files
    data_dir = corpus.settings.data_dir
    assert sorted(data_dir.glob("vectors-*.db")) == [
        data_dir / f"vectors-{TransformerEmbedder().name}.db",
        data_dir / f"vectors-{LocalEmbedder().name}.db",
    ]


def test_each_model_keeps_its_own_vectors_and_a_new_one_embeds_anew(
    tmp_path: Path, embedder: LocalEmbedder, scrubbed_environ: None
) -> None:  # the vector files of a data dir: SQLite's
    """Vectors of two models never meet: each has its own store (and ANN file), of its own
    dimension; changing the refining model (here its token window) embeds every unit again
    into a store of its own and leaves the others as they were; a hit says which model
    scored it."""
    settings = make_settings(tmp_path, embedder)
    write_topics(settings.codex_homes[0])
    orjson.loads(Cli(settings)("backfill", "--json"))
    data_dir = settings.data_dir
    static, refiner = LocalEmbedder(), TransformerEmbedder()
    store = open_store(settings.database_path)
    try:
        hashes = set(store.unit_hashes())
        before = {p.name: p.read_bytes() for p in data_dir.glob("vectors-*.db")}
        for model, dim in ((static.name, 256), (refiner.name, 384)):
            vectors = open_vectors(str(data_dir), model)
            try:
                assert vectors.count() == len(hashes)
                assert vectors.missing(hashes) == []
                assert {m.shape[1] for _, m in vectors.batches()} == {dim}
            finally:
                vectors.close()
        hits = semantic.search(store, "shrink my container image", SearchFilter(), 5)
        assert {h.model for h in hits} == {refiner.name}  # every unit is refined
        thread = hits[0].thread_id  # and similar threads and messages are found with it too
        assert {h.model for h in semantic.similar_threads(store, thread, 3)} == {refiner.name}
        alike = semantic.similar_messages(store, thread, hits[0].idx, 3)
        assert alike
        assert {h.model for h in alike} == {refiner.name}
        assert {round(h.score, 6) for h in hits} <= {
            round(s, 6)
            for _, s in semantic.index_for(data_dir).refined.nearest(  # type: ignore[union-attr]
                refiner.embed(["shrink my container image"]), 20
            )
        }

        shorter = TransformerEmbedder(max_tokens=64)
        index = semantic.configure(data_dir, static, shorter)
        assert index.catch_up(store) == 0  # the static model has them all
        assert index.refine(store) == (len(hashes), 0)  # the new window: every unit anew
        assert (data_dir / f"vectors-{shorter.name}.db").exists()
        index.save()
        assert {p.name: p.read_bytes() for p in data_dir.glob("vectors-*.db")} | before == {
            p.name: p.read_bytes() for p in data_dir.glob("vectors-*.db")
        }  # the stores there before are byte for byte the same
        assert {h.model for h in semantic.search(store, "docker", SearchFilter(), 5)} == {
            shorter.name
        }

        # Before the refining model has embedded a unit, the static model ranks it; the two
        # models' hits are merged, each with its own similarity.
        unrefined = TransformerEmbedder(max_tokens=32)
        index = semantic.configure(data_dir, static, unrefined)
        assert index.refine(store, limit=4) == (4, len(hashes) - 4)
        mixed = semantic.search(store, "shrink my container image", SearchFilter(), 20)
        assert {h.model for h in mixed} == {static.name, unrefined.name}
    finally:
        store.close()
        semantic.configure(data_dir, static, refiner)


def test_the_bundled_model_embeds_a_texts_first_characters_and_names_its_cut(
    tmp_path: Path, embedder: LocalEmbedder
) -> None:
    head = "the deploy fails because the registry rejects the image tag " * 20
    assert len(head) > embedder.max_chars
    long = head + "while the unrelated tail talks about fonts and translations " * 20
    np.testing.assert_allclose(
        embedder.embed([long]), embedder.embed([head[: embedder.max_chars]]), atol=1e-6
    )
    # Vectors of another cut are another vector space: their own store, re-embedded.
    other = LocalEmbedder(max_chars=embedder.max_chars // 2)
    assert other.name != embedder.name
    assert embedder.name.endswith(f"-c{embedder.max_chars}")
    first, second = SemanticIndex(tmp_path, embedder), SemanticIndex(tmp_path, other)
    try:
        assert first.vectors.path != second.vectors.path
        assert first.version_key != second.version_key
    finally:
        first.vectors.close()
        second.vectors.close()


def test_units_are_user_messages_and_assistant_runs(corpus: Corpus) -> None:
    store = corpus.store()
    try:
        messages = store.messages(corpus.tid("shape"))
        units = store.units_of(corpus.tid("shape"))
    finally:
        store.close()
    assert [(m["idx"], m["role"], m["kind"]) for m in messages] == [
        (0, "user", "message"), (1, "assistant", "reason"), (2, "assistant", "cmd"),
        (3, "assistant", "patch"), (4, "assistant", "message"), (5, "user", "message"),
        (6, "assistant", "message"), (7, "assistant", "message"), (8, "user", "message"),
    ]  # fmt: skip
    assert [(u["start_idx"], u["end_idx"], u["role"]) for u in units] == [
        (0, 0, "user"), (1, 4, "assistant"), (5, 5, "user"), (6, 7, "assistant"), (8, 8, "user"),
    ]  # fmt: skip
    assert units[0]["text"] == "First question about the lint setup"
    assert units[1]["text"] == (
        "Look at the config\n$ npx eslint . (exit 1)\nedited eslint.config.js\n"
        "Fixed the three lint problems."
    )
    assert units[3]["text"] == "Checking prettier.\nPrettier is configured too."
    # the stored units are exactly what build_units derives, hashes included
    derived = build_units(corpus.tid("shape"), messages)
    assert [(u.start_idx, u.end_idx, u.role, u.text, u.content_hash) for u in derived] == [
        (u["start_idx"], u["end_idx"], u["role"], u["text"], u["content_hash"]) for u in units
    ]


def test_backfill_again_embeds_nothing(corpus: Corpus) -> None:
    before = vector_count(corpus.settings)
    report = orjson.loads(corpus.cli("backfill", "--json"))
    assert report["units_embedded"] == 0
    assert vector_count(corpus.settings) == before


# ------------------------------------------------------------------ finding by meaning


@pytest.mark.parametrize(
    ("query", "topic"),
    [
        ("shrink the size of my container image", "docker"),
        ("schema change blocks on the live database", "pg"),
        ("socket test fails intermittently in continuous integration", "ws"),
        ("endless rendering loop caused by a hook", "react"),
    ],
)
def test_semantic_search_finds_by_meaning(corpus: Corpus, query: str, topic: str) -> None:
    assert cli_search(corpus, query, "text") == []  # no thread has all these words
    hits = cli_search(corpus, query, "semantic")
    assert hits
    assert hits[0]["thread_id"] == corpus.tid(topic), [h["snippet"][:40] for h in hits]
    for hit in hits:
        assert {"thread_id", "idx", "score", "snippet", "role", "kind"} <= set(hit)
        assert -1.0 <= hit["score"] <= 1.0
    scores = [h["score"] for h in hits]
    assert scores == sorted(scores, reverse=True)
    fused = cli_search(corpus, query, "hybrid")
    assert fused
    assert fused[0]["thread_id"] == corpus.tid(topic)


def _hit(thread: str, idx: int, score: float, end: int | None = None) -> Hit:
    return Hit(thread, idx, score, "", "assistant", "message", None, None, None, None, end)


def _keys(hits: list[Hit]) -> list[tuple[str, int]]:
    return [(h.thread_id, h.idx) for h in hits]


def test_fusion_ranks_full_text_with_semantic_hits_over_the_floor() -> None:
    k = hybrid.RRF_K
    text = [_hit("a", 7, 9.0), _hit("a", 3, 8.0), _hit("b", 1, 7.0)]
    meaning = [
        _hit("c", 0, 0.9, 4),  # strong, found by meaning alone
        _hit("a", 2, 0.6, 8),  # strong, the run holding a:7 and a:3
        _hit("d", 0, 0.3, 0),  # weak
        _hit("b", 0, 0.2, 5),  # weak, but full-text found b:1 in its run
        _hit("e", 5, 0.1, 9),  # weak
    ]
    fused = hybrid.fuse(text, meaning, 0.5, 10)
    # a:7 gains the run's rank (agreement is rewarded), a:3 stays listed on its own, the run
    # is not listed again, and the weak hits follow everything else, b's run left out.
    assert _keys(fused) == [("a", 7), ("c", 0), ("a", 3), ("b", 1), ("d", 0), ("e", 5)]
    assert [h.score for h in fused[:4]] == pytest.approx(
        [1 / (k + 1) + 1 / (k + 2), 1 / (k + 1), 1 / (k + 2), 1 / (k + 3)]
    )
    assert [h.score for h in fused] == sorted((h.score for h in fused), reverse=True)
    assert fused[0].snippet == text[0].snippet  # full-text's hit, with its marks
    assert _keys(hybrid.fuse(text, meaning, 0.5, 3)) == _keys(fused[:3])


def test_fusion_breaks_a_tie_for_the_full_text_hit() -> None:
    text = [_hit("b", 1, 9.0)]
    meaning = [_hit("a", 0, 0.9, 0)]  # as strong by rank, and first by key
    assert _keys(hybrid.fuse(text, meaning, 0.5, 10)) == [("b", 1), ("a", 0)]


def test_fusion_without_a_floor_lists_full_text_first() -> None:
    text = [_hit("a", 7, 9.0)]
    meaning = [_hit("c", 0, 0.9, 4), _hit("a", 2, 0.6, 8), _hit("d", 0, 0.3, 0)]
    assert _keys(hybrid.fuse(text, meaning, None, 10)) == [("a", 7), ("c", 0), ("d", 0)]
    assert _keys(hybrid.fuse([], meaning, 0.5, 10)) == _keys(meaning)  # as semantic ranks


@pytest.mark.parametrize(
    ("query", "topic"),
    [
        ("useCallback", "react"),  # only full-text finds it exactly
        ("shrink container image", "docker"),  # full-text finds nothing
        ("reconnect", "ws"),  # both find it
        ("NOT NULL", "pg"),
    ],
)
def test_hybrid_search_is_the_fusion_of_its_two_legs(
    corpus: Corpus, query: str, topic: str
) -> None:
    store = corpus.store()
    try:
        text, meaning = (
            hybrid.search(store, query, mode, SearchFilter(), hybrid.CANDIDATES)
            for mode in ("text", "semantic")
        )
    finally:
        store.close()
    assert meaning, "semantic search always has candidates"
    expected = hybrid.fuse(text, meaning, hybrid.SIMILARITY_FLOORS, 10)  # each model's floor
    fused = cli_search(corpus, query, "hybrid", "--limit", "10")
    assert [(h["thread_id"], h["idx"]) for h in fused] == _keys(expected)
    assert [h["score"] for h in fused] == pytest.approx([h.score for h in expected], abs=1e-6)
    assert fused[0]["thread_id"] == corpus.tid(topic)
    assert {(h.thread_id, h.idx) for h in text} <= {(h["thread_id"], h["idx"]) for h in fused}


def test_semantic_filters_that_live_on_threads_and_units(corpus: Corpus) -> None:
    query = "database migration"
    everything = cli_search(corpus, query, "semantic", "--limit", "100")
    assert {h["thread_id"] for h in everything} == {corpus.tid(n) for n in corpus.rollouts}
    only_vscode = cli_search(corpus, query, "semantic", "--source", "vscode", "--limit", "100")
    assert {h["thread_id"] for h in only_vscode} == {corpus.tid("docker")}
    one = cli_search(corpus, query, "semantic", "--thread", corpus.tid("react"), "--limit", "100")
    assert {h["thread_id"] for h in one} == {corpus.tid("react")}
    users = cli_search(corpus, query, "semantic", "--role", "user", "--limit", "100")
    assert users
    assert {h["role"] for h in users} == {"user"}
    assert len(users) == 4 + 3


@pytest.mark.parametrize("mode", ["semantic", "hybrid"])
@pytest.mark.parametrize("option", ["since", "until", "kind"])
def test_semantic_and_hybrid_apply_time_and_kind_filters(
    corpus: Corpus, mode: str, option: str
) -> None:
    cut = DEFAULT_START + 2 * DAY
    args = {
        "since": ["--since", cut.strftime("%Y-%m-%dT%H:%M")],
        "until": ["--until", cut.strftime("%Y-%m-%dT%H:%M")],
        "kind": ["--kind", "cmd"],
    }[option]
    hits = cli_search(corpus, "database migration", mode, *args, "--limit", "100")
    assert hits
    store = corpus.store()
    try:
        for hit in hits:
            if option == "since":
                assert datetime.fromisoformat(hit["ts"]) >= cut, hit
            elif option == "until":
                assert datetime.fromisoformat(hit["ts"]) < cut, hit
            elif hit["kind"] != "cmd":  # a unit passes if it holds a command
                unit = store.unit_at(hit["thread_id"], hit["idx"])
                assert unit is not None
                kinds = {m["kind"] for m in store.messages(hit["thread_id"])
                         if unit["start_idx"] <= m["idx"] <= unit["end_idx"]}  # fmt: skip
                assert "cmd" in kinds, hit
    finally:
        store.close()


def test_hybrid_does_not_list_an_assistant_run_that_full_text_found(corpus: Corpus) -> None:
    query = "exponential backoff reconnect loop"
    hits = cli_search(corpus, query, "hybrid", "--limit", "50")
    found = {(h["thread_id"], h["idx"]) for h in cli_search(corpus, query, "text")}
    assert found
    store = corpus.store()
    try:
        for h in hits:
            if (h["thread_id"], h["idx"]) in found:
                continue
            unit = store.unit_at(h["thread_id"], h["idx"])  # a semantic hit: a whole unit
            assert unit is not None
            run = range(unit["start_idx"], unit["end_idx"] + 1)
            assert not {(h["thread_id"], idx) for idx in run} & found, h
    finally:
        store.close()
    assert found <= {(h["thread_id"], h["idx"]) for h in hits}


# ------------------------------------------------------------------ search:threads


@pytest.mark.parametrize("mode", ["semantic", "hybrid", "text"])
def test_search_threads_groups_hits_by_thread(corpus: Corpus, api: Api, mode: str) -> None:
    q = "lint" if mode == "text" else "fix the lint configuration"
    groups = api.query("search:threads", q=q, mode=mode, limit=10)
    assert groups
    ids = [g["threadId"] for g in groups]
    assert len(ids) == len(set(ids))
    assert ids[0] == corpus.tid("shape")
    for g in groups:
        assert 1 <= len(g["hits"]) <= 3
        assert g["hitCount"] >= len(g["hits"])
        assert {h["threadId"] for h in g["hits"]} == {g["threadId"]}
        assert g["score"] == max(h["score"] for h in g["hits"])
        assert g["resumeCommand"] == f"codex resume {g['threadId']}"
    scores = [g["score"] for g in groups]
    assert scores == sorted(scores, reverse=True)
    messages = api.query("search:messages", q=q, mode=mode, limit=100)
    assert {h["threadId"] for h in messages} >= set(ids)
    (top,) = api.query("search:threads", q=q, mode=mode, limit=1)
    assert (top["threadId"], top["score"]) == (ids[0], scores[0])
    assert top["hits"][0] == groups[0]["hits"][0]


def test_search_threads_semantic_counts_every_unit_of_a_thread(corpus: Corpus, api: Api) -> None:
    groups = api.query("search:threads", q="lint question", mode="semantic", limit=20,
                       threadId=corpus.tid("shape"))  # fmt: skip
    (group,) = groups
    assert group["hitCount"] == 5  # the shaped thread's five units
    assert len(group["hits"]) == 3


def test_similar_to_leaves_out_the_excluded_unit(corpus: Corpus, embedder: LocalEmbedder) -> None:
    store = open_store(corpus.settings.database_url, readonly=True)
    try:
        (user_unit, answer_unit) = store.units_of(corpus.tid("docker"))
        index = semantic.index_for(location(corpus.settings))
        vector = index.vectors.vector(user_unit["content_hash"])
        assert vector is not None
        assert np.allclose(vector, embedder.embed([user_unit["text"]]), atol=1e-5)
        probe = (vector, None)
        hits = semantic.similar_to(store, probe, SearchFilter(), 5, {user_unit["content_hash"]})
        assert (corpus.tid("docker"), 0) not in {(h.thread_id, h.idx) for h in hits}
        assert (hits[0].thread_id, hits[0].idx) == (corpus.tid("docker"), answer_unit["start_idx"])
    finally:
        store.close()


# ------------------------------------------------------------------ vectors outlive the database


class _Counting:
    """An embedder that counts the texts it is asked to embed."""

    def __init__(self, inner: LocalEmbedder) -> None:
        self.inner = inner
        self.name = inner.name
        self.texts: list[str] = []

    def embed(self, texts: list[str]) -> Vectors:
        self.texts.extend(texts)
        return self.inner.embed(texts)


def test_deleting_the_database_reembeds_nothing(
    tmp_path: Path, embedder: LocalEmbedder, scrubbed_environ: None
) -> None:  # the vectors outlive a SQLite file beside them; PostgreSQL keeps both in one place
    settings = make_settings(tmp_path, embedder)
    rollouts = write_topics(settings.codex_homes[0])
    cli = Cli(settings)
    first = orjson.loads(cli("backfill", "--json"))
    assert first["units_embedded"] == 13  # every unit text is distinct
    vectors = vector_count(settings)
    ann_files = sorted(settings.data_dir.glob("ann-*.usearch"))
    assert [f.name for f in ann_files] == [
        f"ann-{TransformerEmbedder().name}.usearch",
        f"ann-{embedder.name}.usearch",
    ]  # one per model

    for suffix in ("", "-wal", "-shm"):
        Path(f"{settings.database_path}{suffix}").unlink(missing_ok=True)
    again = orjson.loads(cli("backfill", "--json"))
    assert again["threads"] == 5
    assert again["units_embedded"] == 0
    assert vector_count(settings) == vectors
    hits = orjson.loads(cli("search", "--mode", "semantic", "--json", "shrink my container"))
    assert hits[0]["thread_id"] == rollouts["docker"].thread_id

    # A fresh index over the same data dir (a new process) agrees: nothing to embed.
    for suffix in ("", "-wal", "-shm"):
        Path(f"{settings.database_path}{suffix}").unlink(missing_ok=True)
    assert orjson.loads(cli("backfill", "--no-embed", "--json"))["units_embedded"] == 0
    counting = _Counting(embedder)
    fresh = SemanticIndex(settings.data_dir, counting)
    store = open_store(settings.database_path)
    try:
        assert fresh.catch_up(store) == 0
        assert counting.texts == []
        assert len(all_units(store)) == 13
        assert fresh.catch_up(store) == 0
    finally:
        store.close()
        fresh.vectors.close()


def test_a_stopped_catch_up_commits_no_units_and_the_next_run_finishes(
    tmp_path: Path, embedder: LocalEmbedder, scrubbed_environ: None, database_option: str
) -> None:
    settings = make_settings(tmp_path, embedder, database_option)
    write_topics(settings.codex_homes[0])
    assert orjson.loads(Cli(settings)("backfill", "--no-embed", "--json"))["threads"] == 5
    index = SemanticIndex(location(settings), embedder)
    store = open_store(settings.database_url)
    try:
        asked: list[int] = []

        def stop_after_first_thread() -> bool:
            asked.append(1)
            return len(asked) > 1

        assert index.catch_up(store, stop=stop_after_first_thread) == 0
        assert all_units(store) == []  # units only ever appear with their vectors
        assert index.catch_up(store) == 13
        assert len(all_units(store)) == 13
    finally:
        store.close()
        index.vectors.close()


def test_an_append_embeds_only_the_units_it_changed(
    tmp_path: Path, embedder: LocalEmbedder, scrubbed_environ: None, database_option: str
) -> None:
    settings = make_settings(tmp_path, embedder, database_option)
    rollouts = write_topics(settings.codex_homes[0])
    cli = Cli(settings)
    assert orjson.loads(cli("backfill", "--json"))["units_embedded"] == 13
    r = rollouts["react"]
    path = r.path_in(settings.codex_homes[0])
    before = len(r.lines)
    turn = r.turn()
    r.user("Now the profile page flickers on first load")  # a new user unit
    r.assistant("Rendered a skeleton while the profile loads.")  # a new assistant run
    r.end_turn(turn)
    with path.open("ab") as fh:
        fh.write(b"".join(line + b"\n" for line in r.lines[before:]))
    assert orjson.loads(cli("backfill", "--json"))["units_embedded"] == 2
    hits = orjson.loads(cli("search", "--mode", "semantic", "--json", "page flicker while loading"))
    assert (hits[0]["thread_id"], hits[0]["idx"]) in {(r.thread_id, 2), (r.thread_id, 3)}


def test_a_units_commit_is_announced_once_its_vectors_are_searchable(
    tmp_path: Path, embedder: LocalEmbedder, scrubbed_environ: None, database_option: str
) -> None:
    settings = make_settings(tmp_path, embedder, database_option)
    rollouts = write_topics(settings.codex_homes[0])
    cli = Cli(settings)
    assert orjson.loads(cli("backfill", "--json"))["units_embedded"] == 13
    r = rollouts["ws"]
    before = len(r.lines)
    turn = r.turn()
    r.user("Postgres keeps running out of pooled connections when traffic spikes")
    r.end_turn(turn)
    with r.path_in(settings.codex_homes[0]).open("ab") as fh:
        fh.write(b"".join(line + b"\n" for line in r.lines[before:]))
    assert orjson.loads(cli("backfill", "--no-embed", "--json"))["rows_written"] == 1

    query = "database connection pool exhausted under load"
    reader = open_store(settings.database_url, readonly=True)
    writer = open_store(settings.database_url)
    seen: list[set[tuple[str, int]]] = []

    def on_commit(version: int) -> None:  # what a live query re-run at this commit would see
        hits = semantic.search(reader, query, SearchFilter(), 5)
        seen.append({(h.thread_id, h.idx) for h in hits})

    writer.on_commit = on_commit
    try:
        index = semantic.index_for(location(settings))
        assert index.catch_up(writer) == 1
        # once catch_up is done the new unit is found (the static model ranks it, beside
        # the refined units)...
        hits = semantic.search(reader, query, SearchFilter(), 5)
        assert (r.thread_id, 4) in {(h.thread_id, h.idx) for h in hits}
        # ...and once refined, it is the best match
        assert index.refine(writer) == (1, 0)
        (best, *_) = semantic.search(reader, query, SearchFilter(), 5)
        assert (best.thread_id, best.idx) == (r.thread_id, 4)
    finally:
        writer.close()
        reader.close()
    # ...and a query re-run at the last commit catch_up announced must see it too
    assert seen, "catch_up changed units without announcing a commit"
    assert (r.thread_id, 4) in seen[-1]


@pytest.mark.parametrize("step", [1, 2, 5])
def test_units_kept_up_through_appends_equal_units_derived_at_once(
    tmp_path: Path, embedder: LocalEmbedder, scrubbed_environ: None, step: int, database_option: str
) -> None:
    """Embedding after every few appended lines (cutting through runs and turns) ends with the
    same units as deriving them from the finished thread."""
    settings = make_settings(tmp_path, embedder, database_option)
    r = Rollout(cwd="/w/web")
    for n in range(3):
        turn = r.turn()
        r.user(f"Question {n} about the build")
        r.reasoning(f"Thinking about build step {n}")
        r.shell(f"make step{n}", "ok", n % 2)
        r.assistant(f"Progress on step {n}.", phase="commentary")
        r.apply_patch(f"src/step{n}.py")
        r.assistant(f"Step {n} is done.")
        r.end_turn(turn)
    path = r.path_in(settings.codex_homes[0])
    path.parent.mkdir(parents=True)
    path.write_bytes(b"")
    cli = Cli(settings)
    for cut in range(step, len(r.lines) + step, step):
        with path.open("ab") as fh:
            fh.write(b"".join(line + b"\n" for line in r.lines[cut - step : cut]))
        assert orjson.loads(cli("backfill", "--json"))["errors"] == []
    store = open_store(settings.database_url, readonly=True)
    try:
        messages = store.messages(r.thread_id)
        assert len(messages) == 3 * 6
        stored = [(u["start_idx"], u["end_idx"], u["role"], u["text"]) for u in
                  store.units_of(r.thread_id)]  # fmt: skip
    finally:
        store.close()
    derived = [(u.start_idx, u.end_idx, u.role, u.text) for u in build_units(r.thread_id, messages)]
    assert stored == derived
    assert len(stored) == 6


def test_semantic_without_embeddings_is_a_clear_error_and_hybrid_is_text(
    tmp_path: Path, embedder: LocalEmbedder, scrubbed_environ: None, database_option: str
) -> None:
    settings = make_settings(tmp_path, embedder, database_option)
    write_topics(settings.codex_homes[0])
    cli = Cli(settings)
    assert orjson.loads(cli("backfill", "--no-embed", "--json"))["units_embedded"] == 0
    output = cli("search", "--mode", "semantic", "--json", "docker", ok=False)
    assert "semantic search has no embeddings yet; try mode text" in output
    text = orjson.loads(cli("search", "--mode", "text", "--json", "docker"))
    assert text
    assert orjson.loads(cli("search", "--mode", "hybrid", "--json", "docker")) == text


# ------------------------------------------------------------------ ANN recall


def _unit_rows(rng: np.random.Generator, n: int, dim: int) -> Vectors:
    rows = rng.standard_normal((n, dim)).astype(np.float32)
    unit: Vectors = rows / np.linalg.norm(rows, axis=1, keepdims=True)
    return unit


@pytest.mark.slow
def test_ann_recall_at_10_on_random_unit_vectors(tmp_path: Path) -> None:
    rng = np.random.default_rng(20260501)
    n, dim, k = 20_000, 256, 10
    data = _unit_rows(rng, n, dim)
    queries = _unit_rows(rng, 200, dim)
    index = AnnIndex(tmp_path, "recall-test", dim)
    labels = list(range(1, n + 1))
    started = time.monotonic()
    batch = semantic.EMBED_BATCH  # the batches catch_up adds in
    for start in range(0, n, batch):
        index.add(labels[start : start + batch], data[start : start + batch])
    built = time.monotonic() - started
    assert len(index) == n

    exact = np.argsort(-(queries @ data.T), axis=1)[:, :k] + 1  # labels start at 1
    found = 0
    for row in range(len(queries)):
        got = index.search(queries[row : row + 1], k)
        assert len(got) == k
        found += len({label for label, _ in got} & set(exact[row].tolist()))
    recall = found / (len(queries) * k)
    print(f"ANN recall@10 = {recall:.3f} over {n} vectors (built in {built:.1f} s)")
    assert recall >= 0.95


def _cone_rows(rng: np.random.Generator, n: int, dim: int, axis: Vectors) -> Vectors:
    """Unit rows sharing one big common direction, as real unit embeddings do (their mean
    pairwise cosine is ~0.9): the hard case for HNSW on raw vectors."""
    return _unit_rows(rng, n, dim) * 0.35 + axis


@pytest.mark.slow
def test_ann_recall_at_10_on_vectors_in_a_narrow_cone(tmp_path: Path) -> None:
    rng = np.random.default_rng(20261126)
    n, dim, k = 20_000, 256, 10
    axis = _unit_rows(rng, 1, dim)
    data = _cone_rows(rng, n, dim, axis)
    data /= np.linalg.norm(data, axis=1, keepdims=True)
    pairs = data[:500] @ data[500:1000].T
    assert float(pairs.mean()) > 0.85  # the premise: a narrow cone
    queries = _unit_rows(rng, 200, dim) * 0.8 + axis  # short texts land off the cone's axis
    vectors = open_vectors(str(tmp_path), "cone-test")
    try:
        for start in range(0, n, 5_000):
            hashes = [f"h{i}" for i in range(start, start + 5_000)]
            vectors.add(hashes, data[start : start + 5_000])
        index = AnnIndex(tmp_path, "cone-test", dim)
        index.open(vectors)  # nothing saved: built from the stored vectors, projected
        assert index.mean_count == n
        np.testing.assert_allclose(index.mean, data.mean(axis=0), atol=1e-5)

        # exact search in the space the index ranks by: cosine after the projection
        projected = index.project(data)
        exact = np.argsort(-(index.project(queries) @ projected.T), axis=1)[:, :k] + 1
        found = 0
        for row in range(len(queries)):
            got = index.search(queries[row : row + 1], k)
            found += len({label for label, _ in got} & set(exact[row].tolist()))
        recall = found / (len(queries) * k)
        print(f"ANN recall@10 = {recall:.3f} over {n} vectors in a cone")
        assert recall >= 0.95
    finally:
        vectors.close()


def test_the_ann_mean_is_saved_and_an_index_of_raw_vectors_is_rebuilt(tmp_path: Path) -> None:
    rng = np.random.default_rng(7)
    dim = 16
    axis = _unit_rows(rng, 1, dim)
    data = _cone_rows(rng, 300, dim, axis)
    vectors = open_vectors(str(tmp_path), "m")
    try:
        vectors.add([f"h{i}" for i in range(300)], data)
        first = AnnIndex(tmp_path, "m", dim)
        first.open(vectors)
        assert first.mean_count == 300
        again = AnnIndex(tmp_path, "m", dim)
        again.open(vectors)  # loaded, not rebuilt: the same mean comes back with it
        assert again.mean_count == 300
        np.testing.assert_array_equal(again.mean, first.mean)
        assert again.search(data[:1], 1)[0][0] == 1

        # An index saved by older code has a plain-text sidecar and raw vectors: rebuilt.
        again.params_path.write_text(f"{dim} 32 200 f16 cos\n")
        old = AnnIndex(tmp_path, "m", dim)
        old.open(vectors)
        assert old.mean_count == 300
        assert orjson.loads(old.params_path.read_bytes())["mean_count"] == 300
    finally:
        vectors.close()


def test_a_few_new_vectors_are_not_saved_and_survive_a_crash(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Saving writes the whole index while holding the GIL, so the handful of units each
    answer brings stay in memory; a process that dies before saving loses nothing, because
    the next open adds them from the vector store instead of rebuilding."""
    rng = np.random.default_rng(9)
    dim = 16
    data = _unit_rows(rng, 330, dim)
    vectors = open_vectors(str(tmp_path), "m")
    try:
        vectors.add([f"h{i}" for i in range(300)], data[:300])
        live = AnnIndex(tmp_path, "m", dim)
        live.open(vectors)  # built and saved
        saved = live.path.read_bytes()
        labels = vectors.add([f"h{i}" for i in range(300, 320)], data[300:320])
        live.add(labels, data[300:320])
        live.save_if_due()  # 20 new against 320: under a tenth
        assert live.path.read_bytes() == saved
        assert live.search(data[310:311], 1)[0][0] == labels[10]

        # The process dies here; ten more vectors were stored but never indexed at all.
        late = vectors.add([f"h{i}" for i in range(320, 330)], data[320:])
        rebuilds: list[int] = []
        original = AnnIndex.rebuild

        def counted(self: AnnIndex, store: VectorTable) -> None:
            rebuilds.append(1)
            original(self, store)

        monkeypatch.setattr(AnnIndex, "rebuild", counted)
        after = AnnIndex(tmp_path, "m", dim)
        after.open(vectors)
        assert not rebuilds
        assert len(after) == 330
        np.testing.assert_array_equal(after.mean, live.mean)
        assert after.search(data[325:326], 1)[0][0] == late[5]
        assert after.search(data[310:311], 1)[0][0] == labels[10]

        after.save()  # at shutdown
        assert after.path.read_bytes() != saved
    finally:
        vectors.close()


def test_the_ann_mean_is_retaken_once_the_vectors_double(tmp_path: Path) -> None:
    rng = np.random.default_rng(8)
    dim = 16
    index = AnnIndex(tmp_path, "m", dim)
    assert not index.due_for_rebuild(10)  # too few vectors for a mean direction
    vectors = open_vectors(str(tmp_path), "m")
    try:
        vectors.add([f"h{i}" for i in range(100)], _unit_rows(rng, 100, dim))
        index.open(vectors)
        assert index.mean_count == 100
        assert not index.due_for_rebuild(199)
        assert index.due_for_rebuild(200)
    finally:
        vectors.close()
