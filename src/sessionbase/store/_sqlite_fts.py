"""A parsed search query as an FTS5 MATCH expression for SQLite's two-column index.

Each term becomes its whole tokens as a quoted phrase in any column, or the parts they are
made of as a phrase in ``parts`` (``store.tokens``); terms are joined with AND. Every string
is quoted, so no query is an FTS5 syntax error.
"""

from __future__ import annotations

from sessionbase.store.textquery import MAX_TERM_CHARS, Term, TextQuery
from sessionbase.store.tokens import CJK, WORD, cjk_bigrams, is_emoji, pieces


def fts5_match(query: TextQuery) -> str | None:
    """The MATCH expression for ``query``; None if it has no terms."""
    clauses = [clause for term in query.terms if (clause := _term_match(term)) is not None]
    return " AND ".join(clauses) if clauses else None


def _quote(text: str) -> str:
    return '"' + text.replace('"', '""') + '"'


def _term_match(term: Term) -> str | None:
    """One term: the whole token in any column, or its parts as a phrase."""
    text = term.text[:MAX_TERM_CHARS]
    star = "*" if term.prefix else ""
    emoji = [f"em{ord(c):x}" for c in text if is_emoji(c)]
    cjk = CJK.findall(text)
    if cjk:
        bigrams = [b for run in cjk for b in cjk_bigrams(run)]
        return f"parts : {_quote(' '.join(bigrams))}{star}"
    words = WORD.findall(text)
    if not words and not emoji:
        return None
    options = []
    whole = " ".join(words)
    if whole:
        options.append(f"{_quote(whole)}{star}")
        made_of = [p for w in words for p in (pieces(w) or [w.lower()])]
        piece_phrase = " ".join(p for p in made_of if "." not in p or "/" in whole)
        if piece_phrase and piece_phrase != whole.lower():
            options.append(f"parts : {_quote(piece_phrase)}{star}")
    if emoji:
        options.append(f"parts : {_quote(' '.join(emoji))}")
    return options[0] if len(options) == 1 else "(" + " OR ".join(options) + ")"
