"""Full-text search: the store's BM25 ranking, nudged toward recent threads and matching titles.

BM25 decides; the boosts only reorder near-ties: a hit in a thread whose title also matches
gains ``TITLE_BOOST``, and recent hits gain up to ``RECENCY_BOOST`` (half-life
``RECENCY_HALF_LIFE_DAYS``). Candidates are over-fetched so the boosts can reorder them.
"""

from __future__ import annotations

import functools
import math
import re
import time
import unicodedata
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from sessionbase.store import Store
from sessionbase.store.base import SearchFilter
from sessionbase.store.textquery import highlight_terms, parse_query, prefix_term

TITLE_BOOST = 0.3
RECENCY_BOOST = 0.2
RECENCY_HALF_LIFE_DAYS = 30.0
OVERFETCH = 4
SNIPPET_CHARS = 200


@dataclass(frozen=True)
class Hit:
    thread_id: str
    idx: int
    score: float
    snippet: str
    role: str
    kind: str
    ts: int | None
    thread_title: str | None
    project_id: str | None
    source: str | None
    end_idx: int | None = None  # a semantic hit's unit ends here; None: one message
    model: str | None = None  # a semantic hit's embedding model, whose similarity ``score`` is

    def to_json(self) -> dict[str, Any]:
        return {
            "thread_id": self.thread_id,
            "idx": self.idx,
            "score": round(self.score, 6),
            "snippet": self.snippet,
            "role": self.role,
            "kind": self.kind,
            "ts": self.ts,
            "thread_title": self.thread_title,
            "project_id": self.project_id,
            "source": self.source,
            "resume_command": f"codex resume {self.thread_id}",
        }


def search_text(
    store: Store, query: str, flt: SearchFilter, limit: int, now_ms: int | None = None
) -> list[Hit]:
    """The best ``limit`` messages for ``query``; empty when nothing in it is searchable."""
    parsed = parse_query(query)
    if parsed is None:
        return []
    rows = store.search_messages(parsed, flt, limit * OVERFETCH)
    titled = store.search_thread_titles(parsed, flt, 200) if rows else {}
    now = now_ms if now_ms is not None else int(time.time() * 1000)
    scored = sorted(
        ((_score(row, titled, now), row) for row in rows),
        key=lambda pair: (-pair[0], pair[1]["thread_id"], pair[1]["idx"]),
    )
    marker = _marker(query)
    return [_hit(row, score, marker) for score, row in scored[:limit]]


# Where a token or one of its parts (``store.tokens``) starts or ends: not inside a run of
# letters and digits, or at a camelCase or letter/digit step. Matched case-sensitively around
# a term matched without case, so ``user`` is marked in ``getUserName`` but not in ``username``.
_STEP = r"(?<=[a-z])(?=[A-Z])|(?<=[A-Z])(?=[A-Z][a-z])|(?<=[^\W\d_])(?=\d)|(?<=\d)(?=[^\W\d_])"
_STARTS = rf"(?:(?<![^\W_])|{_STEP})"
_ENDS = rf"(?:(?![^\W_])|{_STEP})"


@functools.lru_cache(maxsize=4096)
def _fold_char(char: str) -> str:
    split = unicodedata.normalize("NFD", char)
    return split[0] if len(split) > 1 and all(map(unicodedata.combining, split[1:])) else char


def _fold(text: str) -> str:
    """The text without diacritics, one character for one (as ``remove_diacritics`` matches)."""
    return text if text.isascii() else "".join(map(_fold_char, text))


def _in_words(char: str) -> bool:
    """A letter or digit of a word-spaced script (CJK is indexed as bigrams, found anywhere)."""
    return char.isalnum() and unicodedata.east_asian_width(char) not in ("W", "F")


@dataclass(frozen=True)
class _Marker:
    """Finds what to mark. ``full`` says exactly where (token and part boundaries) but tries
    its lookarounds at every position, ~1 ms on 2 kB; ``plain`` finds the candidates in the
    lowercased text first, ~50× faster."""

    plain: re.Pattern[str]
    full: re.Pattern[str]

    def finditer(
        self, folded: str, start: int = 0, end: int | None = None
    ) -> Iterator[re.Match[str]]:
        end = len(folded) if end is None else end
        lowered = folded.lower()
        if len(lowered) != len(folded):  # a rare character lowercases to two
            yield from self.full.finditer(folded, start, end)
            return
        at = start
        while (candidate := self.plain.search(lowered, at, end)) is not None:
            found = self.full.match(folded, candidate.start())
            if found is None:
                at = candidate.start() + 1
                continue
            yield found
            at = max(found.end(), candidate.start() + 1)


def _marker(query: str) -> _Marker | None:
    """What to mark in a hit: the query's terms and their parts where a token or part starts,
    and where one ends too unless FTS5 matched the term as a prefix."""
    terms = highlight_terms(query)
    if not terms:
        return None
    last = prefix_term(query)
    prefixes = set(highlight_terms(last)) if last else set()
    options = []
    for term in terms:
        body = f"(?i:{re.escape(_fold(term))})"
        if _in_words(term[0]):
            body = _STARTS + body
        if _in_words(term[-1]):
            # the rest of a word FTS5 matched by prefix, or where the token or part ends
            body += r"[^\W_]*" if term in prefixes else _ENDS
        options.append(body)
    plain = "|".join(re.escape(_fold(term).lower()) for term in terms)
    return _Marker(re.compile(plain), re.compile("|".join(options)))


def _marked_snippet(text: str, marker: _Marker | None) -> str:
    """About ``SNIPPET_CHARS`` of the text around its first match, every match marked. Made
    in Python for the hits kept only: FTS5's snippet() ran for every row the ranking saw.
    Only a window around the first match is flattened: tool output can be long."""
    found = next(marker.finditer(_fold(text)), None) if marker else None
    if found is None:
        return " ".join(text[: 2 * SNIPPET_CHARS].split())[:SNIPPET_CHARS]
    assert marker is not None
    lo, hi = max(0, found.start() - SNIPPET_CHARS), found.start() + 2 * SNIPPET_CHARS
    flat = " ".join(text[lo:hi].split())
    folded = _fold(flat)
    first = next(marker.finditer(folded), None)
    start = max(0, (first.start() if first else 0) - SNIPPET_CHARS // 3)
    end = start + SNIPPET_CHARS
    out, at = [], start
    for m in marker.finditer(folded, start, end):
        out += [flat[at : m.start()], "<mark>", flat[m.start() : min(m.end(), end)], "</mark>"]
        at = min(m.end(), end)
    out.append(flat[at:end])
    body = "".join(out).replace("</mark> <mark>", " ")  # a phrase is marked as one
    head = "…" if start or _NONSPACE.search(text, 0, lo) else ""
    tail = "…" if end < len(flat) or _NONSPACE.search(text, hi) else ""
    return head + body + tail


_NONSPACE = re.compile(r"\S")


def _score(row: dict[str, Any], titled: dict[str, float], now: int) -> float:
    score = -float(row["rank"])  # FTS5's bm25() is negative: more negative is better
    boost = 1.0
    if row["thread_id"] in titled:
        boost += TITLE_BOOST
    ts = row["ts"] or row["thread_updated_at"]
    if ts:
        age_days = max(0.0, (now - ts) / 86_400_000)
        boost += RECENCY_BOOST * math.pow(0.5, age_days / RECENCY_HALF_LIFE_DAYS)
    return score * boost


def _hit(row: dict[str, Any], score: float, marker: _Marker | None) -> Hit:
    return Hit(
        thread_id=row["thread_id"],
        idx=row["idx"],
        score=score,
        snippet=_marked_snippet(row["text"], marker),
        role=row["role"],
        kind=row["kind"],
        ts=row["ts"],
        thread_title=row["thread_title"],
        project_id=row["project_id"],
        source=row["source"],
    )
