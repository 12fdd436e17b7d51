"""What a user typed into search, read once into terms every backend compiles its own way.

Double quotes make phrases; an unbalanced quote is ignored. Every term must match (AND); the
last bare term also matches as a prefix, for type-ahead, once it has a few characters. A
term matches a message when its whole tokens, or the parts they are made of, appear in order
(``store.tokens``). Nothing a user types is syntax to a backend: a backend quotes every term.
"""

from __future__ import annotations

from dataclasses import dataclass

from sessionbase.store.tokens import CJK, WORD, is_emoji, pieces

MAX_TERMS = 64
MAX_TERM_CHARS = 200
MIN_PREFIX_CHARS = 3


@dataclass(frozen=True)
class Term:
    """One term every hit must contain."""

    text: str
    """A bare word or identifier, or the inside of a quoted phrase, cut to MAX_TERM_CHARS;
    it holds at least one word character, CJK character or emoji."""
    phrase: bool = False
    """It was quoted (its words match in order, as the words of a bare term do)."""
    prefix: bool = False
    """Its last word also matches the tokens it starts (type-ahead)."""


@dataclass(frozen=True)
class TextQuery:
    """The terms of a search, all of which must match; built by ``parse_query``."""

    terms: tuple[Term, ...]


def parse_query(user_query: str, *, prefix_last: bool = True) -> TextQuery | None:
    """The terms of what the user typed (at most MAX_TERMS); None if nothing is searchable.

    With ``prefix_last``, the last bare term is a prefix once it has ``MIN_PREFIX_CHARS``.
    """
    typed = _typed_terms(user_query)[:MAX_TERMS]
    terms = []
    for n, (text, phrase) in enumerate(typed):
        prefix = prefix_last and not phrase and n == len(typed) - 1 and _may_be_prefix(text)
        text = text[:MAX_TERM_CHARS]
        if WORD.search(text) or CJK.search(text) or any(map(is_emoji, text)):
            terms.append(Term(text, phrase, prefix))
    return TextQuery(tuple(terms)) if terms else None


def prefix_term(user_query: str) -> str | None:
    """The term of ``user_query`` as typed that ``parse_query`` makes a prefix, if any."""
    terms = _typed_terms(user_query)[:MAX_TERMS]
    if not terms or terms[-1][1] or not _may_be_prefix(terms[-1][0]):
        return None
    return terms[-1][0]


def highlight_terms(user_query: str) -> list[str]:
    """What to mark in a text for this query: its words, their parts, CJK runs and emoji,
    longest first."""
    found: list[str] = []
    for word in WORD.findall(user_query):
        found.extend(CJK.findall(word) or [word, *pieces(word)])
    found.extend(c for c in user_query if is_emoji(c))
    return sorted({t for t in found if len(t) > 1 or is_emoji(t) or CJK.match(t)}, key=len,
                  reverse=True)  # fmt: skip


def _may_be_prefix(term: str) -> bool:
    """Whether a last bare term also matches as a prefix: from ``MIN_PREFIX_CHARS`` on, or
    any CJK (a lone character is found as the start of its bigrams). A one- or two-letter
    prefix matches a large share of all tokens and made such a query twice as slow."""
    return len(term) >= MIN_PREFIX_CHARS or bool(CJK.search(term))


def _typed_terms(user_query: str) -> list[tuple[str, bool]]:
    """(text, is_phrase) for each term of a query as typed."""
    terms: list[tuple[str, bool]] = []
    chunks = user_query.split('"')
    if len(chunks) % 2 == 0:  # unbalanced: drop the odd quote
        chunks = user_query.replace('"', " ").split('"')
    for i, piece in enumerate(chunks):
        if i % 2 == 1:
            if piece.strip():
                terms.append((piece.strip(), True))
        else:
            terms.extend((word, False) for word in piece.split())
    return terms
